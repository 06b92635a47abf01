"""Label readers: vocabulary mapping, issues with row numbers, matching to images."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from facestats_core.labels.attribute_labels import (
    LabelIssue,
    match_labels_to_images,
    normalize_age,
    race4,
    read_fairface_labels,
    read_manual_labels,
    summarize_issues,
)
from facestats_core.labels.vocab import AGE_BINS, ETHNICITIES, normalize_ethnicity, normalize_gender


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


FAIRFACE = """file,age,gender,race,service_test
train/1.jpg,20-29,Male,East Asian,True
train/2.jpg,more than 70,Female,Latino_Hispanic,False
val/3.jpg,0-2,male,Southeast Asian,True
val/4.jpg,50-59,FEMALE, middle eastern ,False
other/5.jpg,3-9,Male,White,True
"""


def test_fairface_vocab_mapping_and_split(tmp_path: Path) -> None:
    result = read_fairface_labels(_write(tmp_path, "ff.csv", FAIRFACE))
    assert result.issues == []
    df = result.labels
    assert df.columns == ["row", "file", "gender", "age", "ethnicity", "split"]
    assert df["gender"].to_list() == ["male", "female", "male", "female", "male"]
    assert df["age"].to_list() == ["20-29", "70+", "0-2", "50-59", "3-9"]
    assert df["ethnicity"].to_list() == ["east_asian", "latino_hispanic", "southeast_asian", "middle_eastern", "white"]
    assert df["split"].to_list() == ["train", "train", "val", "val", None]
    assert df["row"].to_list() == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("fn", "raw", "expected"),
    [
        (normalize_gender, "  Male ", "male"),
        (normalize_gender, "F", "female"),
        (normalize_ethnicity, "east_asian", "east_asian"),
        (normalize_ethnicity, "EAST  ASIAN", "east_asian"),
        (normalize_ethnicity, "Latino Hispanic", "latino_hispanic"),
        (normalize_ethnicity, "South-East Asian", "southeast_asian"),
        (normalize_age, "More Than 70", "70+"),
        (normalize_age, "more_than_70", "70+"),
        (normalize_age, "20 - 29", "20-29"),
        (normalize_age, "34", "30-39"),
        (normalize_gender, "robot", None),
        (normalize_age, "20-30", None),
    ],
)
def test_lenient_normalisers(fn, raw: str, expected: str | None) -> None:
    assert fn(raw) == expected


def test_all_canonical_values_round_trip() -> None:
    assert all(normalize_age(a) == a for a in AGE_BINS)
    assert all(normalize_ethnicity(e) == e for e in ETHNICITIES)


def test_race4_grouping() -> None:
    assert race4("east_asian") == race4("southeast_asian") == "asian"
    assert race4("white") == "white" and race4("black") == "black" and race4("indian") == "indian"
    assert race4("latino_hispanic") == race4("middle_eastern") == "other"
    assert race4(None) is None and race4("martian") is None


def test_unknown_values_become_null_with_row_numbers(tmp_path: Path) -> None:
    text = "file,age,gender,race\ntrain/1.jpg,20-29,Male,White\ntrain/2.jpg,twenty,Male,Klingon\n"
    result = read_fairface_labels(_write(tmp_path, "ff.csv", text))
    row2 = result.labels.filter(pl.col("file") == "train/2.jpg").row(0, named=True)
    assert row2["age"] is None and row2["ethnicity"] is None and row2["gender"] == "male"
    assert [(i.row, i.file, i.kind) for i in result.issues] == [
        (2, "train/2.jpg", "unknown_value"),
        (2, "train/2.jpg", "unknown_value"),
    ]
    assert "twenty" in result.issues[0].message and "Klingon" in result.issues[1].message


def test_duplicates_keep_first_and_malformed_rows(tmp_path: Path) -> None:
    text = (
        "file,age,gender,race\n"
        "train/1.jpg,20-29,Male,White\n"
        "train/1.jpg,30-39,Female,Black\n"
        "train/2.jpg,20-29\n"
        "train/3.jpg,40-49,Female,Indian\n"
    )
    result = read_fairface_labels(_write(tmp_path, "ff.csv", text))
    assert result.labels["file"].to_list() == ["train/1.jpg", "train/3.jpg"]
    assert result.labels.filter(pl.col("file") == "train/1.jpg")["age"].item() == "20-29"
    kinds = {(i.row, i.kind) for i in result.issues}
    assert kinds == {(2, "duplicate"), (3, "malformed_row")}
    assert "row 1" in next(i.message for i in result.issues if i.kind == "duplicate")


def test_missing_file_raises_with_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_fairface_labels(missing)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_manual_labels(missing)


def test_missing_columns_raise_naming_them(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.csv", "file,gender\nx.jpg,Male\n")
    with pytest.raises(ValueError, match=r"age.*race"):
        read_fairface_labels(path)
    with pytest.raises(ValueError, match="ethnicity"):
        read_manual_labels(_write(tmp_path, "m.csv", "filename,gender,age\n"))
    with pytest.raises(ValueError, match="filename"):
        read_manual_labels(_write(tmp_path, "empty.csv", ""))


def test_manual_labels_blanks_are_null(tmp_path: Path) -> None:
    text = (
        "\ufefffilename,gender,age,ethnicity,flags\n"  # BOM + extra column are tolerated
        "demo/face_00001.jpg,female,,,\n"
        "demo/face_00002.jpg,,34,Indian,blurry\n"
        ".\\demo\\face_00003.jpg,unknown,,east asian\n"  # trailing optional column omitted
    )
    result = read_manual_labels(_write(tmp_path, "manual.csv", text))
    assert result.issues == []
    assert "split" not in result.labels.columns
    rows = result.labels.rows(named=True)
    assert [r["file"] for r in rows] == ["demo/face_00001.jpg", "demo/face_00002.jpg", "demo/face_00003.jpg"]
    assert (rows[0]["gender"], rows[0]["age"], rows[0]["ethnicity"]) == ("female", None, None)
    assert (rows[1]["gender"], rows[1]["age"], rows[1]["ethnicity"]) == (None, "30-39", "indian")
    assert (rows[2]["gender"], rows[2]["ethnicity"]) == (None, "east_asian")


def test_match_labels_reports_not_in_dataset(tmp_path: Path) -> None:
    labels = read_fairface_labels(_write(tmp_path, "ff.csv", FAIRFACE)).labels
    images = pl.DataFrame(
        {"image_id": ["h1", "h3", "h9"], "path": ["fairface/train/1.jpg", "fairface/val/3.jpg", "fairface/val/9.jpg"]}
    )
    matched, issues = match_labels_to_images(labels, images, prefix="fairface")
    assert matched["image_id"].to_list() == ["h1", "h3"]
    assert matched.columns[:2] == ["image_id", "path"] and "row" not in matched.columns
    assert matched.filter(pl.col("image_id") == "h3")["ethnicity"].item() == "southeast_asian"
    assert [(i.row, i.file, i.kind) for i in issues] == [
        (2, "train/2.jpg", "not_in_dataset"),
        (4, "val/4.jpg", "not_in_dataset"),
        (5, "other/5.jpg", "not_in_dataset"),
    ]
    no_prefix, all_missing = match_labels_to_images(labels, images)
    assert no_prefix.height == 0 and len(all_missing) == 5


def test_summarize_issues_counts_every_kind() -> None:
    issues = [
        LabelIssue(1, "a", "duplicate", "m"),
        LabelIssue(2, "b", "duplicate", "m"),
        LabelIssue(3, None, "malformed_row", "m"),
    ]
    assert summarize_issues(issues) == {"unknown_value": 0, "duplicate": 2, "malformed_row": 1, "not_in_dataset": 0}
