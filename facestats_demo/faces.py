"""Deterministic synthetic face set for demos and tests: the sampler and the files it writes.

Real face data sets cannot ship with the repository, so ``make demo`` draws
cartoon faces whose *visible* traits follow their labels, writes them as JPEGs
and adds FairFace-format attribute labels and SCUT-FBP5500-format ratings:

* skin tone, hair colour, eye shape and nose/lip width depend on ethnicity
  (distinct but overlapping palettes, jittered per image);
* jaw shape, brows, hair length, lipstick, beards and a baby girl's hair bow depend on
  gender, so that gender is visible on every face (no short-haired women or long-haired men);
* child proportions (big eyes, round face), wrinkles and grey hair depend on age;
* the attractiveness score is a deterministic function of drawn traits
  (symmetry, skin smoothness, eye size, age band) plus a little noise.

Every face is rotated (up to ±12°), shifted and scaled so that face alignment
matters downstream; the true eye centres are written to ``demo_truth.csv``.

Layout written under ``root``::

    raw/demo/face_00000.jpg …            size×size RGB JPEGs (quality 90)
    labels/fairface_labels.csv           file,age,gender,race,service_test (FairFace vocabularies)
    labels/scut_ratings.csv              filename,score (mean rating in [1, 5])
    labels/demo_truth.csv                file,gender,age,ethnicity,score,left_eye_x,left_eye_y,
                                         right_eye_x,right_eye_y,lm0_x,lm0_y,…,lm67_x,lm67_y
                                         (canonical labels; eyes and 68 iBUG landmarks in pixel coordinates)

File paths in the CSVs are relative to ``root/raw``. Eye coordinates are in
pixel-index units of the saved image ((0, 0) is the centre of the top-left
pixel); the "left eye" is the one on the image's left.

Determinism: image ``i`` is drawn from its own child seed
``SeedSequence(seed, spawn_key=(0, i))`` and its labels from fixed-size
shuffled "decks" (seeded per deck), so the same seed gives byte-identical
files and image ``i`` does not depend on ``n_images``. The decks follow the
spec's ``mix``: ``balanced`` (the reference sets) or ``shifted`` (``facestats
demo``'s analysed folder: 60 % male, 60 % white, weighted to young adults).

One job per module: labels from decks (:mod:`facestats_demo.decks`), traits and rating from labels
(:mod:`~facestats_demo.traits`, colours in :mod:`~facestats_demo.colours`), layout and landmark
truth (:mod:`~facestats_demo.geometry`, :mod:`~facestats_demo.landmarks`), the drawing
(:mod:`~facestats_demo.drawing`, features in :mod:`~facestats_demo.features`); this module draws
face ``i`` of a seed from them and writes the set.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from facestats_core.faces.landmarks68 import LANDMARK68_COLUMNS, landmarks68_cells
from facestats_core.io.atomic import atomic_write_bytes
from facestats_core.labels.vocab import FAIRFACE_AGE, FAIRFACE_GENDER, FAIRFACE_RACE
from facestats_demo.decks import IMAGE_STREAM, MIXES, demo_labels
from facestats_demo.drawing import draw_traits
from facestats_demo.geometry import EyePair, face_landmarks68
from facestats_demo.traits import FaceTraits, attractiveness_score, sample_traits

DEMO_SUBDIR = "demo"
JPEG_QUALITY = 90

FAIRFACE_HEADER: tuple[str, ...] = ("file", "age", "gender", "race", "service_test")
SCUT_HEADER: tuple[str, ...] = ("filename", "score")
TRUTH_HEADER: tuple[str, ...] = (
    "file",
    "gender",
    "age",
    "ethnicity",
    "score",
    "left_eye_x",
    "left_eye_y",
    "right_eye_x",
    "right_eye_y",
    *LANDMARK68_COLUMNS,
)


@dataclass(frozen=True)
class DemoSpec:
    """What to generate: how many images, their side in pixels, the seed and the class mix (``MIXES``)."""

    n_images: int = 600
    size: int = 256
    seed: int = 0
    mix: str = "balanced"

    def __post_init__(self) -> None:
        if self.mix not in MIXES:
            raise ValueError(f"DemoSpec.mix must be one of {MIXES}, got {self.mix!r}")
        for name in ("n_images", "size", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"DemoSpec.{name} must be an int, got {value!r}")
        if self.n_images < 1:
            raise ValueError(f"DemoSpec.n_images must be >= 1, got {self.n_images}")
        if not 64 <= self.size <= 2048:
            raise ValueError(f"DemoSpec.size must be in [64, 2048], got {self.size}")
        if self.seed < 0:
            raise ValueError(f"DemoSpec.seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class DemoDataset:
    """Paths of a generated demo set (see the module docstring for the layout)."""

    images_dir: Path
    fairface_labels: Path
    ratings: Path
    truth: Path
    n_images: int


@dataclass(frozen=True)
class DemoFace:
    """Demo face ``index`` of a seed: its drawn traits, image, eye centres, rating and FairFace split flag."""

    traits: FaceTraits
    image: Image.Image
    eyes: EyePair
    score: float
    service_test: bool


def demo_face(seed: int, index: int, size: int, mix: str = "balanced") -> DemoFace:
    """Draw demo face ``index`` of ``seed`` (labels from ``mix``) exactly as ``generate_demo_dataset`` writes it.

    Everything comes from the image's own child seed, so the face does not
    depend on how many others are drawn.
    """
    gender, age, ethnicity = demo_labels(seed, index, mix)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(IMAGE_STREAM, index)))
    traits = sample_traits(gender, age, ethnicity, rng)
    image, eyes = draw_traits(traits, size, rng)
    if not _eyes_inside(eyes, size, margin=0.08 * size):
        raise RuntimeError(f"demo image {index}: eyes {eyes} too close to the border")  # by construction never
    score = attractiveness_score(traits, float(rng.normal()))
    service_test = float(rng.random()) < 0.5
    return DemoFace(traits=traits, image=image, eyes=eyes, score=score, service_test=service_test)


def demo_file_name(index: int) -> str:
    """Path of image ``index`` relative to ``root/raw`` (``demo/face_00012.jpg``)."""
    return f"{DEMO_SUBDIR}/face_{index:05d}.jpg"


def jpeg_bytes(image: Image.Image) -> bytes:
    """The demo's JPEG encoding of ``image`` (quality 90, baseline): what ``raw/demo/`` holds."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    return buffer.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    """Atomic write, skipped when the file already holds exactly ``data``."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    atomic_write_bytes(path, data)


