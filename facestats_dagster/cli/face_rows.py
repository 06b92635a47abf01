"""The faces of some image files, embedded, for the single-image commands (`facestats score`, `analyse`):
found and cut out with the pipeline's code, one output row per face or per file without one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facestats_core.embedding.embed import embed_paths
from facestats_core.faces.image_faces import faces_of_file


@dataclass
class EmbeddedFaces:
    """``rows``: one dict per face (``image``, ``face``, ``face_id``, ``box``, ``error``) or per file
    without a face (``face`` None, ``error`` says why); ``embeddings`` row i belongs to ``rows[row_of[i]]``."""

    rows: list[dict[str, Any]]
    row_of: list[int]
    embeddings: Any


def _file_rows(found: Any, name: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of one file and the chip paths of its faces (in the order of its face rows)."""
    if found.error is not None:
        return [{"image": name, "face": None, "error": found.error}], []
    rows = [{"image": name, "face": None, "error": f"no face: {d['reason']}"}
            for d in found.detections if d["face_id"] is None]
    boxes = {d["face_id"]: [round(d[k], 1) for k in ("box_x0", "box_y0", "box_x1", "box_y1")]
             for d in found.detections if d["face_id"] is not None}
    rows += [{"image": name, "face": number, "face_id": chip["face_id"], "box": boxes[chip["face_id"]],
              "error": None} for number, chip in enumerate(found.chips)]
    return rows, [chip["chip_path"] for chip in found.chips]


def embed_files(images: list[str], resources: dict[str, Any], clip: Any, work_dir: Path) -> EmbeddedFaces:
    """Find, cut out (chips under ``work_dir``) and embed the faces of ``images``; a face whose chip
    cannot be embedded gets that reason in its row's ``error``."""

    faces = resources["faces"]
    detector, detector_name = faces.face_detector()
    detection, chip_config = faces.detection(detector_name), faces.chips()
    rows: list[dict[str, Any]] = []
    ready: list[tuple[int, Path]] = []
    for index, name in enumerate(images):
        found = faces_of_file(Path(name), f"{index:08x}", detector, detection, chip_config, work_dir)
        file_rows, chips = _file_rows(found, name)
        face_positions = [len(rows) + i for i, row in enumerate(file_rows) if row["face"] is not None]
        rows.extend(file_rows)
        ready.extend((position, work_dir / chip) for position, chip in zip(face_positions, chips, strict=True))
    batch = embed_paths(clip, [path for _, path in ready], batch_size=resources["clip"].batch_size)
    for position, reason in batch.failures.items():
        rows[ready[position][0]]["error"] = reason
    return EmbeddedFaces(rows, [ready[i][0] for i in batch.ok_indices], batch.embeddings)
