"""Attractiveness rating readers (SCUT-FBP5500 and manual ratings).

Accepted inputs
---------------
* CSV ``filename,score`` with a header (SCUT-FBP5500's label sheet exported to
  CSV, or a manual ratings CSV with the same columns). Extra columns are ignored
  when there is a header.
* Whitespace-separated ``filename score`` lines without a header (SCUT's
  ``train.txt`` / ``test.txt`` split files). File names containing spaces are
  only supported in the CSV form.

The format is auto-detected from the first non-blank line: a comma means CSV,
otherwise whitespace-separated. The first row is a header when its score field
is not a number and either a field is a known column name (``filename``/``file``/
``image``/``path``/… or ``score``/``rating``/…) or the row has exactly two fields
and the first has no file extension. Otherwise a non-numeric first row is an ordinary bad data row.

Bad rows are excluded and recorded as :class:`RatingIssue` objects whose ``row``
is the 1-based physical line number in the file (the header, if any, is line 1).
Blank lines are skipped silently. File names are normalised (surrounding
whitespace stripped, ``\\`` turned into ``/``, leading ``./`` removed) so they
compare equal to the relative paths of the ``raw_images`` manifest.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

IssueKind = Literal["non_numeric", "out_of_range", "duplicate", "malformed_row", "not_in_dataset"]

ISSUE_KINDS: tuple[str, ...] = (
    "non_numeric",
    "out_of_range",
    "duplicate",
    "malformed_row",
    "not_in_dataset",
)

DEFAULT_SCORE_RANGE: tuple[float, float] = (1.0, 5.0)

_FILE_HEADERS = frozenset({"filename", "file", "file_name", "image", "image_name", "img", "name", "path"})
_SCORE_HEADERS = frozenset(
    {"score", "rating", "mean", "mean_score", "avg", "average", "attractiveness", "beauty"}
)

RATINGS_SCHEMA: dict[str, Any] = {"file": pl.Utf8, "score": pl.Float64}
MATCHED_SCHEMA: dict[str, Any] = {"image_id": pl.Utf8, "path": pl.Utf8, "score": pl.Float64}



SCUT_RATED_ETHNICITIES: tuple[str, ...] = ("east_asian", "white")
"""The faces SCUT-FBP5500's raters rated (Asian and Caucasian): a regressor trained on its
ratings has seen no face of another ethnicity, so scores of those faces are out of its domain."""

@dataclass(frozen=True)
class RatingIssue:
    """One problem found while reading or matching ratings.

    ``row`` is the 1-based line number in the ratings file for reader issues,
    and the 1-based row of the ratings table for :func:`match_ratings_to_images`.
    """

    row: int
    file: str
    kind: IssueKind
    message: str


@dataclass(frozen=True)
class RatingsReadResult:
    """Valid ratings (``file: str, score: float64``) plus every excluded row."""

    ratings: pl.DataFrame
    issues: list[RatingIssue] = field(default_factory=list)


def normalise_file_name(name: str) -> str:
    """Normalise a ratings file name for comparison with manifest paths."""
    text = name.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text


def _parse_score(text: str) -> float | None:
    """Return a finite float, or ``None`` when ``text`` is not a finite number."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _looks_like_header(fields: Sequence[str]) -> bool:
    if len(fields) < 2 or _parse_score(fields[1]) is not None:
        return False
    lowered = [f.strip().lower() for f in fields]
    if lowered[0] in _FILE_HEADERS or any(f in _SCORE_HEADERS for f in lowered[1:]):
        return True
    return len(fields) == 2 and "." not in lowered[0]