def _csv_bytes(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> bytes:
    """CSV text (LF line ends) from pre-formatted string cells."""
    frame = pl.DataFrame(rows, schema={name: pl.String for name in header}, orient="row")
    return frame.write_csv(line_terminator="\n", quote_style="necessary").encode("utf-8")


def _remove_stale_images(images_dir: Path, n_images: int) -> None:
    """Delete ``face_NNNNN.jpg`` files left by an earlier, larger run."""
    pattern = re.compile(r"face_(\d{5,})\.jpg")
    for path in images_dir.glob("face_*.jpg"):
        match = pattern.fullmatch(path.name)
        if match and int(match.group(1)) >= n_images:
            path.unlink()


def _eyes_inside(eyes: EyePair, size: int, margin: float) -> bool:
    return all(margin <= c <= size - 1 - margin for point in eyes for c in point)


def generate_demo_dataset(root: Path, spec: DemoSpec = DemoSpec()) -> DemoDataset:
    """Write the synthetic demo set under ``root`` and return its paths.

    Re-running with the same spec rewrites nothing that is already identical
    and removes demo images beyond ``spec.n_images`` left by larger runs.
    """
    root = Path(root)
    images_dir = root / "raw" / DEMO_SUBDIR
    labels_dir = root / "labels"
    images_dir.mkdir(parents=True, exist_ok=True)
    fairface_rows: list[tuple[str, ...]] = []
    rating_rows: list[tuple[str, ...]] = []
    truth_rows: list[tuple[str, ...]] = []
    for index in range(spec.n_images):
        face = demo_face(spec.seed, index, spec.size, spec.mix)
        gender, age, ethnicity = face.traits.gender, face.traits.age, face.traits.ethnicity
        score = f"{face.score:.3f}"
        service_test = "True" if face.service_test else "False"
        name = demo_file_name(index)
        _write_if_changed(root / "raw" / name, jpeg_bytes(face.image))
        fairface_rows.append(
            (name, FAIRFACE_AGE[age], FAIRFACE_GENDER[gender], FAIRFACE_RACE[ethnicity], service_test)
        )
        rating_rows.append((name, score))
        (lx, ly), (rx, ry) = face.eyes
        truth_rows.append(
            (name, gender, age, ethnicity, score, f"{lx:.3f}", f"{ly:.3f}", f"{rx:.3f}", f"{ry:.3f}",
             *landmarks68_cells(face_landmarks68(face.traits, spec.size)))
        )
    _remove_stale_images(images_dir, spec.n_images)
    dataset = DemoDataset(
        images_dir=images_dir,
        fairface_labels=labels_dir / "fairface_labels.csv",
        ratings=labels_dir / "scut_ratings.csv",
        truth=labels_dir / "demo_truth.csv",
        n_images=spec.n_images,
    )
    _write_if_changed(dataset.fairface_labels, _csv_bytes(FAIRFACE_HEADER, fairface_rows))
    _write_if_changed(dataset.ratings, _csv_bytes(SCUT_HEADER, rating_rows))
    _write_if_changed(dataset.truth, _csv_bytes(TRUTH_HEADER, truth_rows))
    return dataset
