from __future__ import annotations

import dagster as dg

from facestats_dagster.cli import pipeline as cli
from facestats_dagster.cli.dagster_runs import (
    IMAGE_SELECTION,
    UpdateRun,
    dagster_cli_commands,
    downstream_runs,
    upstream_run,
)
from facestats_dagster.definitions import defs


def test_demo_falls_back_to_the_trained_demo_clip_loudly(monkeypatch, capsys) -> None:
    from facestats_demo.train_clip import DEMO_CLIP_DIR

    monkeypatch.setattr(cli, "_hub_reachable", lambda host="huggingface.co": False)
    chosen = cli.resolve_demo_model(None)
    assert chosen == str(DEMO_CLIP_DIR)
    assert (DEMO_CLIP_DIR / "config.json").exists()
    printed = capsys.readouterr().out
    assert "NOTICE" in printed and "DEMO CLIP" in printed and "NOT OpenAI's CLIP" in printed
    assert "FACESTATS_CLIP_MODEL" in printed


def test_explicit_model_wins() -> None:
    assert cli.resolve_demo_model("/models/my-clip") == "/models/my-clip"


def test_image_selection_is_every_shard_partitioned_asset() -> None:
    graph = defs.resolve_asset_graph()
    selected = {key.to_user_string() for key in dg.AssetSelection.from_string(IMAGE_SELECTION).resolve(graph)}
    partitioned = {
        key.to_user_string() for key in graph.get_all_asset_keys()
        if graph.get(key).partitions_def is not None and key.to_user_string() != "composite"
    }
    assert selected == partitioned == {"raw_images", "face_detections", "face_chips", "embedding_shards"}


def _selected(run: UpdateRun) -> set[str]:
    graph = defs.resolve_asset_graph()
    return {key.to_user_string() for key in dg.AssetSelection.from_coercible(run.select.split(",")).resolve(graph)}


def test_update_is_two_runs_covering_every_asset_once() -> None:
    """`facestats update`: one run over every shard up to the master table, one run of the composites
    (a partition range over the YAML's specs) with the contact sheet, statistics and report."""
    from facestats_dagster.partitions import SHARD_KEYS

    first = upstream_run()
    assert first.tags == {"dagster/asset_partition_range_start": SHARD_KEYS[0],
                          "dagster/asset_partition_range_end": SHARD_KEYS[-1]}
    [second] = downstream_runs(["all", "gender=female"], ["all", "gender=female"])
    assert second.partitions == ("all", "gender=female")
    upstream, downstream = _selected(first), _selected(second)
    everything = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert upstream | downstream == everything and not upstream & downstream
    assert downstream == {"composite", "contact_sheet", "face_statistics", "stats_report"}
    assert {"raw_images", "embedding_shards", "embeddings_clip", "model_bundle", "master_metadata"} <= upstream


def test_update_splits_composites_only_around_foreign_specs() -> None:
    """A spec registered by hand (not in the YAML) between two YAML specs: a composites-only run for the
    first block; no specs at all: the contact sheet, statistics and report alone, unpartitioned."""
    runs = downstream_runs(["all", "by-hand", "gender=female"], ["all", "gender=female"])
    assert [(run.select, run.partitions) for run in runs] == [
        ("composite", ("all", "all")),
        ("composite,contact_sheet,face_statistics,stats_report", ("gender=female", "gender=female")),
    ]
    [alone] = downstream_runs([], [])
    assert alone.partitions is None and alone.tags == {} and _selected(alone) == {
        "contact_sheet", "face_statistics", "stats_report"}


def test_dagster_cli_commands_cover_all_shards_then_downstream() -> None:
    from facestats_dagster.cli.dagster_runs import ANALYSIS_SELECTION
    from facestats_dagster.partitions import ALL_SHARDS_RANGE

    commands = dagster_cli_commands("dagster")
    first, second = commands[:2]
    assert first[-2:] == ["--partition-range", ALL_SHARDS_RANGE]
    assert first[first.index("--select") + 1] == IMAGE_SELECTION
    assert ANALYSIS_SELECTION in second
    assert any("master_metadata" in c for c in commands) and any("contact_sheet" in c for c in commands)
    assert sum(c[:3] == ["facestats", "composites", "build"] for c in commands) == 1
    assert commands[-1][-2:] == ["--select", "face_statistics,stats_report"]


