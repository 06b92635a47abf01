"""Asset checks of facestats_dagster.checks: each passes on good data and fails on planted bad data, and
runs inside its asset's step (a `check_specs` entry of the asset, no step of its own)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from facestats_core.composites.average import write_composite
from facestats_core.composites.filter_spec import parse_spec
from facestats_core.io.atomic import atomic_write_parquet
from facestats_core.io.layout import Layout
from facestats_dagster import checks
from facestats_dagster.definitions import defs
from facestats_dagster.io_manager import FaceStatsIOManager
from facestats_dagster.partitions import ALL_SHARDS_RANGE, SHARD_KEYS
from facestats_dagster.resources import PathsResource

IDS = [f"id{i}" for i in range(6)]
"""Face ids; two faces per image (`IMAGES`)."""
IMAGES = {face_id: f"img{i // 2}" for i, face_id in enumerate(IDS)}


def _unit(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _embeddings(matrix: np.ndarray, ids: list[str]) -> pl.DataFrame:
    images = [IMAGES.get(i, "img9") for i in ids]
    return pl.DataFrame({"face_id": ids, "image_id": images, "path": [f"{i}.jpg" for i in images]}).with_columns(
        pl.Series("embedding", matrix, dtype=pl.Array(pl.Float32, matrix.shape[1]))
    )


@pytest.fixture
def root(tmp_path) -> Path:
    """A data root with consistent embeddings, face-chip manifests, predictions, scores and a composite."""
    layout = Layout.from_roots(tmp_path / "data", tmp_path / "models")
    atomic_write_parquet(layout.artifact("embeddings_clip"), _embeddings(_unit(len(IDS)), IDS))
    for shard, frame in _manifests().items():
        atomic_write_parquet(layout.artifact_dir("face_chips") / f"{shard}.parquet", frame)
    images = [IMAGES[i] for i in IDS]
    atomic_write_parquet(layout.artifact("attributes"), pl.DataFrame(
        {"face_id": IDS, "image_id": images, "gender_pred": "female", "age_pred": "20-29", "ethnicity_pred": "white"}))
    atomic_write_parquet(layout.artifact("attractiveness_scores"), pl.DataFrame(
        {"face_id": IDS, "image_id": images, "attractiveness_raw": 3.0, "attractiveness_percentile": 50.0,
         "attractiveness_decile": 5}))
    _write_composite(layout, "gender=female", used=3, face_ids=IDS[:3])
    return tmp_path / "data"


def _manifests() -> dict[str, pl.DataFrame]:
    """Face-chip manifests of every shard: all of IDS ok, plus one face whose chip failed."""
    manifest = pl.DataFrame({"face_id": [*IDS, "bad"], "image_id": [*(IMAGES[i] for i in IDS), "img9"],
                             "ok": [True] * len(IDS) + [False]})
    frames = {shard: manifest.clear() for shard in SHARD_KEYS}
    frames[SHARD_KEYS[0]], frames[SHARD_KEYS[-1]] = manifest.head(3), manifest.tail(4)
    return frames


def _read(root: Path, asset: str) -> pl.DataFrame:
    return pl.read_parquet(_layout(root).artifact(asset))


def _write_composite(layout: Layout, key: str, used: int, face_ids: list[str], size: int = 16, **extra) -> None:
    parsed = parse_spec(key)
    meta = {"spec": parsed.canonical, "slug": parsed.slug, "matched": len(face_ids), "used": used,
            "face_ids": face_ids, "failures": [], "alignment": {"output_size": size}, "min_faces": 2, **extra}
    write_composite(layout.composites_dir, parsed.slug, np.full((size, size, 3), 0.5), meta)


def _paths(root: Path) -> PathsResource:
    return PathsResource(data_root=str(root), model_root=str(root.parent / "models"))


def _layout(root: Path) -> Layout:
    return _paths(root).layout()


CROSS_STAGE_CHECKS = {
    "embeddings_finite_and_normalised": "embeddings_clip",
    "every_face_embedded": "embeddings_clip",
    "predictions_cover_embeddings": "attributes",
    "scores_cover_embeddings": "attractiveness_scores",
    "composite_json_matches_image": "composite",
}


def test_every_check_passes_on_consistent_artifacts(root) -> None:
    """Each result names its check (an asset may carry several) and carries counts as metadata."""
    embedded, paths = _read(root, "embeddings_clip"), _paths(root)
    results = [
        checks.embeddings_finite_and_normalised(embedded),
        checks.every_face_embedded(embedded, _manifests()),
        checks.predictions_cover_embeddings(_read(root, "attributes"), embedded),
        checks.scores_cover_embeddings(_read(root, "attractiveness_scores"), embedded),
        checks.composite_json_matches_image(paths),
    ]
    evaluations = {r.check_name: r for r in results}
    assert set(evaluations) == set(CROSS_STAGE_CHECKS)
    assert all(r.passed and r.severity == dg.AssetCheckSeverity.ERROR for r in results)
    assert evaluations["embeddings_finite_and_normalised"].metadata["rows"].value == len(IDS)
    assert evaluations["every_face_embedded"].metadata["chips_ok"].value == len(IDS)
    assert evaluations["every_face_embedded"].metadata["embeddings_without_chip"].value == 0
    assert evaluations["composite_json_matches_image"].metadata["composites"].value == 1


def test_every_check_is_a_check_spec_of_its_asset() -> None:
    """No separate check definitions: every check (model floors included) belongs to its asset's op."""
    graph = defs.resolve_asset_graph()
    assert not list(defs.asset_checks or [])
    owners = {key.name: key.asset_key.to_user_string() for key in graph.asset_check_keys}
    assert CROSS_STAGE_CHECKS.items() <= owners.items()
    assert set(owners) == {*CROSS_STAGE_CHECKS, "classifier_accuracy_floor", "regressor_beats_mean_baseline",
                           "regressor_beats_ridge", "master_one_row_per_face"}
    for name, asset in owners.items():
        spec = graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey(asset), name))
        assert not spec.blocking  # as before: a failed check is reported, downstream assets still run
        assert spec.automation_condition is None  # requested with its asset (execution set), never alone
        assert dg.AssetCheckKey(dg.AssetKey(asset), name) in graph.get(dg.AssetKey(asset)).check_keys


