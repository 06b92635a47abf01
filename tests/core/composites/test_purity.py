"""Composite purity against true labels: hand-made master tables and truth files."""

from __future__ import annotations

import polars as pl
import pytest

from facestats_core.composites.filter_spec import parse_spec
from facestats_core.composites.purity import composite_purity, purity_from_face_truth, purity_text
from facestats_core.labels.face_labels import true_labels_by_face


def _master(n: int) -> pl.DataFrame:
    """`n` one-face images `img_i.jpg` with faces `f<i>`, plus an image without a face."""
    return pl.DataFrame({
        "face_id": [f"f{i}" for i in range(n)] + [None],
        "image_id": [f"i{i}" for i in range(n)] + ["empty"],
        "path": [f"demo/img_{i}.jpg" for i in range(n)] + ["demo/empty.jpg"],
    })


def _truth(rows: dict[int, tuple[str | None, str | None, str | None]]) -> pl.DataFrame:
    """Image labels keyed by file, canonical values (as read_fairface_labels returns them)."""
    return pl.DataFrame(
        {
            "file": [f"demo/img_{i}.jpg" for i in rows],
            "gender": [g for g, _, _ in rows.values()],
            "age": [a for _, a, _ in rows.values()],
            "ethnicity": [e for _, _, e in rows.values()],
        },
        schema={"file": pl.String, "gender": pl.String, "age": pl.String, "ethnicity": pl.String},
    )


def test_a_pure_composite_is_pure_on_every_attribute() -> None:
    truth = _truth({0: ("male", "10-19", "white"), 1: ("male", "3-9", "white"), 2: ("female", "20-29", "black")})
    result = composite_purity(parse_spec("gender=male,ethnicity=white"), ["f0", "f1"], _master(3), truth)
    assert result.spec == "gender=male,ethnicity=white"
    assert (result.members, result.with_truth) == (2, 2)
    assert [(a.attribute, a.condition, a.pure, a.with_truth, a.purity) for a in result.attributes] == [
        ("gender", "male", 2, 2, 1.0), ("ethnicity", "white", 2, 2, 1.0)]
    assert result.no_truth == ()
    assert purity_text(result) == "gender=male 100% (2/2), ethnicity=white 100% (2/2)"


def test_impure_members_are_named() -> None:
    truth = _truth({0: ("male", "20-29", "white"), 1: ("female", "20-29", "white"), 2: ("male", "20-29", "white")})
    result = composite_purity(parse_spec("gender=male"), ["f2", "f1", "f0", "f1"], _master(3), truth)
    (gender,) = result.attributes
    assert result.members == 3  # distinct ids
    assert (gender.pure, gender.with_truth, gender.impure_ids) == (2, 3, ("f1",))
    assert gender.purity == pytest.approx(2 / 3)
    assert purity_text(result) == "gender=male 66.6% (2/3)"  # rounded down: only a pure set reads 100%


def test_an_age_range_accepts_every_bin_it_spans() -> None:
    truth = _truth({0: ("male", "0-2", "white"), 1: ("male", "3-9", "white"), 2: ("male", "10-19", "white"),
                    3: ("male", "20-29", "white")})
    result = composite_purity(parse_spec("gender=male,age=0-19"), ["f0", "f1", "f2", "f3"], _master(4), truth)
    age = next(a for a in result.attributes if a.attribute == "age")
    assert age.condition == "0-19"
    assert (age.pure, age.with_truth, age.impure_ids) == (3, 4, ("f3",))
    sixty = composite_purity(parse_spec("age=60+"), ["f0"], _master(1), _truth({0: (None, "70+", None)}))
    assert sixty.attributes[0].purity == 1.0