def test_models_describe_prints_the_bundle_and_fails_cleanly_without_one(tmp_path, capsys) -> None:
    import numpy as np

    from facestats_core.models.bundle import TrainedWith, write_bundle
    from facestats_core.models.classifiers import train_attribute_classifier
    from facestats_dagster.cli.main import main

    X = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    probe = train_attribute_classifier(X, np.array(["male", "female"] * 10, dtype=object), ("male", "female"),
                                       c_grid=(1.0,))
    write_bundle(tmp_path / "bundle", TrainedWith("tiny-clip", "sha256:1", 4, "whole", "v1"), {"gender": probe})
    assert main(["models", "describe", str(tmp_path / "bundle")]) == 0
    out = capsys.readouterr().out
    assert "CLIP tiny-clip (revision sha256:1, 4-d embeddings)" in out and "gender" in out
    assert main(["models", "describe", str(tmp_path / "missing")]) == 2
    assert "not a model bundle" in capsys.readouterr().err
    manifest = tmp_path / "bundle" / "bundle.json"  # a bundle of the old pickle format: refused unread
    manifest.write_text(manifest.read_text().replace('"format": 2', '"format": 1'))
    assert main(["models", "describe", str(tmp_path / "bundle")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pickle" in err and "`facestats update`" in err


def _summary_layout(tmp_path):
    """A finished demo's outputs, hand-made: embeddings, a master table of 4 faces, 3 composites."""
    import json

    import polars as pl

    from facestats_core.io.layout import Layout

    layout = Layout.from_roots(tmp_path / "data", tmp_path / "models")
    for artifact in ("embeddings_clip", "master_metadata"):
        layout.artifact(artifact).parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"face_id": ["f0"], "model_id": ["m"]}).write_parquet(layout.artifact("embeddings_clip"))
    pl.DataFrame({"face_id": ["f0", "f1", "f2", "f3"], "image_id": ["i0", "i1", "i2", "i3"],
                  "path": [f"demo/{i}.jpg" for i in range(4)],
                  "gender_pred": ["male", "male", "male", "female"], "gender_method": ["probe"] * 4,
                  "attractiveness_raw": [3.0, 4.0, 2.0, 3.0]}).write_parquet(layout.artifact("master_metadata"))
    layout.composites_dir.mkdir(parents=True)
    sidecars = {
        "gender.male__age.0-19": {"spec": "gender=male,age=0-19", "face_ids": ["f0", "f1", "f2"],
                                  "min_confidence": 0.9, "excluded_low_confidence": 4},
        "attractiveness.top10": {"spec": "attractiveness=top10", "face_ids": ["f0", "f3"]},
        "gender.female": {"spec": "gender=female", "status": "not_built", "reason": "matched 1 face"},
    }
    for slug, meta in sidecars.items():
        (layout.composites_dir / f"{slug}.json").write_text(json.dumps(meta))
    specs = tmp_path / "composites.yaml"
    specs.write_text("specs:\n  - gender=male,age=0-19\n  - attractiveness=top10\n  - gender=female\n  - age=60+\n")
    layout.labels_dir.mkdir(parents=True)
    truth = layout.labels_dir / "truth_fairface_labels.csv"
    truth.write_text("file,age,gender,race\ndemo/0.jpg,3-9,Male,White\ndemo/1.jpg,10-19,Male,White\n"
                     "demo/2.jpg,20-29,Female,Black\n")
    (layout.labels_dir / "truth_scut_ratings.csv").write_text("filename,score\ndemo/0.jpg,3.5\ndemo/1.jpg,4.5\n"
                                                             "demo/2.jpg,2.5\n")
    return layout, specs, truth


def _summary_with_truth(tmp_path, capsys) -> str:
    """What `print_summary` prints for the hand-made demo outputs, with their truth and specs."""
    _, specs, truth = _summary_layout(tmp_path)
    cli.print_summary(tmp_path / "data", tmp_path / "models", truth_file=truth, specs_file=specs)
    return capsys.readouterr().out


def test_demo_summary_reports_composite_purity_against_the_truth(tmp_path, capsys) -> None:
    out = _summary_with_truth(tmp_path, capsys)
    block = out[out.index("  composite purity vs demo truth (truth_fairface_labels.csv;"):].splitlines()[1:5]
    assert block == [
        "    gender=male,age=0-19     3 members  gender=male 66.6% (2/3), age=0-19 66.6% (2/3)"
        "  (4 more left out: predicted with probability < 0.9)",
        "    attractiveness=top10     2 members  no attribute terms; no truth: attractiveness=top10",
        "    gender=female         not built (gender.female.json says why)",
        "    age=60+               not built yet",
    ]


def test_demo_summary_scores_the_analysed_faces_against_the_truth(tmp_path, capsys) -> None:
    out = _summary_with_truth(tmp_path, capsys)
    block = out[out.index("  analysed faces vs demo truth (truth_fairface_labels.csv;"):].splitlines()[1:3]
    assert block == [
        "    gender           accuracy 0.667  (n 3, majority baseline 0.667, probe)",  # f2 is female
        "    attractiveness   Pearson r 1.000, RMSE 0.500 (n 3; predicting the mean: RMSE 0.816)",
    ]


def test_demo_summary_says_when_there_is_no_truth(tmp_path, capsys) -> None:
    layout, specs, truth = _summary_layout(tmp_path)
    truth.unlink()
    cli.print_summary(tmp_path / "data", tmp_path / "models", truth_file=truth, specs_file=specs)
    out = capsys.readouterr().out
    assert f"  composite purity   not measured: no true labels at {truth}\n" in out
    assert "members" not in out
    cli.print_summary(tmp_path / "data", tmp_path / "models")  # no specs file: nothing said about purity
    assert "purity" not in capsys.readouterr().out