def test_nan_and_non_unit_embeddings_fail(root) -> None:
    matrix = _unit(len(IDS))
    matrix[1, 3] = np.nan
    matrix[4] *= 1.01
    atomic_write_parquet(_layout(root).artifact("embeddings_clip"), _embeddings(matrix, IDS))
    result = checks.embeddings_finite_and_normalised(embeddings_clip=_embeddings(matrix, IDS))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["non_finite_ids"].value == ["id1"] and result.metadata["bad_norm_ids"].value == ["id4"]
    assert result.metadata["non_finite"].value == 1 and result.metadata["bad_norm"].value == 1


def test_missing_embedding_fails(root) -> None:
    # faces, not images: id4 and id5 are the two faces of one image, id3 embedded alone of its image
    result = checks.every_face_embedded(embeddings_clip=_embeddings(_unit(4), IDS[:4]), face_chips=_manifests())
    assert not result.passed
    assert result.metadata["missing"].value == 2 and result.metadata["missing_ids"].value == ["id4", "id5"]
    assert result.metadata["chips_ok"].value == len(IDS) and result.metadata["embedded"].value == 4
    one_face_of_an_image = checks.every_face_embedded(
        embeddings_clip=_embeddings(_unit(5), [*IDS[:4], IDS[5]]), face_chips=_manifests())
    assert not one_face_of_an_image.passed and one_face_of_an_image.metadata["missing_ids"].value == ["id4"]


def test_embeddings_without_a_chip_are_reported_but_pass(root) -> None:
    result = checks.every_face_embedded(embeddings_clip=_embeddings(_unit(7), [*IDS, "stale"]), face_chips=_manifests())
    assert result.passed
    assert result.metadata["embeddings_without_chip"].value == 1 and result.metadata["extra_ids"].value == ["stale"]


def test_predictions_must_cover_every_embedding(root) -> None:
    embedded = _read(root, "embeddings_clip")
    attributes = _read(root, "attributes")
    result = checks.predictions_cover_embeddings(
        attributes=attributes.filter(pl.col("face_id") != "id2"), embeddings_clip=embedded
    )
    assert not result.passed and result.metadata["missing_ids"].value == ["id2"]

    nulls = attributes.with_columns(pl.when(pl.col("face_id") == "id3").then(None).otherwise(pl.col("age_pred"))
                                    .alias("age_pred"))
    result = checks.predictions_cover_embeddings(attributes=nulls, embeddings_clip=embedded)
    assert not result.passed and result.metadata["null_ids"].value == ["id3"]

    scores = _read(root, "attractiveness_scores")
    result = checks.scores_cover_embeddings(attractiveness_scores=pl.concat([scores, scores.head(1)]),
                                            embeddings_clip=embedded)
    assert not result.passed and result.metadata["duplicated_ids"].value == ["id0"]


