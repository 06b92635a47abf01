"""Asset checks of facestats_dagster.defs.checks: each passes on good data and fails on planted bad data."""

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
from facestats_dagster.definitions import defs
from facestats_dagster.defs import checks
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


ALL_CHECKS = [
    checks.embeddings_finite_and_normalised,
    checks.every_face_embedded,
    checks.predictions_cover_embeddings,
    checks.scores_cover_embeddings,
    checks.composite_json_matches_image,
]


def test_every_check_passes_on_consistent_artifacts_through_dagster(root, resources) -> None:
    """Run as Dagster runs them (checks alone, after the assets): all pass, with counts as metadata."""
    names = {c.check_key.name for c in ALL_CHECKS}
    paths = _paths(root)
    result = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.checks(*[c for c in defs.asset_checks if c.check_key.name in names]),
        resources={**resources, "paths": paths, "io_manager": FaceStatsIOManager(paths=paths)},
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == names
    assert all(e.passed for e in evaluations.values()), {n: e.metadata for n, e in evaluations.items() if not e.passed}
    assert evaluations["embeddings_finite_and_normalised"].metadata["rows"].value == len(IDS)
    assert evaluations["every_face_embedded"].metadata["chips_ok"].value == len(IDS)
    assert evaluations["every_face_embedded"].metadata["embeddings_without_chip"].value == 0
    assert evaluations["composite_json_matches_image"].metadata["composites"].value == 1


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


def test_embedding_checks_pass_on_a_real_pipeline_run(resources) -> None:
    """The tiny CLIP's real output passes the norm and coverage checks (edge cases included)."""
    first, last = ALL_SHARDS_RANGE.split("...")
    instance = dg.DagsterInstance.ephemeral()
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    assets = list(defs.assets)
    assert dg.materialize(assets, resources=resources, instance=instance, tags=tags,
                          selection=["raw_images", "face_detections", "face_chips", "embedding_shards"]).success
    result = dg.materialize([*assets, *defs.asset_checks], resources=resources, instance=instance,
                            selection=dg.AssetSelection.assets("embeddings_clip"))
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {"embeddings_finite_and_normalised", "every_face_embedded"} <= set(evaluations)
    assert all(e.passed for e in evaluations.values()), {n: e.metadata for n, e in evaluations.items()}
    assert evaluations["every_face_embedded"].metadata["missing"].value == 0
    assert evaluations["every_face_embedded"].metadata["chips_ok"].value == evaluations[
        "embeddings_finite_and_normalised"].metadata["rows"].value > 0


def test_missing_artifact_fails_with_a_hint(tmp_path, resources) -> None:
    """A check run alone before its asset exists fails with the path and what to materialize."""
    paths = _paths(tmp_path / "nothing")
    result = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.checks(checks.predictions_cover_embeddings),
        resources={**resources, "paths": paths, "io_manager": FaceStatsIOManager(paths=paths)},
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert "attributes has not been materialized" in message and "materialize attributes first" in message

