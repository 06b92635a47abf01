"""Label readers: FairFace CSVs and manual-label CSVs, mapped to canonical vocabularies.

Readers never raise on bad *content*: a value they cannot map becomes null and
is recorded as a :class:`LabelIssue` (with the 1-based data row number, i.e.
the first record after the header is row 1), so one typo does not block a run.
They do raise on a missing file (``FileNotFoundError``) or on a header that
lacks required columns (``ValueError``), because nothing useful can be read.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import polars as pl

from facestats_core.labels.vocab import (
    AGE_BINS,
    age_key,
    is_null_marker,
    normalize_age_bin,
    normalize_ethnicity,
    normalize_gender,
)

IssueKind = Literal["unknown_value", "duplicate", "malformed_row", "not_in_dataset"]
ISSUE_KINDS: tuple[str, ...] = ("unknown_value", "duplicate", "malformed_row", "not_in_dataset")

RACE4: tuple[str, ...] = ("white", "black", "asian", "indian")
"""FairFace-style 4-group race vocabulary; :func:`race4` adds ``"other"``."""
RACE4_OTHER = "other"

FAIRFACE_REQUIRED: tuple[str, ...] = ("file", "age", "gender", "race")
MANUAL_REQUIRED: tuple[str, ...] = ("filename", "gender", "age", "ethnicity")

LABEL_SCHEMA: dict[str, Any] = {
    "row": pl.Int64,
    "file": pl.String,
    "gender": pl.String,
    "age": pl.String,
    "ethnicity": pl.String,
}

_RACE4_MAP: dict[str, str] = {
    "white": "white",
    "black": "black",
    "east_asian": "asian",
    "southeast_asian": "asian",
    "indian": "indian",
    "latino_hispanic": RACE4_OTHER,
    "middle_eastern": RACE4_OTHER,
}


@dataclass(frozen=True)
class LabelIssue:
    """One problem found while reading or matching labels.

    ``row`` is the 1-based data row (first record after the header is 1);
    ``file`` is the row's file/filename value when known.
    """

    row: int
    file: str | None
    kind: IssueKind
    message: str


@dataclass(frozen=True)
class LabelReadResult:
    """Canonical labels plus every issue found while reading them.

    ``labels`` columns: ``row`` (1-based data row, used to report later
    issues), ``file`` (normalised relative POSIX path), ``gender``, ``age``,
    ``ethnicity`` (canonical or null) and, for FairFace, ``split``
    (``"train"``/``"val"``/null).
    """

    labels: pl.DataFrame
    issues: list[LabelIssue]


# --------------------------------------------------------------------------- vocab mapping


def normalize_age(value: str) -> str | None:
    """Map an age bin (``20-29``, ``20 - 29``, ``more than 70``, ``70+``) to canonical.

    A plain integer age (``34``) is also accepted and binned, which helps
    hand-written manual labels. Returns None when the value cannot be mapped.
    """
    canonical = normalize_age_bin(value)
    if canonical is not None:
        return canonical
    compact = age_key(value)
    return age_to_bin(int(compact)) if compact.isdigit() else None


def age_to_bin(age: int) -> str | None:
    """Canonical bin for an integer age in years, None when negative or > 130."""
    if age < 0 or age > 130:
        return None
    for label in AGE_BINS[:-1]:
        low, high = (int(p) for p in label.split("-"))
        if low <= age <= high:
            return label
    return AGE_BINS[-1]


def race4(ethnicity: str | None) -> str | None:
    """Collapse a canonical 7-group ethnicity into FairFace's 4-group race scheme.

    Groups: ``white``; ``black``; ``asian`` = ``east_asian`` + ``southeast_asian``;
    ``indian``. ``latino_hispanic`` and ``middle_eastern`` map to ``"other"``:
    the 4-group scheme (FairFace's ``race4`` model, inherited from UTKFace's
    White/Black/Asian/Indian/Others) has no category for them, and folding
    them into ``white`` — as some older datasets did — would silently inflate
    one group and hide two others. Keeping them apart as ``other`` keeps the
    counts honest. Null/unknown input returns None.
    """
    if ethnicity is None:
        return None
    canonical = normalize_ethnicity(ethnicity)
    return _RACE4_MAP.get(canonical) if canonical is not None else None


# --------------------------------------------------------------------------- CSV reading


def normalize_label_path(value: str) -> str:
    """Relative POSIX form of a label path: ``\\`` -> ``/``, no leading ``./`` or ``/``."""
    text = value.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text.lstrip("/")


def infer_split(file: str) -> str | None:
    """``"train"``/``"val"`` from the parent folder of a FairFace path, else None."""
    parts = PurePosixPath(file).parts
    if len(parts) < 2:
        return None
    parent = parts[-2].lower()
    if parent in ("train", "training"):
        return "train"
    if parent in ("val", "valid", "validation"):
        return "val"
    return None


def _read_records(path: str | os.PathLike[str], required: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    """Read a CSV as (normalised header, raw records); validate required columns."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"label file not found: {p}")
    with p.open("r", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header = [h.strip().lower() for h in rows[0]] if rows else []
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(
            f"label file {p} is missing required column(s) {missing}; found header {header}"
        )
    return header, rows[1:]


def _map_value(
    column: str,
    raw: str,
    mapper: Any,
    row: int,
    file: str,
    issues: list[LabelIssue],
) -> str | None:
    if is_null_marker(raw):
        return None
    value = mapper(raw)
    if value is None:
        issues.append(
            LabelIssue(row, file, "unknown_value", f"row {row}: unknown {column} value {raw!r} -> null")
        )
    return value


def _parse(
    path: str | os.PathLike[str],
    *,
    required: tuple[str, ...],
    file_col: str,
    columns: Mapping[str, tuple[str, Any]],
    with_split: bool,
) -> LabelReadResult:
    """Shared reader: ``columns`` maps output name -> (source column, mapper)."""
    header, records = _read_records(path, required)
    index = {name: i for i, name in enumerate(header)}
    last_required = max(index[c] for c in required)
    issues: list[LabelIssue] = []
    first_row: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for row, record in enumerate(records, start=1):
        if not record or all(not cell.strip() for cell in record):
            continue  # blank line: nothing to read, nothing to report
        if len(record) > len(header) or len(record) <= last_required:
            issues.append(
                LabelIssue(
                    row,
                    record[index[file_col]].strip() if len(record) > index[file_col] else None,
                    "malformed_row",
                    f"row {row}: expected {last_required + 1} to {len(header)} fields, got {len(record)}",
                )
            )
            continue
        record = record + [""] * (len(header) - len(record))  # trailing optional columns may be omitted
        file = normalize_label_path(record[index[file_col]])
        if not file:
            issues.append(LabelIssue(row, None, "malformed_row", f"row {row}: empty {file_col!r}"))
            continue
        face_id = record[index["face_id"]].strip() or None if "face_id" in index else None
        key = f"{file}#{face_id}" if face_id else file
        if key in first_row:
            issues.append(
                LabelIssue(
                    row, file, "duplicate", f"row {row}: {key!r} already labelled in row {first_row[key]}; kept the first"
                )
            )
            continue
        first_row[key] = row
        entry: dict[str, Any] = {"row": row, "file": file}
        if "face_id" in index:
            entry["face_id"] = face_id
        for name, (source, mapper) in columns.items():
            entry[name] = _map_value(name, record[index[source]], mapper, row, file, issues)
        if with_split:
            entry["split"] = infer_split(file)
        out.append(entry)
    schema = dict(LABEL_SCHEMA)
    if "face_id" in index:
        schema["face_id"] = pl.String
    if with_split:
        schema["split"] = pl.String
    return LabelReadResult(labels=pl.DataFrame(out, schema=schema), issues=issues)


def _attribute_columns(ethnicity_column: str) -> dict[str, tuple[str, Any]]:
    """Output column -> (source column, mapper) of the three attributes; only the
    ethnicity's source column differs between label formats."""
    return {
        "gender": ("gender", normalize_gender),
        "age": ("age", normalize_age),
        "ethnicity": (ethnicity_column, normalize_ethnicity),
    }


def read_fairface_labels(path: str | os.PathLike[str]) -> LabelReadResult:
    """Read a FairFace CSV (``file,age,gender,race[,service_test]``).

    Values are mapped leniently to the canonical vocabularies (``Male`` ->
    ``male``, ``East Asian`` -> ``east_asian``, ``more than 70`` -> ``70+``);
    ``race`` becomes ``ethnicity``. ``split`` is inferred from the parent
    folder (``train/1.jpg`` -> ``train``, ``val/2.jpg`` -> ``val``).
    """
    return _parse(
        path,
        required=FAIRFACE_REQUIRED,
        file_col="file",
        columns=_attribute_columns(ethnicity_column="race"),
        with_split=True,
    )


def read_manual_labels(path: str | os.PathLike[str]) -> LabelReadResult:
    """Read a manual-labels CSV (``filename,gender,age,ethnicity``; blanks -> null).

    An optional ``face_id`` column names one face of a multi-face image (one row per face;
    ``labels_template.csv`` has it). Other extra columns (e.g. ``flags`` from :func:`facestats_core.analysis.flags.labels_template`)
    are ignored. ``filename`` is the image path relative to the raw root.
    """
    return _parse(
        path,
        required=MANUAL_REQUIRED,
        file_col="filename",
        columns=_attribute_columns(ethnicity_column="ethnicity"),
        with_split=False,
    )


# --------------------------------------------------------------------------- matching


def match_labels_to_images(
    labels: pl.DataFrame,
    images: pl.DataFrame,
    *,
    prefix: str = "",
) -> tuple[pl.DataFrame, list[LabelIssue]]:
    """Join labels to images on the relative path.

    ``images`` needs ``image_id`` and ``path`` (relative to the raw root).
    A label's ``file`` is matched against ``prefix + file`` (use e.g.
    ``prefix="fairface/"`` when the FairFace tree sits in a sub-folder of the
    raw root). Returns the matched rows (``image_id``, ``path`` and every label
    column except ``row``) and a ``not_in_dataset`` issue for each label whose
    file is not in ``images``.
    """
    for frame, name, needed in ((labels, "labels", ("file",)), (images, "images", ("image_id", "path"))):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} frame is missing column(s) {missing}")
    if "row" not in labels.columns:
        labels = labels.with_row_index("row", offset=1).with_columns(pl.col("row").cast(pl.Int64))
    clean_prefix = normalize_label_path(prefix) if prefix else ""
    if clean_prefix and not clean_prefix.endswith("/"):
        clean_prefix += "/"
    keyed = labels.with_columns((pl.lit(clean_prefix) + pl.col("file")).alias("path"))
    imgs = images.select("image_id", pl.col("path").cast(pl.String))
    matched = keyed.join(imgs, on="path", how="inner", maintain_order="left")
    missing_rows = keyed.join(imgs, on="path", how="anti").sort("row")
    issues = [
        LabelIssue(int(r), f, "not_in_dataset", f"row {r}: {p!r} is not in the image data set")
        for r, f, p in missing_rows.select("row", "file", "path").iter_rows()
    ]
    label_cols = [c for c in labels.columns if c not in ("row", "path", "image_id")]
    return matched.select("image_id", "path", *label_cols), issues


def summarize_issues(issues: Iterable[LabelIssue]) -> dict[str, int]:
    """Counts per issue kind; every kind is present (zero when absent)."""
    counts = Counter(issue.kind for issue in issues)
    return {kind: int(counts.get(kind, 0)) for kind in ISSUE_KINDS}
