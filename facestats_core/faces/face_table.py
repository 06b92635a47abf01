"""The faces of every image: one row per usable face, one row per image without one (with its reason).

:func:`detect_manifest` turns a raw-image manifest into the face-detections table:

* ``face_mode = detect``: the detector runs on the upright original (a copy bounded to
  ``max_side``, see :func:`~facestats_core.faces.detection.detect_bounded`);
* ``whole``: the image *is* the face (pre-cropped data sets such as FairFace, SCUT-FBP5500,
  the demo); its box is the centred square; landmarks come from the landmarks file, else
  from the detector when it finds a face, else none;
* ``auto``: detect; when nothing is found in a near-square portrait (aspect ≤
  ``portrait_aspect``, at most ``portrait_max_side`` px) use the whole image
  (``face_source = whole_image``).

The multi-face policy (``all``, ``largest``, ``skip_multi``) and a minimum face size are
applied here. Every image keeps at least one row: faces have a ``face_id``; the others have
``face_id = null`` and a ``reason`` (:data:`NO_FACE_REASONS`). Rows are cached per image id
and :attr:`DetectionConfig.version` (which includes the detector's name), so unchanged images
are never detected again.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from PIL import Image

from facestats_core.faces.detection import DEFAULT_MAX_SIDE, DetectedFace, FaceDetector, detect_bounded
from facestats_core.faces.face_ids import make_face_id
from facestats_core.images.decode import DEFAULT_MAX_PIXELS, ImageReadError, load_rgb

FACE_MODES: tuple[str, ...] = ("detect", "whole", "auto")
MULTI_FACE_POLICIES: tuple[str, ...] = ("all", "largest", "skip_multi")

NO_FACE_REASONS: dict[str, str] = {
    "unreadable": "the file could not be read as an image",
    "no_face": "the detector found no face",
    "no_detector": "face_mode=detect but no face detector is installed or configured",
    "face_too_small": "every face found is smaller than min_face_px",
    "skipped_multi": "several faces and multi_face=skip_multi",
    "detector_error": "the detector raised an error",
}
"""``reason`` values of rows without a face."""

COLUMN_MEANINGS: dict[str, str] = {
    "landmarks": "68 iBUG points (x0, y0, x1, y1, …) in original pixels, or the file's points for a whole image",
    "landmarks5": "the CNN detector's own 5 points (eyes, nose tip, mouth corners); null for dlib or a whole image",
    "rotation": "the face's in-plane angle in degrees (0 upright, 90 a quarter turn clockwise, ±180 upside down): "
                "its 68 points were fitted on the face turned back by it, and its chips are cut upright (0 for dlib and "
                "whole images: nothing was turned)",
    "rotation_pass": "the 90° turn (counter-clockwise) of the image the CNN found the face in: 0, 90, 180 or 270",
}
"""What the less obvious columns of the face-detections table hold."""

DETECTIONS_SCHEMA: dict[str, Any] = {
    "image_id": pl.String,
    "path": pl.String,
    "face_id": pl.String,
    "face_index": pl.Int32,
    "faces_in_image": pl.Int32,
    "faces_found": pl.Int32,
    "face_source": pl.String,
    "box_x0": pl.Float64,
    "box_y0": pl.Float64,
    "box_x1": pl.Float64,
    "box_y1": pl.Float64,
    "score": pl.Float64,
    "landmarks": pl.List(pl.Float64),
    "landmark_points": pl.Int32,
    "landmarks5": pl.List(pl.Float64),
    "rotation": pl.Float64,
    "rotation_pass": pl.Int32,
    "image_width": pl.Int32,
    "image_height": pl.Int32,
    "reason": pl.String,
    "detection_version": pl.String,
}


@dataclass(frozen=True)
class DetectionConfig:
    """How faces are found. ``detector_name`` is part of :attr:`version`."""

    face_mode: str = "detect"
    multi_face: str = "all"
    max_side: int = DEFAULT_MAX_SIDE
    min_face_px: int = 24
    portrait_aspect: float = 1.35
    portrait_max_side: int = 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    detector_name: str = "none"

    def __post_init__(self) -> None:
        if self.face_mode not in FACE_MODES:
            raise ValueError(f"face_mode must be one of {', '.join(FACE_MODES)}, got {self.face_mode!r}")
        if self.multi_face not in MULTI_FACE_POLICIES:
            raise ValueError(f"multi_face must be one of {', '.join(MULTI_FACE_POLICIES)}, got {self.multi_face!r}")
        if self.min_face_px < 1:
            raise ValueError(f"min_face_px must be >= 1, got {self.min_face_px}")

    @property
    def version(self) -> str:
        """Rows made under another version are detected again."""
        return (f"{self.face_mode}-{self.multi_face}-max{self.max_side}-min{self.min_face_px}"
                f"-{self.detector_name}-v2")


@dataclass
class DetectionStats:
    images: int = 0
    faces: int = 0
    detector_runs: int = 0
    reused: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)


def centred_square(width: int, height: int) -> tuple[float, float, float, float]:
    """The largest centred square of a ``width × height`` image as a box."""
    side = min(width, height)
    x0, y0 = (width - side) / 2.0, (height - side) / 2.0
    return (x0, y0, x0 + side, y0 + side)


def is_portrait(width: int, height: int, config: DetectionConfig) -> bool:
    """A tight, near-square picture that is plausibly one pre-cropped face."""
    return max(width, height) / max(min(width, height), 1) <= config.portrait_aspect and max(
        width, height
    ) <= config.portrait_max_side


def apply_policy(faces: list[DetectedFace], config: DetectionConfig) -> tuple[list[DetectedFace], str | None]:
    """Usable faces after the size floor and the multi-face policy, or ``([], reason)``."""
    if not faces:
        return [], "no_face"
    big = [f for f in faces if min(f.width, f.height) >= config.min_face_px]
    if not big:
        return [], "face_too_small"
    if len(big) > 1 and config.multi_face == "skip_multi":
        return [], "skipped_multi"
    if config.multi_face == "largest":
        big = [max(big, key=lambda f: f.area)]
    return big, None


def _face_row(image_id: str, path: str, face: DetectedFace, index: int, count: int, found: int,
              source: str, size: tuple[int, int], version: str) -> dict[str, Any]:
    points = None if face.landmarks is None else np.asarray(face.landmarks, dtype=np.float64).reshape(-1, 2)
    points5 = None if face.points5 is None else np.asarray(face.points5, dtype=np.float64).ravel().tolist()
    return {
        "image_id": image_id, "path": path, "face_id": make_face_id(image_id, face.box, *size),
        "face_index": index, "faces_in_image": count, "faces_found": found, "face_source": source,
        "box_x0": face.box[0], "box_y0": face.box[1], "box_x1": face.box[2], "box_y1": face.box[3],
        "score": face.score, "landmarks": None if points is None else points.ravel().tolist(),
        "landmark_points": 0 if points is None else len(points), "landmarks5": points5,
        "rotation": face.rotation, "rotation_pass": face.rotation_pass,
        "image_width": size[0], "image_height": size[1], "reason": None, "detection_version": version,
    }


def no_face_row(image_id: str, path: str, reason: str, version: str, found: int = 0,
                size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The one row of an image without a usable face."""
    row = dict.fromkeys(DETECTIONS_SCHEMA)
    row.update(image_id=image_id, path=path, reason=reason, detection_version=version, faces_found=found,
               faces_in_image=0)
    if size is not None:
        row.update(image_width=size[0], image_height=size[1])
    return row