@pytest.mark.parametrize(
    ("plant", "problem"),
    [
        (lambda layout: _write_composite(layout, "all", used=4, face_ids=IDS[:3]), "used=4 + 0 read failures != 3 face_ids"),
        (lambda layout: (_write_composite(layout, "all", used=3, face_ids=IDS[:3]),
                         (layout.composites_dir / "all.png").unlink()), "image all.png is missing"),
        (lambda layout: _write_composite(layout, "all", used=3, face_ids=IDS[:3], alignment={"output_size": 32}),
         "is 16x16, json says 32x32"),
        (lambda layout: _write_composite(layout, "all", used=3, face_ids=IDS[:3], spec="Gender=Female"),
         "is not canonical"),
        (lambda layout: (layout.composites_dir / "all.json").write_text("{not json"), "unreadable json"),
    ],
    ids=["used-vs-ids", "missing-image", "size", "non-canonical", "bad-json"],
)
def test_inconsistent_composite_json_fails(root, plant, problem) -> None:
    layout = _layout(root)
    assert checks.composite_json_matches_image(paths=_paths(root)).passed
    plant(layout)
    result = checks.composite_json_matches_image(paths=_paths(root))
    assert not result.passed and result.metadata["inconsistent_slugs"].value == ["all"]
    assert problem in result.metadata["problems"].value
    assert result.metadata["composites"].value == 2


def test_embedding_checks_run_inside_the_asset_step_on_a_real_pipeline_run(resources) -> None:
    """The tiny CLIP's real output passes the norm and coverage checks (edge cases included), and
    they are evaluated by the `embeddings_clip` step itself: the run has that one step."""
    first, last = ALL_SHARDS_RANGE.split("...")
    instance = dg.DagsterInstance.ephemeral()
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    assets = list(defs.assets)
    assert dg.materialize(assets, resources=resources, instance=instance, tags=tags,
                          selection=["raw_images", "face_detections", "face_chips", "embedding_shards"]).success
    result = dg.materialize(assets, resources=resources, instance=instance, selection=["embeddings_clip"])
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"embeddings_finite_and_normalised", "every_face_embedded"}
    assert all(e.passed for e in evaluations.values()), {n: e.metadata for n, e in evaluations.items()}
    assert evaluations["every_face_embedded"].metadata["missing"].value == 0
    assert evaluations["every_face_embedded"].metadata["chips_ok"].value == evaluations[
        "embeddings_finite_and_normalised"].metadata["rows"].value > 0

    events = [(e.event_type_value, e.step_key) for e in result.all_events if e.step_key]
    assert {step for _, step in events} == {"embeddings_clip"}  # no check step of its own
    kinds = [kind for kind, _ in events]
    assert kinds.count("ASSET_CHECK_EVALUATION") == 2
    assert kinds.index("ASSET_MATERIALIZATION") < kinds.index("ASSET_CHECK_EVALUATION") < kinds.index("STEP_SUCCESS")
    materialization = result.asset_materializations_for_node("embeddings_clip")[0]
    assert materialization.metadata["faces"].value == evaluations["embeddings_finite_and_normalised"].metadata[
        "rows"].value  # the asset's own metadata is kept beside the IO manager's
    assert "dagster/row_count" in materialization.metadata


def test_a_check_cannot_run_without_its_asset(tmp_path, resources) -> None:
    """Checks are part of their asset's step: selecting one alone is refused (materialize the asset
    instead), and an asset whose input was never materialized fails with the path and the hint."""
    paths = _paths(tmp_path / "nothing")
    run_resources = {**resources, "paths": paths, "io_manager": FaceStatsIOManager(paths=paths)}
    key = dg.AssetCheckKey(dg.AssetKey("attributes"), "predictions_cover_embeddings")
    with pytest.raises(dg.DagsterInvalidDefinitionError) as refused:
        dg.materialize(list(defs.assets), selection=dg.AssetSelection.checks(key), resources=run_resources)
    assert "does not support subsetting" in str(refused.value.__cause__)

    result = dg.materialize(list(defs.assets), selection=["attribute_flags"], resources=run_resources,
                            raise_on_error=False)  # its inputs are tables: attributes, face_chips, embeddings_clip
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert "has not been materialized" in message and "first" in message