def test_terms_without_truth_are_listed_not_scored() -> None:
    truth = _truth({0: ("female", "20-29", "white"), 1: ("female", "30-39", "white")})
    spec = parse_spec("gender=female,attractiveness=top10,cluster=3,tag=eyeglasses,n=2,seed=5,method=eyes")
    result = composite_purity(spec, ["f0", "f1"], _master(2), truth)
    assert [a.attribute for a in result.attributes] == ["gender"]
    assert result.no_truth == ("attractiveness=top10", "cluster=3", "tag=eyeglasses")
    assert purity_text(result) == (
        "gender=female 100% (2/2); no truth: attractiveness=top10, cluster=3, tag=eyeglasses")
    only_scores = composite_purity(parse_spec("attractiveness=d7-d10"), ["f0"], _master(2), truth)
    assert only_scores.attributes == () and purity_text(only_scores) == "no attribute terms; no truth: attractiveness=d7-d10"
    everyone = composite_purity(parse_spec("all"), ["f0", "f1"], _master(2), truth)
    assert everyone.attributes == () and everyone.no_truth == () and purity_text(everyone) == "no attribute terms"


def test_faces_without_truth_count_as_members_only() -> None:
    # f1 has no truth row, f2 has a row without a gender, f3 is not in the master table at all
    truth = _truth({0: ("male", "20-29", "white"), 2: (None, "20-29", "white")})
    result = composite_purity(parse_spec("gender=male,age=20-39"), ["f0", "f1", "f2", "f3"], _master(3), truth)
    gender, age = result.attributes
    assert (result.members, result.with_truth) == (4, 2)
    assert (gender.pure, gender.with_truth, gender.purity) == (1, 1, 1.0)
    assert (age.pure, age.with_truth) == (2, 2)
    assert purity_text(result) == "gender=male 100% (1/1 of 4), age=20-39 100% (2/2 of 4)"
    nobody = composite_purity(parse_spec("gender=male"), ["f1"], _master(3), truth)
    assert nobody.attributes[0].with_truth == 0 and nobody.attributes[0].purity is None
    assert purity_text(nobody) == "gender=male - (0/0 of 1)"


def test_truth_without_a_column_has_no_true_value_of_it() -> None:
    face_truth = pl.DataFrame({"face_id": ["f0", "f1"], "gender": ["male", "female"]})
    result = purity_from_face_truth(parse_spec("gender=male,ethnicity=indian"), ["f0", "f1"], face_truth)
    gender, ethnicity = result.attributes
    assert (gender.pure, gender.with_truth, gender.impure_ids) == (1, 2, ("f1",))
    assert (ethnicity.with_truth, ethnicity.purity) == (0, None)


def test_image_labels_reach_only_the_single_face_of_their_image() -> None:
    master = pl.DataFrame({
        "face_id": ["a", "b1", "b2", None],
        "image_id": ["A", "B", "B", "C"],
        "path": ["x/a.jpg", "x/b.jpg", "x/b.jpg", "x/c.jpg"],
    })
    labels = pl.DataFrame({"file": ["a.jpg", "b.jpg", "c.jpg"], "gender": ["male"] * 3, "age": ["20-29"] * 3,
                           "ethnicity": ["white"] * 3})
    faces = true_labels_by_face(labels, master, prefix="x/")
    assert faces.columns == ["face_id", "gender", "age", "ethnicity"]
    assert faces["face_id"].to_list() == ["a"]  # b.jpg has two faces (ambiguous), c.jpg none
    result = composite_purity(parse_spec("gender=male"), ["a", "b1"], master, labels, prefix="x/")
    assert (result.members, result.with_truth, result.attributes[0].pure) == (2, 1, 1)


def test_a_truth_file_is_read_once_or_says_why_not(tmp_path) -> None:
    from facestats_core.labels.face_labels import read_true_labels_by_face

    truth = tmp_path / "truth.csv"
    assert read_true_labels_by_face(truth, _master(2)) == (None, f"no true labels at {truth}")
    truth.write_bytes(b"\x00\xff not a csv")
    frame, why_not = read_true_labels_by_face(truth, _master(2))
    assert frame is None and why_not.startswith(f"cannot read {truth} (")
    truth.write_text("file,age,gender,race\ndemo/img_0.jpg,20-29,Male,White\n")
    frame, why_not = read_true_labels_by_face(truth, _master(2))
    assert why_not is None and frame.rows() == [("f0", "male", "20-29", "white")]