def _whole_face(image: Image.Image, detector: FaceDetector | None, known: np.ndarray | None,
                config: DetectionConfig) -> tuple[DetectedFace, bool]:
    """The whole-image face; landmarks from the file, else the detector's best face (ran: bool)."""
    box = centred_square(*image.size)
    if known is not None:
        return DetectedFace(box=box, score=1.0, landmarks=known), False
    if detector is None:
        return DetectedFace(box=box, score=1.0), False
    found = detect_bounded(image, detector, config.max_side)
    landmarks = found[0].landmarks if found else None
    return DetectedFace(box=box, score=1.0, landmarks=landmarks), True


def faces_of_image(
    image: Image.Image, image_id: str, path: str, detector: FaceDetector | None, config: DetectionConfig,
    known_landmarks: np.ndarray | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Detection rows of one upright RGB image and whether the detector ran."""
    size = image.size
    version = config.version
    if config.face_mode == "whole":
        face, ran = _whole_face(image, detector, known_landmarks, config)
        return [_face_row(image_id, path, face, 0, 1, 1, "whole_image", size, version)], ran
    if detector is None:
        if config.face_mode == "auto" and is_portrait(*size, config):
            face, _ = _whole_face(image, None, known_landmarks, config)
            return [_face_row(image_id, path, face, 0, 1, 0, "whole_image", size, version)], False
        return [no_face_row(image_id, path, "no_detector", version, size=size)], False
    found = detect_bounded(image, detector, config.max_side)
    faces, reason = apply_policy(found, config)
    if reason == "no_face" and config.face_mode == "auto" and is_portrait(*size, config):
        face, _ = _whole_face(image, None, known_landmarks, config)
        return [_face_row(image_id, path, face, 0, 1, 0, "whole_image", size, version)], True
    if reason is not None:
        return [no_face_row(image_id, path, reason, version, found=len(found), size=size)], True
    faces = sorted(faces, key=lambda f: (f.box[0], f.box[1]))
    rows = [_face_row(image_id, path, f, i, len(faces), len(found), "detector", size, version)
            for i, f in enumerate(faces)]
    return _dedupe_ids(rows), True


def _dedupe_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Faces whose centres round to the same id (overlapping detections) keep the first."""
    seen: set[str] = set()
    kept = [row for row in rows if not (row["face_id"] in seen or seen.add(row["face_id"]))]
    for index, row in enumerate(kept):
        row.update(face_index=index, faces_in_image=len(kept))
    return kept


def _reusable(previous: pl.DataFrame | None, version: str) -> dict[str, list[dict[str, Any]]]:
    if previous is None or previous.height == 0 or "detection_version" not in previous.columns:
        return {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in previous.filter(pl.col("detection_version") == version).iter_rows(named=True):
        rows.setdefault(row["image_id"], []).append(row)
    return rows


PARALLEL_MIN_IMAGES = 16
"""Fewest images to detect before ``workers > 1`` starts a process pool (starting one costs ~1-2 s)."""


def detect_manifest(
    raw_manifest: pl.DataFrame,
    raw_root: Any,
    detector: FaceDetector | None,
    config: DetectionConfig,
    previous: pl.DataFrame | None = None,
    landmarks: Mapping[str, np.ndarray] | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
    pool: DetectionPool | None = None,
) -> tuple[pl.DataFrame, DetectionStats]:
    """The face-detections table of a raw manifest (see the module docstring).

    ``landmarks`` maps a raw path (relative to ``raw_root``) to known landmarks in that
    image's upright pixel coordinates (e.g. the demo truth); images whose landmarks
    changed are detected again. ``workers > 1`` detects in that many processes (one core each:
    a CNN detector runs one thread there) when at least :data:`PARALLEL_MIN_IMAGES` images need
    the detector; ``pool`` (a :class:`DetectionPool` of ``detector``) lends its processes instead, so the
    manifests of one run start them once. The rows are the same either way. Never raises for a bad image:
    it becomes a reason row.
    """
    known = landmarks or {}
    reusable = _reusable(previous, config.version)
    stats = DetectionStats()
    per_image: list[list[dict[str, Any]] | None] = []
    todo: list[tuple[int, dict[str, Any]]] = []
    for raw in raw_manifest.iter_rows(named=True):
        old = reusable.get(raw["image_id"])
        if old is not None and _same_landmarks(old, known.get(raw["path"])):
            per_image.append([{**row, "path": raw["path"]} for row in old])
            stats.reused += 1
        else:
            todo.append((len(per_image), raw))
            per_image.append(None)
    jobs = [(raw, raw_root, detector, config, known.get(raw["path"])) for _, raw in todo]
    detecting = sum(1 for job in jobs if config.face_mode != "whole" or job[4] is None) if detector else 0
    done = stats.reused
    with contextlib.ExitStack() as stack:
        if detecting < PARALLEL_MIN_IMAGES:
            pool = DetectionPool(detector, 1)  # in this process: starting processes would cost more
        elif pool is None:
            pool = stack.enter_context(DetectionPool(detector, workers))
        for (position, _), (image_rows, ran) in zip(todo, pool.detect(jobs), strict=True):
            per_image[position] = image_rows
            stats.detector_runs += int(ran)
            done += 1
            if progress is not None:
                progress(done, raw_manifest.height)
    rows: list[dict[str, Any]] = []
    for image_rows in per_image:
        assert image_rows is not None
        stats.images += 1
        for row in image_rows:
            if row["face_id"] is None:
                stats.reasons[row["reason"]] += 1
            else:
                stats.faces += 1
                stats.sources[row["face_source"]] += 1
        rows.extend(image_rows)
    frame = pl.DataFrame(rows, schema=DETECTIONS_SCHEMA) if rows else pl.DataFrame(schema=DETECTIONS_SCHEMA)
    return frame, stats


_WORKER_DETECTOR: list[FaceDetector | None] = []
"""The detector of a pool worker process, loaded once per process (its models load on first use)."""


def _init_worker(detector: FaceDetector | None) -> None:
    _WORKER_DETECTOR[:] = [detector]


def _detect_job(job: tuple[Any, ...]) -> tuple[list[dict[str, Any]], bool]:
    return _detect_one(*job)


def _detect_in_worker(job: tuple[Any, ...]) -> tuple[list[dict[str, Any]], bool]:
    raw, raw_root, _, config, known = job
    return _detect_one(raw, raw_root, _WORKER_DETECTOR[0], config, known)


class DetectionPool:
    """Processes that detect faces, each loading ``detector``'s models once, shared by the manifests of a run.

    ``DetectionPool(detector, workers)`` is a context manager; :meth:`detect` gives each job's rows in
    order. With ``workers <= 1`` it detects in this process. The processes start on the first
    :meth:`detect` (started by ``spawn``: no fork of a process that may hold torch threads), so a run whose
    images are all reused starts none, and they stop on leaving the ``with`` block. Starting them costs
    about a second of imports and model loading, once per pool instead of once per manifest.
    """

    def __init__(self, detector: FaceDetector | None, workers: int) -> None:
        self.detector = detector
        self.workers = max(1, int(workers))
        self._executor: Any = None

    def __enter__(self) -> DetectionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def detect(self, jobs: list[tuple[Any, ...]]) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """``(rows, detector ran)`` of each ``(raw, raw_root, detector, config, known)`` job, in order."""
        if self.workers <= 1 or not jobs:
            yield from map(_detect_job, jobs)
            return
        if any(job[2] is not self.detector for job in jobs):
            raise ValueError("a DetectionPool detects with the detector it was made with")
        light = [(raw, root, None, config, known) for raw, root, _, config, known in jobs]
        # Small chunks: each manifest's last chunk is waited for before the next manifest's first is sent.
        yield from self._pool().map(_detect_in_worker, light, chunksize=max(1, len(jobs) // (32 * self.workers)))

    def _pool(self) -> Any:
        if self._executor is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(_one_thread(self.detector),))
        return self._executor


def _one_thread(detector: FaceDetector | None) -> FaceDetector | None:
    """The detector a worker process loads: one thread (``threads=1``) when it has threads, since
    the workers already use every core."""
    if detector is not None and dataclasses.is_dataclass(detector) and hasattr(detector, "threads"):
        return dataclasses.replace(detector, threads=1)  # type: ignore[type-var]
    return detector


def _same_landmarks(old: list[dict[str, Any]], known: np.ndarray | None) -> bool:
    if known is None or old[0]["face_source"] != "whole_image":
        return True
    stored = old[0]["landmarks"]
    return stored is not None and np.allclose(np.asarray(stored), np.asarray(known, dtype=np.float64).ravel())


def _detect_one(raw: Mapping[str, Any], raw_root: Any, detector: FaceDetector | None, config: DetectionConfig,
                known: np.ndarray | None) -> tuple[list[dict[str, Any]], bool]:
    image_id, path, version = raw["image_id"], raw["path"], config.version
    if not raw["readable"]:
        return [no_face_row(image_id, path, "unreadable", version)], False
    try:
        image = load_rgb((raw_root / path).read_bytes(), max_pixels=config.max_pixels)
    except (ImageReadError, OSError):
        return [no_face_row(image_id, path, "unreadable", version)], False
    try:
        return faces_of_image(image, image_id, path, detector, config, known)
    except Exception:  # noqa: BLE001 - one image's detector failure is a reason, not a failed run
        return [no_face_row(image_id, path, "detector_error", version, size=image.size)], True
