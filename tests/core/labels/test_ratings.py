"""Tests for facestats_core.labels.ratings."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from facestats_core.labels.ratings import (
    issues_frame,
    match_ratings_to_images,
    merge_ratings,
    read_ratings,
)


def _write(tmp_path: Path, text: str, name: str = "ratings.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _images() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "image_id": ["id1", "id2", "id3", "id4"],
            "path": ["scut/CF1.jpg", "scut/CF2.jpg", "demo/face_00001.jpg", "other/CF2.jpg"],
        }
    )


def test_csv_with_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "filename,score\nCF1.jpg,3.5\n./CF2.jpg,1\nsub\\CF3.jpg,5.0\n")
    result = read_ratings(path)
    assert result.issues == []
    assert result.ratings.schema == {"file": pl.Utf8, "score": pl.Float64}
    assert result.ratings.rows() == [("CF1.jpg", 3.5), ("CF2.jpg", 1.0), ("sub/CF3.jpg", 5.0)]


def test_whitespace_txt_without_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "CF1.jpg 3.25\n\nCM2.jpg\t2.5\n", name="train.txt")
    result = read_ratings(path)
    assert result.issues == []
    assert result.ratings.rows() == [("CF1.jpg", 3.25), ("CM2.jpg", 2.5)]


def test_whitespace_header_and_csv_without_header(tmp_path: Path) -> None:
    txt = read_ratings(_write(tmp_path, "filename score\nA.jpg 2\n", name="a.txt"))
    assert txt.ratings.rows() == [("A.jpg", 2.0)] and txt.issues == []
    csv = read_ratings(_write(tmp_path, "A.jpg,2\nB.jpg,4.5\n", name="b.csv"))
    assert csv.ratings.rows() == [("A.jpg", 2.0), ("B.jpg", 4.5)] and csv.issues == []


def test_header_columns_by_name_and_extra_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "rater,score,filename\nx,4,A.jpg\ny,2\n")
    result = read_ratings(path)
    assert result.ratings.rows() == [("A.jpg", 4.0)]
    assert [(i.row, i.kind) for i in result.issues] == [(3, "malformed_row")]


def test_bad_rows_recorded_with_line_numbers(tmp_path: Path) -> None:
    text = (
        "filename,score\n"  # 1
        "A.jpg,3\n"  # 2
        "B.jpg,abc\n"  # 3 non-numeric
        "C.jpg,nan\n"  # 4 non-numeric (not finite)
        "D.jpg,5.5\n"  # 5 out of range
        "E.jpg,0.99\n"  # 6 out of range
        "A.jpg,4\n"  # 7 duplicate of line 2
        "F.jpg,2,extra\n"  # 8 malformed
        ",3\n"  # 9 empty name
        "B.jpg,2\n"  # 10 first valid B.jpg is kept
    )
    result = read_ratings(_write(tmp_path, text))
    assert result.ratings.rows() == [("A.jpg", 3.0), ("B.jpg", 2.0)]
    got = [(i.row, i.file, i.kind) for i in result.issues]
    assert got == [
        (3, "B.jpg", "non_numeric"),
        (4, "C.jpg", "non_numeric"),
        (5, "D.jpg", "out_of_range"),
        (6, "E.jpg", "out_of_range"),
        (7, "A.jpg", "duplicate"),
        (8, "F.jpg", "malformed_row"),
        (9, "", "malformed_row"),
    ]
    assert "kept line 2" in result.issues[4].message
    frame = issues_frame(result.issues)
    assert frame.height == 7 and frame["kind"].to_list()[0] == "non_numeric"


def test_custom_score_range(tmp_path: Path) -> None:
    path = _write(tmp_path, "filename,score\nA.jpg,8\nB.jpg,11\n")
    result = read_ratings(path, score_range=(0.0, 10.0))
    assert result.ratings.rows() == [("A.jpg", 8.0)]
    assert [i.kind for i in result.issues] == ["out_of_range"]


def test_missing_file_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_ratings(missing)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"", "no rating rows"),
        (b"filename,score\n", "no rating rows"),
        (b"\x89PNG\x00\x00garbage", "binary"),
        (b"\xff\xfe\xfa not utf8", "UTF-8"),
        (b"A.jpg,x\nB.jpg,y\n", "no valid rows"),
        (b"just some words here\n", "no valid rows"),
    ],
)
def test_empty_or_garbled_file_raises(tmp_path: Path, content: bytes, pattern: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=pattern):
        read_ratings(path)


def test_allow_empty_header_only(tmp_path: Path) -> None:
    result = read_ratings(_write(tmp_path, "filename,score\n"), allow_empty=True)
    assert result.ratings.height == 0 and result.ratings.schema["score"] == pl.Float64


def test_match_exact_basename_and_not_in_dataset() -> None:
    ratings = pl.DataFrame(
        {
            "file": ["demo/face_00001.jpg", "CF1.jpg", "CF2.jpg", "missing.jpg", "scut/CF1.jpg"],
            "score": [2.0, 3.0, 4.0, 1.5, 5.0],
        }
    )
    matched, issues = match_ratings_to_images(ratings, _images())
    assert matched.rows() == [("id3", "demo/face_00001.jpg", 2.0), ("id1", "scut/CF1.jpg", 3.0)]
    got = [(i.row, i.file, i.kind) for i in issues]
    assert got == [
        (3, "CF2.jpg", "not_in_dataset"),  # ambiguous base name
        (4, "missing.jpg", "not_in_dataset"),
        (5, "scut/CF1.jpg", "duplicate"),
    ]
    assert "ambiguous" in issues[0].message


def test_match_without_basename_fallback() -> None:
    ratings = pl.DataFrame({"file": ["CF1.jpg"], "score": [3.0]})
    matched, issues = match_ratings_to_images(ratings, _images(), match_basename=False)
    assert matched.height == 0
    assert [i.kind for i in issues] == ["not_in_dataset"]


def test_manual_ratings_override(tmp_path: Path) -> None:
    base = read_ratings(_write(tmp_path, "CF1.jpg 2.0\nCF3.jpg 3.0\n", name="train.txt")).ratings
    manual = read_ratings(_write(tmp_path, "filename,score\nCF3.jpg,4.5\nNEW.jpg,1.5\n")).ratings
    merged = merge_ratings(base, manual)
    assert merged.rows() == [("CF1.jpg", 2.0), ("CF3.jpg", 4.5), ("NEW.jpg", 1.5)]
    assert merged.schema == {"file": pl.Utf8, "score": pl.Float64}