def _read_text(path: str | os.PathLike[str]) -> str:
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"ratings file not found: {target}")
    raw = target.read_bytes()
    if b"\x00" in raw:
        raise ValueError(f"ratings file {target} looks binary (NUL bytes); expected CSV or text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"ratings file {target} is not UTF-8 text: {exc}") from exc


def _iter_rows(text: str) -> Iterable[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` for non-blank lines, auto-detecting the format."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if "," in first:
        reader = csv.reader(io.StringIO(text))
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            yield reader.line_num, fields
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield number, line.split()


def read_ratings(
    path: str | os.PathLike[str],
    *,
    score_range: tuple[float, float] = DEFAULT_SCORE_RANGE,
    allow_empty: bool = False,
) -> RatingsReadResult:
    """Read a SCUT-FBP5500 style (or manual) ratings file.

    Args:
        path: CSV ``filename,score`` (header) or ``filename score`` text lines.
        score_range: inclusive ``(low, high)`` bounds for a valid score.
        allow_empty: return an empty table instead of raising when the file has
            no data rows (e.g. a header-only manual ratings file).

    Returns:
        Valid ratings in file order and the list of excluded rows. Among
        duplicate file names the first *valid* row wins; later ones are issues.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names it).
        ValueError: the file is binary/undecodable, has no data rows (unless
            ``allow_empty``), or has data rows of which none is valid.
    """
    low, high = score_range
    if not low <= high:
        raise ValueError(f"invalid score_range {score_range!r}: low must be <= high")
    text = _read_text(path)

    files: list[str] = []
    scores: list[float] = []
    issues: list[RatingIssue] = []
    first_row_of: dict[str, int] = {}
    file_col, score_col, expected_fields = 0, 1, 2
    data_rows = 0

    for index, (line_no, fields) in enumerate(_iter_rows(text)):
        if index == 0 and _looks_like_header(fields):
            lowered = [f.strip().lower() for f in fields]
            file_col = next((i for i, f in enumerate(lowered) if f in _FILE_HEADERS), 0)
            score_col = next(
                (i for i, f in enumerate(lowered) if f in _SCORE_HEADERS and i != file_col),
                1 if file_col != 1 else 0,
            )
            expected_fields = len(fields)
            continue
        data_rows += 1
        shown = normalise_file_name(fields[file_col]) if len(fields) > file_col else ""
        if len(fields) != expected_fields:
            issues.append(
                RatingIssue(
                    line_no,
                    shown,
                    "malformed_row",
                    f"line {line_no}: expected {expected_fields} fields, got {len(fields)}",
                )
            )
            continue
        name = shown
        if not name:
            issues.append(RatingIssue(line_no, name, "malformed_row", f"line {line_no}: empty file name"))
            continue
        raw_score = fields[score_col]
        score = _parse_score(raw_score)
        if score is None:
            issues.append(
                RatingIssue(
                    line_no,
                    name,
                    "non_numeric",
                    f"line {line_no}: score {raw_score.strip()!r} for {name!r} is not a finite number",
                )
            )
            continue
        if not low <= score <= high:
            issues.append(
                RatingIssue(
                    line_no,
                    name,
                    "out_of_range",
                    f"line {line_no}: score {score:g} for {name!r} outside [{low:g}, {high:g}]",
                )
            )
            continue
        if name in first_row_of:
            issues.append(
                RatingIssue(
                    line_no,
                    name,
                    "duplicate",
                    f"line {line_no}: duplicate rating for {name!r} (kept line {first_row_of[name]})",
                )
            )
            continue
        first_row_of[name] = line_no
        files.append(name)
        scores.append(score)

    if data_rows == 0 and not allow_empty:
        raise ValueError(f"ratings file {path} has no rating rows (empty or header only)")
    if data_rows > 0 and not files:
        kinds = sorted({i.kind for i in issues})
        examples = "; ".join(i.message for i in issues[:3])
        raise ValueError(
            f"ratings file {path} has no valid rows ({data_rows} rows, issues: {', '.join(kinds)}); "
            f"expected 'filename,score' CSV or 'filename score' lines with scores in "
            f"[{low:g}, {high:g}]. First problems: {examples}"
        )
    ratings = pl.DataFrame({"file": files, "score": scores}, schema=RATINGS_SCHEMA)
    return RatingsReadResult(ratings=ratings, issues=issues)


def merge_ratings(base: pl.DataFrame, manual: pl.DataFrame) -> pl.DataFrame:
    """Combine data-set ratings with manual ratings; manual wins for the same file.

    Both frames have ``file, score``. The result keeps ``base`` order (with
    overridden scores), then appends files only present in ``manual`` in their
    order. File names are compared after :func:`normalise_file_name`. If a frame
    repeats a file, its first row counts.
    """
    merged: dict[str, float] = {}
    for name, score in zip(base["file"].to_list(), base["score"].to_list(), strict=True):
        merged.setdefault(normalise_file_name(name), float(score))
    seen_manual: set[str] = set()
    for name, score in zip(manual["file"].to_list(), manual["score"].to_list(), strict=True):
        key = normalise_file_name(name)
        if key not in seen_manual:
            seen_manual.add(key)
            merged[key] = float(score)
    return pl.DataFrame(
        {"file": list(merged.keys()), "score": list(merged.values())}, schema=RATINGS_SCHEMA
    )


def match_ratings_to_images(
    ratings: pl.DataFrame,
    images: pl.DataFrame,
    *,
    match_basename: bool = True,
) -> tuple[pl.DataFrame, list[RatingIssue]]:
    """Attach ratings to images by relative path.

    A rating's ``file`` matches an image whose ``path`` equals it exactly. When
    ``match_basename`` is true and ``file`` has no ``/`` (SCUT lists bare names
    like ``CF1.jpg``), it also matches the single image whose path ends in
    ``/<file>``; if several images share that base name the rating is reported
    as ``not_in_dataset`` (ambiguous) rather than guessed.

    Returns:
        ``(image_id, path, score)`` in ratings order, and issues: ``not_in_dataset``
        for unmatched (or ambiguous) files and ``duplicate`` when two ratings
        resolve to the same image path (the first is kept). Issue ``row`` is the
        1-based row in ``ratings``.
    """
    by_path: dict[str, str] = {}
    by_base: dict[str, list[str]] = {}
    for image_id, path in zip(images["image_id"].to_list(), images["path"].to_list(), strict=True):
        rel = normalise_file_name(path)
        if rel in by_path:
            continue
        by_path[rel] = image_id
        by_base.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)

    out_ids: list[str] = []
    out_paths: list[str] = []
    out_scores: list[float] = []
    issues: list[RatingIssue] = []
    used: dict[str, int] = {}
    rows = zip(ratings["file"].to_list(), ratings["score"].to_list(), strict=True)
    for row, (name, score) in enumerate(rows, start=1):
        key = normalise_file_name(name)
        rel: str | None = key if key in by_path else None
        if rel is None and match_basename and "/" not in key:
            candidates = by_base.get(key, [])
            if len(candidates) == 1:
                rel = candidates[0]
            elif len(candidates) > 1:
                issues.append(
                    RatingIssue(
                        row,
                        key,
                        "not_in_dataset",
                        f"rating for {key!r} is ambiguous: {len(candidates)} images share that name",
                    )
                )
                continue
        if rel is None:
            issues.append(
                RatingIssue(row, key, "not_in_dataset", f"rated file {key!r} is not in the image data set")
            )
            continue
        if rel in used:
            issues.append(
                RatingIssue(
                    row,
                    key,
                    "duplicate",
                    f"rating for {key!r} resolves to image {rel!r} already rated in row {used[rel]}",
                )
            )
            continue
        used[rel] = row
        out_ids.append(by_path[rel])
        out_paths.append(rel)
        out_scores.append(float(score))
    matched = pl.DataFrame(
        {"image_id": out_ids, "path": out_paths, "score": out_scores}, schema=MATCHED_SCHEMA
    )
    return matched, issues


def issues_frame(issues: Sequence[RatingIssue]) -> pl.DataFrame:
    """Issues as a table ``row, file, kind, message`` (for metadata and reports)."""
    return pl.DataFrame(
        {
            "row": [i.row for i in issues],
            "file": [i.file for i in issues],
            "kind": [i.kind for i in issues],
            "message": [i.message for i in issues],
        },
        schema={"row": pl.Int64, "file": pl.Utf8, "kind": pl.Utf8, "message": pl.Utf8},
    )
