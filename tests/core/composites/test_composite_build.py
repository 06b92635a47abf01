"""Building composites in core: one spec end to end (select, average, write) and the contact sheet."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from PIL import Image

from facestats_core.composites.build import (
    BuiltComposite,
    CompositeError,
    CompositeSettings,
    build_composite,
    composite_files,
)
from facestats_core.composites.contact_sheet import CONTACT_SHEET_NAME, build_contact_sheet
from facestats_core.composites.filter_spec import parse_spec
from facestats_core.faces.alignment import AlignmentConfig, eye_target_pixels
from facestats_core.io.layout import Layout

SIZE = 32
SIDECAR_KEYS = {
    "spec", "slug", "status", "effective_spec", "relaxed", "matched", "used", "n", "seed", "face_ids",
    "failures", "alignment", "sharpness", "min_faces", "method", "method_requested", "method_note",
    "members", "warped", "eyes_fallback", "skipped", "mean_shape", "composite_size", "background",
    "sharpness_face", "min_confidence", "excluded_low_confidence",
    "quality", "excluded_quality", "excluded_quality_by_reason", "excluded_quality_faces", "quality_note",
}
ALIGNMENT_KEYS = {
    "aligned", "source_images", "alignment_version", "output_size", "eye_targets",
    "excluded_no_landmarks", "excluded_by_reason", "landmarks_source",
}


def _settings(**changes: object) -> CompositeSettings:
    base: dict[str, object] = {"min_faces": 2, "alignment": AlignmentConfig(output_size=SIZE), "size": SIZE}
    return CompositeSettings(**{**base, **changes})  # type: ignore[arg-type]


def _solid(path: Path, value: int, size: int = SIZE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (value, value, value)).save(path)


@pytest.fixture
def faces(tmp_path: Path) -> tuple[Layout, pl.DataFrame]:
    """Eight faces: f0..f3 female, m0..m3 male, composite chips grey ``10 * (i + 1)`` with their eyes
    on the eye targets; m3 has no landmarks (not alignable), m2 has no chip."""
    layout = Layout.from_roots(tmp_path, tmp_path / "models")
    eyes = eye_target_pixels(SIZE, AlignmentConfig().eye_targets)
    rows = []
    for i, face_id in enumerate(["f0", "f1", "f2", "f3", "m0", "m1", "m2", "m3"]):
        _solid(Path(layout.chips_dir / "c" / f"{face_id}.png"), 10 * (i + 1))
        landmarks = face_id != "m3"
        rows.append(
            {
                "face_id": face_id,
                "image_id": f"img_{face_id}",
                "gender": "female" if face_id.startswith("f") else "male",
                "chip_ok": face_id != "m2",
                "composite_path": f"c/{face_id}.png",
                "chip_landmarks": eyes.ravel().tolist() if landmarks else None,
                "landmark_points": 2 if landmarks else 0,
                "face_source": "whole_image",
            }
        )
    return layout, pl.DataFrame(rows)


def _grey(path: Path) -> float:
    return float(np.asarray(Image.open(path)).mean())


def test_build_composite_averages_aligned_faces_and_writes_the_sidecar(faces) -> None:
    layout, master = faces
    built = build_composite("gender=female", master, layout, _settings())
    assert isinstance(built, BuiltComposite) and built.seconds >= 0
    assert built.image_path == layout.composites_dir / "gender.female.png"
    assert built.json_path == layout.composites_dir / "gender.female.json"
    assert _grey(Path(built.image_path)) == pytest.approx((10 + 20 + 30 + 40) / 4, abs=0.5)
    sidecar = json.loads(Path(built.json_path).read_text())
    assert set(sidecar) == SIDECAR_KEYS | {"image_file"} and set(built.meta) == SIDECAR_KEYS
    assert sidecar == {**built.meta, "image_file": "gender.female.png"}
    counts = (sidecar["spec"], sidecar["matched"], sidecar["used"], sidecar["min_faces"])
    assert counts == ("gender=female", 4, 4, 2)
    assert sidecar["face_ids"] == ["f0", "f1", "f2", "f3"] and sidecar["failures"] == []
    assert sidecar["method"] == "eyes" and "no 68-point landmarks" in sidecar["method_note"]
    alignment = sidecar["alignment"]
    assert set(alignment) == ALIGNMENT_KEYS
    assert alignment["aligned"] is True and alignment["source_images"] == "composite chips"
    assert alignment["alignment_version"] == AlignmentConfig(output_size=SIZE).version
    assert alignment["output_size"] == SIZE and alignment["eye_targets"] == [[0.35, 0.4], [0.65, 0.4]]
    assert alignment["excluded_no_landmarks"] == 0 and alignment["landmarks_source"] == {"whole_image": 4}


def test_build_composite_counts_faces_without_landmarks(faces) -> None:
    layout, master = faces
    built = build_composite("gender=male", master, layout, _settings())
    # m2 has no chip (ignored), m3 has no eyes: excluded and counted
    assert built.meta["matched"] == 2 and built.meta["face_ids"] == ["m0", "m1"]
    assert built.meta["alignment"]["excluded_no_landmarks"] == 1
    assert built.meta["alignment"]["excluded_by_reason"] == {"no_landmarks": 1}
    assert _grey(Path(built.image_path)) == pytest.approx((50 + 60) / 2, abs=0.5)


def test_build_composite_without_alignment_uses_the_chips_as_cut(faces) -> None:
    layout, master = faces
    built = build_composite("gender=male", master, layout, _settings(align=False, image_format="jpg"))
    assert built.image_path == layout.composites_dir / "gender.male.jpg"
    assert built.meta["face_ids"] == ["m0", "m1", "m3"] and built.meta["method"] == "none"
    alignment = built.meta["alignment"]
    assert alignment["aligned"] is False and alignment["source_images"] == "composite chips"
    assert alignment["alignment_version"] is None
    assert alignment["excluded_by_reason"] == {} and alignment["landmarks_source"] == {"whole_image": 3}
    with Image.open(built.image_path) as image:
        assert image.format == "JPEG" and image.size == (SIZE, SIZE)
    assert _grey(Path(built.image_path)) == pytest.approx((50 + 60 + 80) / 3, abs=1.5)


def test_too_few_faces_fail_with_counts(faces) -> None:
    layout, master = faces
    with pytest.raises(CompositeError, match=r"matched 3 faces, 1 of them without eye landmarks") as info:
        build_composite("gender=male,method=eyes", master, layout, _settings(min_faces=3))
    assert info.value.metadata == {"matched": 3, "usable": 2, "excluded_no_landmarks": 1, "min_faces": 3}
    assert "the detect extra" not in str(info.value)
    assert not layout.composites_dir.exists()
    with pytest.raises(CompositeError, match=r"matched 3 faces, 1 of them without .*at least 4"):
        build_composite("gender=male", master, layout, _settings(min_faces=4))


def test_default_method_falls_back_to_the_chips_as_cut_when_eyes_are_too_few(faces) -> None:
    layout, master = faces
    built = build_composite("gender=male", master, layout, _settings(min_faces=3))
    assert built.meta["method"] == "none" and built.meta["face_ids"] == ["m0", "m1", "m3"]
    assert "only 2 of 3 matching faces have eye landmarks" in built.meta["method_note"]


def test_no_aligned_match_adds_the_landmarks_hint(faces) -> None:
    layout, master = faces
    master = master.with_columns(
        pl.when(pl.col("gender") == "female").then(pl.col("landmark_points")).otherwise(0).alias("landmark_points"))
    with pytest.raises(CompositeError, match="the detect extra") as info:
        build_composite("gender=male,method=warp", master, layout, _settings())
    assert info.value.metadata["usable"] == 0 and info.value.metadata["excluded_no_landmarks"] == 3
    built = build_composite("gender=male", master, layout, _settings())  # the default method falls back
    assert built.meta["method"] == "none" and "only 0 of 3 matching faces have eye landmarks" in built.meta["method_note"]


def test_relax_drops_filters_when_asked(faces) -> None:
    layout, master = faces
    built = build_composite("gender=male", master, layout, _settings(min_faces=5, relax=True))
    assert built.meta["relaxed"] == ["gender=male"] and built.meta["effective_spec"] == "all"
    assert built.meta["used"] == 6


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("gender=Female", re.escape("is not in canonical form (it should be 'gender=female')")),
        ("gender=robot", "is not a valid filter spec: unknown gender 'robot'"),
    ],
)
def test_partition_key_must_be_a_canonical_spec(faces, key: str, message: str) -> None:
    layout, master = faces
    with pytest.raises(CompositeError, match=message) as info:
        build_composite(key, master, layout, _settings())
    assert info.value.metadata == {}


def test_bad_settings_and_unreadable_images_fail(faces) -> None:
    layout, master = faces
    with pytest.raises(CompositeError, match="cannot select faces for 'all': min_faces must be >= 1"):
        build_composite("all", master, layout, _settings(min_faces=0))
    Path(layout.chips_dir / "c" / "f1.png").write_bytes(b"not an image")
    with pytest.raises(CompositeError, match=r"only 3 of 4 selected faces could be used .*at least 4"):
        build_composite("gender=female", master, layout, _settings(min_faces=4))


def test_composite_files_stay_in_the_folder(tmp_path: Path) -> None:
    spec = parse_spec("gender=female,n=5")
    assert composite_files(tmp_path, spec, "jpg") == (
        tmp_path / "gender.female__n.5.jpg", tmp_path / "gender.female__n.5.json"
    )
    with pytest.raises(CompositeError, match="would leave"):
        composite_files(tmp_path, SimpleNamespace(slug="../evil"))  # type: ignore[arg-type]


def test_contact_sheet_tiles_the_built_composites(faces) -> None:
    layout, master = faces
    for key in ("gender=female", "gender=male"):
        build_composite(key, master, layout, _settings())
    keys = ["gender=male", "age=70+", "gender=female", "gender=x"]
    result = build_contact_sheet(layout.composites_dir, keys, "png")
    assert result.count == 2 and result.missing == ("age=70+", "gender=x")
    assert result.path == layout.composites_dir / CONTACT_SHEET_NAME
    with Image.open(result.path) as sheet:
        assert sheet.format == "PNG" and sheet.width == 4 * (192 + 8)
        pixels = np.asarray(sheet.convert("RGB"))
    assert pixels[4 + 96, 4 + 96].tolist() == [55, 55, 55]  # first tile: the male composite
    temporary = [p.name for p in Path(layout.composites_dir).iterdir() if p.name.startswith(".")]
    assert not temporary


def test_contact_sheet_reads_the_configured_format(faces) -> None:
    layout, master = faces
    build_composite("gender=female", master, layout, _settings(image_format="jpg"))
    with pytest.raises(CompositeError, match="No composites built yet"):
        build_contact_sheet(layout.composites_dir, ["gender=female"], "png")  # looks for the .png
    result = build_contact_sheet(layout.composites_dir, ["gender=female"], "jpg")
    assert result.count == 1 and result.missing == ()


def test_contact_sheet_without_composites_fails(tmp_path: Path) -> None:
    with pytest.raises(CompositeError, match="No composites built yet for the 2 registered specs"):
        build_contact_sheet(tmp_path, ["all", "gender=male"], "png")
    assert not (tmp_path / CONTACT_SHEET_NAME).exists()


def test_a_spec_with_attractiveness_terms_says_it_needs_scores(faces) -> None:
    layout, master = faces
    unscored = master.with_columns(pl.lit(None, dtype=pl.Float64).alias("attractiveness_raw"))
    with pytest.raises(CompositeError, match="needs attractiveness scores and there are none: no ratings"):
        build_composite("attractiveness=top10", unscored, layout, _settings())


def test_uncertain_gender_predictions_are_left_out_and_counted(faces) -> None:
    layout, master = faces
    master = master.with_columns(
        gender_source=pl.when(pl.col("face_id") == "f0").then(pl.lit("label")).otherwise(pl.lit("predicted")),
        gender_prob=pl.Series([0.5, 0.95, 0.6, 0.99, 0.99, 0.99, 0.99, 0.99]),
    )
    built = build_composite("gender=female", master, layout, _settings(method="none"))
    # f0 is labelled (always counts), f1 and f3 are confident, f2 (0.6) is left out
    assert built.meta["face_ids"] == ["f0", "f1", "f3"] and built.meta["excluded_low_confidence"] == 1
    assert built.meta["min_confidence"] == 0.9
    every = build_composite("gender=female", master, layout, _settings(method="none", min_confidence=0.0))
    assert every.meta["face_ids"] == ["f0", "f1", "f2", "f3"] and every.meta["excluded_low_confidence"] == 0
    with pytest.raises(CompositeError, match="1 more matching faces were left out as predicted") as err:
        build_composite("gender=female", master, layout, _settings(method="none", min_faces=4))
    assert err.value.metadata["excluded_low_confidence"] == 1
    with pytest.raises(ValueError, match="min_confidence"):
        _settings(min_confidence=1.5)


def test_poor_quality_faces_are_left_out_with_their_reasons_unless_the_spec_says_any(faces) -> None:
    layout, master = faces
    master = master.with_columns(
        quality=pl.Series(["good", "poor", "poor", "good", "good", "good", "good", "good"]),
        quality_reasons=pl.Series([[], ["profile"], ["blurry", "tiny"], [], [], [], [], []],
                                  dtype=pl.List(pl.String)),
    )
    built = build_composite("gender=female", master, layout, _settings(method="none"))
    assert built.meta["face_ids"] == ["f0", "f3"] and built.meta["quality"] == "good"
    assert built.meta["excluded_quality"] == 2
    assert built.meta["excluded_quality_by_reason"] == {"blurry": 1, "profile": 1, "tiny": 1}
    assert built.meta["excluded_quality_faces"] == [["f1", ["profile"]], ["f2", ["blurry", "tiny"]]]
    assert json.loads(Path(built.json_path).read_text())["excluded_quality"] == 2
    every = build_composite("gender=female,quality=any", master, layout, _settings(method="none"))
    assert every.meta["face_ids"] == ["f0", "f1", "f2", "f3"] and every.meta["excluded_quality"] == 0
    assert every.image_path == layout.composites_dir / "gender.female__quality.any.png"
    poor = build_composite("gender=female,quality=poor", master, layout, _settings(method="none"))
    assert poor.meta["face_ids"] == ["f1", "f2"] and poor.meta["excluded_quality_by_reason"] == {"good": 2}
    with pytest.raises(CompositeError, match=r"2 more matching faces were left out for their quality "
                                             r"\(blurry: 1, profile: 1, tiny: 1\); add quality=any") as err:
        build_composite("gender=female", master, layout, _settings(method="none", min_faces=3))
    assert err.value.metadata["excluded_quality"] == 2


def test_a_master_without_quality_columns_is_kept_whole_and_says_so(faces) -> None:
    layout, master = faces
    built = build_composite("gender=female", master, layout, _settings(method="none"))
    assert built.meta["face_ids"] == ["f0", "f1", "f2", "f3"] and built.meta["excluded_quality"] == 0
    assert "no quality column" in built.meta["quality_note"]
