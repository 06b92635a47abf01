"""Analyse any folder: no labels (zero-shot, green), a reference set, a bundle applied elsewhere,
a bundle of another CLIP refused, out-of-fold predictions for labelled faces."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from facestats_core.io.layout import Layout
from facestats_dagster.definitions import defs
from facestats_dagster.resources import ClipResource, ModelsResource
from facestats_demo.faces import DemoSpec, generate_demo_dataset
from tests.dagster.resources import make_resources

ALL_BUT_COMPOSITES = dg.AssetSelection.all() - dg.AssetSelection.assets("composite", "contact_sheet")
UP_TO_MASTER = ALL_BUT_COMPOSITES - dg.AssetSelection.assets("face_statistics", "stats_report")
ALL_SHARDS = {"dagster/asset_partition_range_start": "00", "dagster/asset_partition_range_end": "03"}
TAGS = Path(__file__).resolve().parents[2] / "config" / "tags.yaml"


def _demo(root: Path, n: int, seed: int, labelled: bool) -> Path:
    generate_demo_dataset(root, DemoSpec(n_images=n, size=64, seed=seed))
    if not labelled:
        for name in ("fairface_labels.csv", "scut_ratings.csv"):
            (root / "labels" / name).unlink()
    return root


def _run(data: Path, models_root: Path, clip_dir: Path, selection: dg.AssetSelection = UP_TO_MASTER,
         **models: str) -> dg.ExecuteInJobResult:
    resources = make_resources(data, models_root, clip=ClipResource(model=str(clip_dir), batch_size=8),
                               models=ModelsResource(tags_file=str(TAGS), oof_folds=3, **models))
    return dg.materialize(list(defs.assets), resources=resources, selection=selection,  # type: ignore[arg-type]
                          tags=ALL_SHARDS, raise_on_error=False)


def _master(data: Path, models_root: Path) -> pl.DataFrame:
    table = Layout.from_roots(data, models_root).read_artifact("master_metadata")
    assert table is not None
    return table


def _meta(result: dg.ExecuteInJobResult, asset: str) -> dict[str, object]:
    return {k: v.value for k, v in result.asset_materializations_for_node(asset)[0].metadata.items()}


def test_a_folder_without_labels_or_ratings_is_green_with_zero_shot(tmp_path: Path, tiny_clip_dir: Path) -> None:
    data = _demo(tmp_path / "data", 16, seed=3, labelled=False)
    result = _run(data, tmp_path / "models", tiny_clip_dir, ALL_BUT_COMPOSITES)
    assert result.success
    master = _master(data, tmp_path / "models").filter(pl.col("face_id").is_not_null())
    assert master.height == 16
    for attr in ("gender", "age", "ethnicity"):
        assert master[f"{attr}_method"].unique().to_list() == ["zero_shot"]
        assert master[f"{attr}_source"].unique().to_list() == ["predicted"]
    probs = master["gender_probs"].to_numpy()
    assert probs.shape == (16, 2) and abs(probs.sum(axis=1) - 1).max() < 1e-5
    assert {"tag_eyeglasses", "tag_smiling"} <= set(master.columns)
    assert master["attractiveness_raw"].null_count() == 16  # no ratings: no scores, no failure
    assert "rated faces" in _meta(result, "attractiveness_regressor")["skipped"]
    assert _meta(result, "model_bundle")["bundle"] == "not written: no probes (zero-shot)"
    assert (tmp_path / "data" / "processed" / "report" / "index.html").exists()


def test_reference_set_bundle_applied_to_an_unlabelled_folder(tmp_path: Path, tiny_clip_dir: Path) -> None:
    reference = _demo(tmp_path / "reference", 40, seed=5, labelled=True)
    first = _demo(tmp_path / "first", 12, seed=6, labelled=False)
    trained = _run(first, tmp_path / "models_a", tiny_clip_dir, reference_root=str(reference))
    assert trained.success
    assert _meta(trained, "reference_embeddings")["labelled_faces"] == 40
    assert _meta(trained, "reference_embeddings")["resumed_from_checkpoint"] == 0
    # the reference set's and the shards' checkpoint parts are gone once their tables are written
    assert not (Layout.from_roots(first, tmp_path / "models_a").processed_dir / "checkpoints").exists()
    assert "reference" in str(_meta(trained, "attribute_classifiers")["source"])
    # the probes' zero-shot comparison encoded the attribute and tag prompts `attributes` needed: one cache entry
    assert len(list((tmp_path / "models_a" / "text_cache").glob("*.npz"))) == 1
    bundle = tmp_path / "models_a" / "bundle"
    assert (bundle / "bundle.json").exists() and (bundle / "attractiveness_regressor.pt").exists()

    second = _demo(tmp_path / "second", 12, seed=7, labelled=False)
    applied = _run(second, tmp_path / "models_b", tiny_clip_dir, bundle=str(bundle))
    assert applied.success
    master = _master(second, tmp_path / "models_b").filter(pl.col("face_id").is_not_null())
    assert master["gender_method"].unique().to_list() == ["probe"]
    assert master["attractiveness_raw"].null_count() == 0  # the bundle's regressor scored them
    assert master["attractiveness_out_of_domain"].dtype == pl.Boolean
    assert "bundle" in str(_meta(applied, "attribute_classifiers")["source"])


def test_a_bundle_of_another_clip_is_refused(tmp_path: Path, tiny_clip_dir: Path) -> None:
    from facestats_demo.random_clip import build_random_clip

    labelled = _demo(tmp_path / "labelled", 24, seed=8, labelled=True)
    assert _run(labelled, tmp_path / "models_a", tiny_clip_dir).success
    other_clip = build_random_clip(tmp_path / "other-clip", preset="tiny", seed=1)
    folder = _demo(tmp_path / "folder", 8, seed=9, labelled=False)
    refused = _run(folder, tmp_path / "models_b", other_clip, bundle=str(tmp_path / "models_a" / "bundle"))
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    assert "does not fit this run" in failure.event_specific_data.error.message  # type: ignore[union-attr]


def test_labelled_faces_are_predicted_out_of_fold(tmp_path: Path, tiny_clip_dir: Path) -> None:
    data = _demo(tmp_path / "data", 24, seed=10, labelled=True)
    assert _run(data, tmp_path / "models", tiny_clip_dir).success
    master = _master(data, tmp_path / "models").filter(pl.col("face_id").is_not_null())
    for attr in ("gender", "age", "ethnicity"):
        labelled = master.filter(pl.col(f"{attr}_label").is_not_null())
        assert labelled.height == 24 and labelled[f"{attr}_prediction_source"].unique().to_list() == ["out_of_fold"]
        assert (master[f"{attr}_source"] == "label").all() and (master[attr] == master[f"{attr}_label"]).all()
    assert master["attractiveness_source"].unique().to_list() == ["out_of_fold"]
