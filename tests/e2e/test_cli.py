"""End to end through the real command line: `facestats` and the `dagster` CLI in subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from facestats_core.io.layout import Layout
from facestats_demo.edge_cases import EXPECTED
from tests.core.faces.photos import needs_cnn, needs_dlib, write_detect_set

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def _env(tmp_path: Path, tiny_clip_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "FACESTATS_DATA_ROOT": str(tmp_path / "data"),
        "FACESTATS_MODEL_ROOT": str(tmp_path / "models"),
        "FACESTATS_CLIP_MODEL": str(tiny_clip_dir),
        "FACESTATS_SHARDS": "2",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "HF_HUB_OFFLINE": "1",
        "FACESTATS_MIN_FACES": "2",
        "FACESTATS_FACE_MODE": "whole",  # the demo's faces are pre-cropped (what `facestats demo` sets)
        "FACESTATS_COMPOSITES_CONFIG": str(tmp_path / "composites.yaml"),
        "FACESTATS_COMPOSITE_MIN_CONFIDENCE": "0",  # a tiny random CLIP's predictions are never confident
    }
    (tmp_path / "composites.yaml").write_text("specs:\n  - all\n  - gender=female\n")
    env.update(extra)
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, f"{args}\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed


def _runs(home: Path) -> list:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(reversed(instance.get_runs()))


def test_facestats_demo_runs_the_pipeline_in_two_dagster_runs(tmp_path, tiny_clip_dir) -> None:
    env = _env(tmp_path, tiny_clip_dir)
    completed = _run([str(BIN / "facestats"), "demo", "--n-images", "24", "--reference-images", "24"], env, tmp_path)
    out = completed.stdout
    log = (tmp_path / "facestats.log").read_text()  # the demo's project is the working directory
    assert ("---- run --select 'not group:composites and not group:statistics and not group:report' "
            "--partition-range 00...01") in log
    assert ("---- run --select 'composite,contact_sheet,face_statistics,stats_report' "
            "--partition-range all...gender=female") in log
    assert "DEBUG" not in out and "DEBUG" in log
    assert "FaceStats demo finished" in out
    assert "  attractiveness     5-fold CV RMSE: MLP " in out  # read from tmp_path/models, not ./models
    first, second = _runs(tmp_path / "dagster_home")  # two runs in all, checks inside their assets' steps
    assert first.tags["dagster/asset_partition_range_end"] == "01" and second.tags[
        "dagster/asset_partition_range_start"] == "all"
    # whole-set shares against the kept-aside truth (24 faces: under 50, so observed only)
    assert "  class shares vs demo truth (whole analysed set;" in out
    assert re.search(r"\n    age +observed \d+\.\d\d pp, not corrected \(none: fewer than 50 faces", out)
    # every configured composite checked against the kept-aside truth of the analysed folder
    assert "  composite purity vs demo truth (truth_fairface_labels.csv;" in out
    assert re.search(r"\n    all +\d+ members  no attribute terms\n", out)
    assert re.search(r"\n    gender=female +\d+ members  gender=female \d+(\.\d)?% \(\d+/\d+( of \d+)?\)\n", out)

    layout = Layout.from_roots(tmp_path / "data", tmp_path / "models")
    embeddings = pl.read_parquet(layout.artifact("embeddings_clip"))
    readable_edge_cases = sum(reason is None for reason in EXPECTED.values())
    assert embeddings.height == 24 + readable_edge_cases
    assert embeddings["model_id"].unique().to_list() == [str(tiny_clip_dir)]
    raw = layout.read_partitions("raw_images")
    assert raw.filter(~pl.col("readable")).height == len(EXPECTED) - readable_edge_cases

    # a second run (as cron would): nothing new, nothing re-embedded, same table
    rerun = _run([str(BIN / "facestats"), "demo"], env, tmp_path)
    assert "wrote" not in rerun.stdout  # demo data already there: not regenerated
    again = pl.read_parquet(layout.artifact("embeddings_clip"))
    assert again.equals(embeddings)
    master = pl.read_parquet(layout.artifact("master_metadata"))
    # demo faces are pre-cropped (face_mode=whole): one face per readable image, one reason row per unreadable one
    assert master.height == raw.height and master["face_id"].null_count() == raw.filter(~pl.col("readable")).height
    assert sorted(p.name for p in layout.composites_dir.glob("*.png")) == ["all.png", "contact_sheet.png", "gender.female.png"]
    # the drawn demo faces are frontal and sharp: every one is a member; only edge-case files may be left out
    everyone = json.loads((layout.composites_dir / "all.json").read_text())
    demo_faces = set(master.filter(pl.col("path").str.starts_with("demo/"))["face_id"])
    assert everyone["quality"] == "good" and demo_faces <= set(everyone["face_ids"])
    assert not demo_faces & {face for face, _ in everyone["excluded_quality_faces"]}

    # the demo trained the regressor and scored the set: score new files from the CLI
    scored = pl.read_parquet(layout.artifact("attractiveness_scores"))
    assert scored.height == embeddings.height
    face = tmp_path / "data" / "raw" / "demo" / "face_00003.jpg"
    bad = tmp_path / "data" / "raw" / "edge_cases" / "truncated.jpg"
    # the demo's project file names its CLIP: FACESTATS_PROJECT is enough to use it
    env_without_model = {**{k: v for k, v in env.items() if k != "FACESTATS_CLIP_MODEL"}, "FACESTATS_PROJECT": str(tmp_path)}
    out = _run([str(BIN / "facestats"), "score", "--json", str(face), str(bad)], env_without_model, tmp_path)
    face_row, bad_row = json.loads(out.stdout)
    expected = scored.filter(pl.col("path") == "demo/face_00003.jpg")
    # same face chip + model; precision=auto runs bf16 on CPUs with native bf16, where the result depends a
    # little on the batch the face is in (1 face here, a full batch in the pipeline): cosine >= 0.9999
    assert abs(face_row["score"] - expected["attractiveness_raw"][0]) < 2e-2
    assert face_row["face"] == 0 and face_row["face_id"].endswith("_500_500")
    assert 0 <= face_row["percentile"] <= 100
    assert bad_row["error"].startswith("truncated")


def test_one_shard_can_run_alone_from_the_cli(tmp_path, tiny_clip_dir) -> None:
    env = _env(tmp_path, tiny_clip_dir)
    _run([str(BIN / "facestats"), "demo-data", "--data-root", str(tmp_path / "data"), "--n-images", "12",
          "--size", "128"], env, tmp_path)
    _run([str(BIN / "dagster"), "asset", "materialize", "-m", "facestats_dagster.definitions",
          "--select", "raw_images,face_detections,face_chips,embedding_shards", "--partition", "01"], env, tmp_path)
    layout = Layout.from_roots(tmp_path / "data", tmp_path / "models")
    files = sorted(p.name for p in layout.artifact_dir("embedding_shards").glob("*.parquet"))
    assert files == ["01.parquet"]
    shard = pl.read_parquet(layout.artifact_dir("embedding_shards") / "01.parquet")
    raw = layout.read_partitions("raw_images")
    assert shard.height == raw.filter(pl.col("readable")).height > 0


def test_an_unlabelled_folder_is_green_through_the_cli(tmp_path, tiny_clip_dir) -> None:
    """A folder of photos with no labels and no ratings, updated from a folder without
    `config/composites.yaml`: `facestats update` succeeds with zero-shot attributes, no
    attractiveness, a master table and a report, and says that it found no composites config."""
    from facestats_demo.faces import DemoSpec, generate_demo_dataset

    generate_demo_dataset(tmp_path / "data", DemoSpec(n_images=10, size=64, seed=4))
    for name in ("fairface_labels.csv", "scut_ratings.csv", "demo_truth.csv"):
        (tmp_path / "data" / "labels" / name).unlink()
    env = _env(tmp_path, tiny_clip_dir)
    del env["FACESTATS_COMPOSITES_CONFIG"]
    completed = _run([str(BIN / "facestats"), "update"], env, tmp_path)
    assert "Attractiveness skipped" in (tmp_path / "dagster_home" / "facestats.log").read_text()
    assert f"no composites config at {tmp_path / 'config' / 'composites.yaml'}" in completed.stdout
    layout = Layout.from_roots(tmp_path / "data", tmp_path / "models")
    master = pl.read_parquet(layout.artifact("master_metadata"))
    assert master.height == 10 and master["gender_method"].unique().to_list() == ["zero_shot"]
    assert master["attractiveness_raw"].null_count() == 10
    assert (layout.report_dir / "index.html").exists()


@needs_dlib
@needs_cnn
def test_update_in_the_default_detect_mode_on_real_photos(tmp_path, tiny_clip_dir) -> None:
    """`facestats update` as cron runs it, with the default face mode (detect) and detector, on real
    photos and hostile files: a master row for every file with its faces or reason, the faces embedded,
    the composite of every face and the report."""
    faces, reasons, errors = write_detect_set(tmp_path / "data" / "raw")
    env = _env(tmp_path, tiny_clip_dir)
    del env["FACESTATS_FACE_MODE"]  # the default: detect
    (tmp_path / "composites.yaml").write_text("specs:\n  - all\n")
    _run([str(BIN / "facestats"), "update"], env, tmp_path)
    layout = Layout.from_roots(tmp_path / "data", tmp_path / "models")
    master = pl.read_parquet(layout.artifact("master_metadata"))
    counted = dict(master.group_by("path").agg(pl.col("face_id").count()).iter_rows())
    assert counted == faces  # every file has a row; each photo its number of faces
    assert dict(master.filter(pl.col("face_id").is_null()).select("path", "reason").iter_rows()) == reasons
    assert dict(master.filter(pl.col("error").is_not_null()).select("path", "error").iter_rows()) == errors
    embedded = pl.read_parquet(layout.artifact("embeddings_clip"))
    assert set(embedded["face_id"]) == set(master["face_id"].drop_nulls()) and embedded.height == sum(faces.values())
    sidecar = json.loads((layout.composites_dir / "all.json").read_text())
    # every face is matched or left out for its quality (recorded with reasons), none lost
    assert sidecar["matched"] + sidecar["excluded_quality"] == sum(faces.values())
    assert sidecar["excluded_quality"] == len(sidecar["excluded_quality_faces"]) >= 1  # the tiny face at least
    assert set(sidecar["face_ids"]) <= set(embedded["face_id"])
    assert (layout.report_dir / "index.html").exists()
    runs = _runs(tmp_path / "dagster_home")
    assert len(runs) == 2 and all(run.status.value == "SUCCESS" for run in runs)
