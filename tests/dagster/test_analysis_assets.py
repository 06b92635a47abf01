"""Attribute and attractiveness assets on a small demo set, through dagster.materialize."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from facestats_core.io.layout import Layout
from facestats_core.labels.attribute_labels import read_manual_labels
from facestats_dagster.definitions import defs
from facestats_dagster.partitions import ALL_SHARDS_RANGE
from facestats_dagster.resources import AnalysisResource, ClipResource, LabelsResource, _load_cached
from facestats_demo.faces import DemoSpec, generate_demo_dataset
from tests.dagster.resources import make_resources

IMAGE_ASSETS = ["raw_images", "face_detections", "face_chips", "embedding_shards"]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory, tiny_clip_dir) -> Path:
    """A 72-face demo set materialized up to embeddings_clip once for this module."""
    root = tmp_path_factory.mktemp("demo") / "data"
    generate_demo_dataset(root, DemoSpec(n_images=72, size=96, seed=3))
    resources = _resources(root, tiny_clip_dir)
    first, last = ALL_SHARDS_RANGE.split("...")
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize(
        list(defs.assets), resources=resources, selection=IMAGE_ASSETS, instance=instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    ).success
    assert dg.materialize(list(defs.assets), resources=resources,
                          selection=["embeddings_clip", "dataset_labels", "reference_embeddings"],
                          instance=instance).success
    return root


def _resources(root: Path, clip_dir: Path, **labels: str) -> dict[str, dg.ConfigurableResource]:
    return make_resources(
        root, root.parent / "models",
        clip=ClipResource(model=str(clip_dir), batch_size=16),
        labels=LabelsResource(**labels),
        analysis=AnalysisResource(mlp_max_epochs=30, clusters=4, cluster_pca_dim=8),
    )


def _materialize(root, clip_dir, selection, **labels):
    return dg.materialize(
        [*defs.assets, *defs.asset_checks], resources=_resources(root, clip_dir, **labels), selection=selection,
        raise_on_error=False,
    )


def test_attribute_stage_end_to_end(demo_root, tiny_clip_dir) -> None:
    result = _materialize(
        demo_root, tiny_clip_dir,
        ["attribute_classifiers", "attributes", "attribute_flags", "embedding_clusters", "manual_labels"],
    )
    assert result.success
    layout = Layout.from_roots(demo_root, demo_root.parent / "models")
    embeddings = pl.read_parquet(layout.artifact("embeddings_clip"))
    predictions = pl.read_parquet(layout.artifact("attributes"))
    assert predictions["face_id"].to_list() == embeddings["face_id"].to_list()
    assert predictions["image_id"].to_list() == embeddings["image_id"].to_list()
    assert predictions["face_id"].n_unique() == 72  # the demo faces are pre-cropped: one face per image
    probs = np.stack(predictions["age_probs"].to_list())
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert set(predictions["gender_pred"].unique()) <= {"male", "female"}
    assert "unknown" not in predictions["ethnicity_pred"].to_list()
    assert set(predictions["race4_pred"].unique()) <= {"white", "black", "asian", "indian", "other"}

    meta = result.asset_materializations_for_node("attribute_classifiers")[0].metadata
    assert meta["labelled_faces"].value == 72 and "analysed" in meta["source"].value
    assert meta["model_source"].value == "analysed" and "72 labelled faces" in meta["model_source_reason"].value
    assert "| gender |" in meta["probe_vs_zero_shot"].value  # zero-shot accuracy on the same labels
    assert _load_cached.cache_info().currsize == 0  # ... with a CLIP it released when done
    assert set(predictions["gender_method"].unique()) == {"probe"}
    assert set(predictions["gender_prediction_source"].unique()) == {"out_of_fold"}  # every face is labelled
    assert "| gender |" in meta["metrics"].value
    assert (layout.model_root / "attribute_classifiers.metrics.json").exists()

    flags = pl.read_parquet(layout.artifact("attribute_flags"))
    assert flags["face_id"].to_list() == embeddings["face_id"].to_list()
    assert flags.select("face_id", "image_id").sort("face_id").equals(
        embeddings.select("face_id", "image_id").sort("face_id"))
    template = layout.metadata_dir / "labels_template.csv"
    flagged = flags.filter(pl.col("flags").list.len() > 0)
    reviewed = read_manual_labels(template).labels  # the template names each flagged face
    assert reviewed.height == flagged.height and sorted(reviewed["face_id"]) == sorted(flagged["face_id"])

    clusters = pl.read_parquet(layout.artifact("embedding_clusters"))
    assert clusters["cluster"].n_unique() == 4 and clusters["face_id"].to_list() == embeddings["face_id"].to_list()
    assert pl.read_parquet(layout.artifact("manual_labels")).height == 0  # no manual file: no overrides

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"classifier_accuracy_floor", "predictions_cover_embeddings"}
    assert checks["predictions_cover_embeddings"].passed  # facestats_dagster.checks


def test_tampered_classifier_file_is_refused(demo_root, tiny_clip_dir) -> None:
    assert _materialize(demo_root, tiny_clip_dir, ["attribute_classifiers"]).success
    model = demo_root.parent / "models" / "attribute_classifiers.safetensors"
    model.write_bytes(model.read_bytes() + b"tampered")
    result = _materialize(demo_root, tiny_clip_dir, ["attributes"])
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "sha256" in message or "hash" in message


def test_manual_labels_are_matched_with_counted_issues(demo_root, tiny_clip_dir) -> None:
    manual = demo_root / "labels" / "manual_labels.csv"
    manual.write_text(
        "filename,gender,age,ethnicity\n"
        "demo/face_00000.jpg,female,,\n"
        "demo/face_00001.jpg,,30-39,east asian\n"
        "demo/no_such_face.jpg,male,,\n"
        "demo/face_00002.jpg,robot,,\n"
    )
    result = _materialize(demo_root, tiny_clip_dir, ["manual_labels"])
    manual.unlink()
    assert result.success
    layout = Layout.from_roots(demo_root, "m")
    embeddings = pl.read_parquet(layout.artifact("embeddings_clip")).select("face_id", "image_id", "path")
    table = pl.read_parquet(layout.artifact("manual_labels")).join(embeddings, on=["face_id", "image_id"]).sort("path")
    # each label lands on its image's only face
    assert table["path"].to_list() == ["demo/face_00000.jpg", "demo/face_00001.jpg", "demo/face_00002.jpg"]
    assert table["face_id"].is_unique().all() and table["face_id"].is_not_null().all()
    assert table["ethnicity"].to_list() == [None, "east_asian", None]
    meta = result.asset_materializations_for_node("manual_labels")[0].metadata
    assert "| not_in_dataset | 1 |" in meta["issues"].value and "| unknown_value | 1 |" in meta["issues"].value
    assert meta["overrides"].value == 3 and meta["skipped_multi_face"].value == 0


def test_manual_labels_may_name_a_face(demo_root, tiny_clip_dir) -> None:
    """A `face_id` column picks one face explicitly (as labels_template.csv writes it)."""
    layout = Layout.from_roots(demo_root, "m")
    embeddings = pl.read_parquet(layout.artifact("embeddings_clip")).sort("path")
    face = embeddings.row(3, named=True)
    manual = demo_root / "labels" / "manual_labels.csv"
    manual.write_text(f"filename,face_id,gender,age,ethnicity\n{face['path']},{face['face_id']},male,70+,\n")
    result = _materialize(demo_root, tiny_clip_dir, ["manual_labels"])
    manual.unlink()
    assert result.success
    table = pl.read_parquet(layout.artifact("manual_labels"))
    assert table.select("face_id", "image_id", "gender", "age").rows() == [
        (face["face_id"], face["image_id"], "male", "70+")]


def test_attractiveness_stage_and_baseline_check(demo_root, tiny_clip_dir) -> None:
    result = _materialize(
        demo_root, tiny_clip_dir, ["attractiveness_regressor", "attractiveness_scores"]
    )
    assert result.success
    layout = Layout.from_roots(demo_root, "m")
    scores = pl.read_parquet(layout.artifact("attractiveness_scores"))
    embedded = pl.read_parquet(layout.artifact("embeddings_clip"))
    assert scores.height == 72 and sorted(scores["face_id"]) == sorted(embedded["face_id"])
    assert scores.select("face_id", "image_id").sort("face_id").equals(
        embedded.select("face_id", "image_id").sort("face_id"))
    assert scores["attractiveness_decile"].min() == 1 and scores["attractiveness_decile"].max() == 10
    meta = result.asset_materializations_for_node("attractiveness_regressor")[0].metadata
    assert meta["n_train"].value + meta["n_val"].value + meta["n_test"].value == 72
    assert "5-fold cross-validation" in meta["cross_validation"].value
    saved = json.loads((demo_root.parent / "models" / "attractiveness_regressor.json").read_text())
    assert sum(fold["n_test"] for fold in saved["cross_validation"]["folds"]) == 72
    assert meta["cv_ridge_rmse"].value == round(saved["cross_validation"]["summary"]["ridge"]["rmse"]["mean"], 4)
    assert (demo_root.parent / "models" / "attractiveness_regressor.pt").exists()
    assert set(scores["attractiveness_source"].unique()) == {"out_of_fold"}  # its ratings trained the MLP
    scored = result.asset_materializations_for_node("attractiveness_scores")[0].metadata
    assert scored["out_of_fold_from"].value == "the regressor's cross-validation"  # no refit of 5 more MLPs
    assert scores["attractiveness_out_of_domain"].dtype == pl.Boolean
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"regressor_beats_mean_baseline", "regressor_beats_ridge", "scores_cover_embeddings"}
    assert checks["regressor_beats_mean_baseline"].metadata["mlp_rmse"].value > 0
    vs_ridge = checks["regressor_beats_ridge"]
    assert vs_ridge.severity == dg.AssetCheckSeverity.WARN
    assert vs_ridge.metadata["protocol"].value == "5-fold CV"
    mlp_rmse, ridge_rmse = vs_ridge.metadata["mlp_rmse"].value, vs_ridge.metadata["ridge_rmse"].value
    if mlp_rmse != ridge_rmse:  # the metadata is rounded to 4 places
        assert vs_ridge.passed == (mlp_rmse < ridge_rmse)
    assert checks["scores_cover_embeddings"].passed  # facestats_dagster.checks


def test_without_ratings_attractiveness_is_skipped_and_the_run_is_green(demo_root, tiny_clip_dir) -> None:
    selection = ["dataset_labels", "attractiveness_regressor", "attractiveness_scores", "attribute_classifiers"]
    result = _materialize(demo_root, tiny_clip_dir, selection, ratings="")
    try:
        assert result.success
        meta = result.asset_materializations_for_node("attractiveness_regressor")[0].metadata
        assert "FACESTATS_RATINGS" in meta["skipped"].value
        assert meta["model_source"].value == "none" and meta["model_source_reason"].value == meta["skipped"].value
        assert (demo_root.parent / "models" / "attractiveness_regressor.absent.json").exists()
        assert pl.read_parquet(Layout.from_roots(demo_root, "m").artifact("attractiveness_scores")).height == 0
        checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
        assert checks["regressor_beats_mean_baseline"].description == "no regressor (no ratings): not checked"
        assert result.asset_materializations_for_node("attribute_classifiers")
    finally:  # the module's other tests use the ratings again
        assert _materialize(demo_root, tiny_clip_dir, ["dataset_labels", "attractiveness_regressor"]).success
    assert not (demo_root.parent / "models" / "attractiveness_regressor.absent.json").exists()


def test_regressor_is_reused_while_its_training_data_and_settings_are_unchanged(demo_root, tiny_clip_dir) -> None:
    models = demo_root.parent / "models"
    first = _materialize(demo_root, tiny_clip_dir, ["attractiveness_regressor"])
    assert first.success
    stored = json.loads((models / "attractiveness_regressor.json").read_text())
    again = _materialize(demo_root, tiny_clip_dir, ["attractiveness_regressor"])
    meta = again.asset_materializations_for_node("attractiveness_regressor")[0].metadata
    assert again.success and meta["reused"].value is True
    assert meta["training_fingerprint"].value == stored["training_fingerprint"]
    assert meta["n_train"].value + meta["n_val"].value + meta["n_test"].value == 72
    assert "5-fold cross-validation" in meta["cross_validation"].value
    kept = json.loads((models / "attractiveness_regressor.json").read_text())
    assert kept["weights_sha256"] == stored["weights_sha256"] and kept["cross_validation"] == stored["cross_validation"]
    resources = _resources(demo_root, tiny_clip_dir)
    resources["analysis"] = AnalysisResource(mlp_max_epochs=29, clusters=4, cluster_pca_dim=8)
    changed = dg.materialize([*defs.assets, *defs.asset_checks], resources=resources,
                             selection=["attractiveness_regressor"], raise_on_error=False)
    meta = changed.asset_materializations_for_node("attractiveness_regressor")[0].metadata
    assert changed.success and meta["reused"].value is False  # another setting: trained again
    assert meta["training_fingerprint"].value != stored["training_fingerprint"]
    assert _materialize(demo_root, tiny_clip_dir, ["attractiveness_regressor"]).success  # the module's model back


def test_training_fingerprint_follows_data_and_settings() -> None:
    from facestats_core.models.fingerprint import regressor_fingerprint, reusable
    from facestats_core.attractiveness.training import MLPConfig

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)).astype(np.float32), rng.uniform(1, 5, 20)
    base = regressor_fingerprint(X, y, MLPConfig(input_dim=4), 5, "analysed")
    assert base == regressor_fingerprint(X.copy(), y.copy(), MLPConfig(input_dim=4), 5, "analysed")
    y2 = y.copy()
    y2[3] += 0.5
    X2 = X.copy()
    X2[0, 0] += 1e-3
    for other in (regressor_fingerprint(X2, y, MLPConfig(input_dim=4), 5, "analysed"),
                  regressor_fingerprint(X, y2, MLPConfig(input_dim=4), 5, "analysed"),
                  regressor_fingerprint(X, y, MLPConfig(input_dim=4, seed=1), 5, "analysed"),
                  regressor_fingerprint(X, y, MLPConfig(input_dim=4), 3, "analysed"),
                  regressor_fingerprint(X, y, MLPConfig(input_dim=4), 5, "reference")):
        assert other != base
    assert reusable({"training_fingerprint": base}, base)
    assert not reusable({"training_fingerprint": base}, "x") and not reusable({}, base) and not reusable(None, base)
