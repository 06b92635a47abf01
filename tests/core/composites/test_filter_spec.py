"""Filter-spec grammar: parsing, canonical form, slugs, polars filtering, rejections."""

from __future__ import annotations

import random
import re

import polars as pl
import pytest

from facestats_core.composites.filter_spec import (
    KEY_ORDER,
    MAX_SLUG_CHARS,
    AttractivenessFilter,
    FilterSpec,
    FilterSpecError,
    parse_spec,
)
from facestats_core.labels.vocab import AGE_BINS, ETHNICITIES, GENDERS


def test_empty_spec_means_all() -> None:
    for text in ("", "  ", "all", "ALL", " All "):
        spec = parse_spec(text)
        assert spec == FilterSpec()
        assert spec.canonical == "all" and spec.slug == "all" and spec.is_empty


def test_lenient_parsing_gives_one_canonical_form() -> None:
    variants = [
        "gender=female,ethnicity=east_asian,age=20-29,attractiveness=top10",
        "attractiveness=top10,age=20-29,ethnicity=east_asian,gender=female",
        " Gender = Female , race = East Asian , AGE=20 - 29, attractiveness = TOP 10 ",
        "sex=woman,ethnicity=east-asian,age=20-29,attractiveness=top10",
    ]
    canon = {parse_spec(v).canonical for v in variants}
    assert canon == {"gender=female,ethnicity=east_asian,age=20-29,attractiveness=top10"}


def test_age_bins_and_ranges() -> None:
    assert parse_spec("age=20-39").age == ("20-29", "30-39")
    assert parse_spec("age=0-9").age == ("0-2", "3-9")
    assert parse_spec("age=60+").age == ("60-69", "70+")
    assert parse_spec("age=more than 70").canonical == "age=70+"
    assert parse_spec("age=0-2").canonical == "age=0-2"
    assert parse_spec("age=0+").age == AGE_BINS
    for bad in ("20-35", "25-29", "21-39", "30-19", "abc", "20", "75+"):
        with pytest.raises(FilterSpecError, match=r"20-29.*70\+"):
            parse_spec(f"age={bad}")


def test_attractiveness_forms() -> None:
    assert parse_spec("attractiveness=top10").attractiveness == AttractivenessFilter("top", value=10)
    assert parse_spec("attractiveness=bottom25").canonical == "attractiveness=bottom25"
    assert parse_spec("attractiveness=d7").canonical == "attractiveness=d7"
    assert parse_spec("attractiveness=d7-d7").canonical == "attractiveness=d7"
    assert parse_spec("attractiveness=D7-10").canonical == "attractiveness=d7-d10"
    for bad in ("top0", "top100", "bottom", "d0", "d11", "d8-d3", "best", "top-5"):
        with pytest.raises(FilterSpecError, match="topN"):
            parse_spec(f"attractiveness={bad}")


def test_ints_and_seed_normalisation() -> None:
    spec = parse_spec("cluster=007,n=25,seed=3")
    assert (spec.cluster, spec.n, spec.seed) == (7, 25, 3)
    assert spec.canonical == "cluster=7,n=25,seed=3"
    assert parse_spec("n=25,seed=0").canonical == "n=25"  # default seed is left out
    assert parse_spec("seed=9") == FilterSpec()  # a seed without n changes nothing
    for bad in ("n=0", "n=-1", "n=1.5", "cluster=-1", "cluster=x", "seed=-3", "n=1_000", "n=+5"):
        with pytest.raises(FilterSpecError):
            parse_spec(bad)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("colour=red", r"unknown key 'colour'; allowed keys: gender, ethnicity, age"),
        ("gender=robot", r"allowed: male, female"),
        ("ethnicity=martian", r"allowed: white, black, latino_hispanic"),
        ("gender=male,sex=female", r"duplicate key 'gender'"),
        ("gender=male,gender=male", r"duplicate key"),
        ("gender", r"not key=value"),
        ("gender=male,,age=20-29", r"empty term"),
        ("gender=", r"empty value"),
        ("gender=a=b", r"not key=value"),
    ],
)
def test_rejections_have_helpful_messages(text: str, pattern: str) -> None:
    with pytest.raises(FilterSpecError, match=pattern):
        parse_spec(text)


@pytest.mark.parametrize(
    "text",
    [
        "gender=../../etc",
        "gender=..",
        "gender=%2e%2e",
        "gender=%2e%2e%2fetc",
        "gender=male/../x",
        "gender=male\\..\\x",
        "gender=male\x00",
        "ethnicity=east_asian/",
        "age=20-29;rm",
        "gender=fémale",
        "gender=female\n",
    ],
)
def test_path_traversal_and_odd_characters_rejected(text: str) -> None:
    with pytest.raises(FilterSpecError, match="forbidden character"):
        parse_spec(text)


def test_not_a_string_rejected() -> None:
    with pytest.raises(FilterSpecError):
        parse_spec(None)  # type: ignore[arg-type]
    with pytest.raises(FilterSpecError, match="longer than"):
        parse_spec("gender=male " + " " * 2000)


def _random_spec(rng: random.Random) -> FilterSpec:
    fields: dict[str, object] = {}
    if rng.random() < 0.5:
        fields["gender"] = rng.choice(GENDERS)
    if rng.random() < 0.5:
        fields["ethnicity"] = rng.choice(ETHNICITIES)
    if rng.random() < 0.5:
        a = rng.randrange(len(AGE_BINS))
        b = rng.randrange(a, len(AGE_BINS))
        fields["age"] = AGE_BINS[a : b + 1]
    if rng.random() < 0.5:
        kind = rng.choice(["top", "bottom", "decile"])
        if kind == "decile":
            lo = rng.randint(1, 10)
            fields["attractiveness"] = AttractivenessFilter("decile", lo=lo, hi=rng.randint(lo, 10))
        else:
            fields["attractiveness"] = AttractivenessFilter(kind, value=rng.randint(1, 99))  # type: ignore[arg-type]
    if rng.random() < 0.3:
        fields["cluster"] = rng.choice([0, 1, 12, 999_999_999])
    if rng.random() < 0.5:
        fields["n"] = rng.choice([1, 25, 1000, 10**9])
        if rng.random() < 0.5:
            fields["seed"] = rng.choice([1, 42, 2**63 - 1, rng.randrange(10**12)])
    return FilterSpec(**fields)  # type: ignore[arg-type]


def _scramble(spec: FilterSpec, rng: random.Random) -> str:
    """Same spec written differently: shuffled order, random case and spacing, aliases."""
    terms = list(spec.terms().items())
    rng.shuffle(terms)
    out = []
    for key, value in terms:
        if key == "ethnicity" and rng.random() < 0.5:
            key, value = "race", value.replace("_", " ").title()
        if key == "gender" and rng.random() < 0.5:
            value = value.capitalize()
        if key == "age" and value == "70+" and rng.random() < 0.5:
            value = "more than 70"
        key = key.upper() if rng.random() < 0.3 else key
        sp = " " * rng.randint(0, 2)
        out.append(f"{sp}{key}{sp}={sp}{value}{sp}")
    if rng.random() < 0.2 and spec.n is not None and spec.seed == 0:
        out.append("seed=0")
    return ",".join(out) if out else rng.choice(["", "all", " ALL "])


def test_randomised_round_trip_uniqueness_and_slug_safety() -> None:
    rng = random.Random(1234)
    canon_to_spec: dict[str, FilterSpec] = {}
    slug_to_canon: dict[str, str] = {}
    for _ in range(1500):
        spec = _random_spec(rng)
        canonical = spec.canonical
        assert parse_spec(canonical) == spec
        assert parse_spec(canonical).canonical == canonical
        assert parse_spec(_scramble(spec, rng)).canonical == canonical
        assert [k for k in spec.terms()] == [k for k in KEY_ORDER if k in spec.terms()]
        canon_to_spec.setdefault(canonical, spec)
        assert canon_to_spec[canonical] == spec  # canonical strings identify specs
        slug = spec.slug
        assert re.fullmatch(r"[a-z0-9_.\-]+", slug), slug
        assert ".." not in slug and "/" not in slug and "\\" not in slug
        assert len(slug) <= MAX_SLUG_CHARS
        assert slug not in (".", "..")
        assert slug_to_canon.setdefault(slug, canonical) == canonical  # distinct specs, distinct slugs
    assert len(slug_to_canon) > 500


def test_long_specs_get_hashed_slugs() -> None:
    base = "gender=female,ethnicity=southeast_asian,age=10-69,attractiveness=bottom99,cluster=999999999,n=1000000000"
    slugs = {parse_spec(f"{base},seed={s}").slug for s in range(9_223_372_036_854_775_700, 9_223_372_036_854_775_800)}
    assert len(slugs) == 100
    for slug in slugs:
        assert len(slug) <= MAX_SLUG_CHARS and re.search(r"-[0-9a-f]{16}$", slug)


def test_to_polars_expr_filters_master() -> None:
    master = pl.DataFrame(
        {
            "image_id": ["a", "b", "c", "d", "e"],
            "gender": ["female", "female", "male", "female", None],
            "age": ["20-29", "30-39", "20-29", "40-49", "20-29"],
            "ethnicity": ["east_asian", "east_asian", "east_asian", "white", "east_asian"],
            "attractiveness_percentile": [95.0, 90.0, 50.0, 5.0, 99.0],
            "attractiveness_decile": [10, 10, 6, 1, 10],
            "cluster": [1, 2, 1, 3, 1],
        }
    )

    def ids(text: str) -> list[str]:
        return master.filter(parse_spec(text).to_polars_expr())["image_id"].to_list()

    assert ids("all") == ["a", "b", "c", "d", "e"]
    assert ids("gender=female") == ["a", "b", "d"]
    assert ids("gender=female,age=20-39") == ["a", "b"]
    assert ids("attractiveness=top10") == ["a", "b", "e"]  # percentile >= 90
    assert ids("attractiveness=bottom5") == []  # percentile < 5
    assert ids("attractiveness=bottom6") == ["d"]
    assert ids("attractiveness=d6-d10,cluster=1") == ["a", "c", "e"]
    assert ids("ethnicity=east_asian,gender=female,n=1") == ["a", "b"]  # n is not a filter
    assert parse_spec("attractiveness=d7").required_columns() == ("attractiveness_decile",)


def test_without_and_validation_of_direct_construction() -> None:
    spec = parse_spec("gender=male,age=20-29,n=5,seed=2")
    assert spec.without("age").canonical == "gender=male,n=5,seed=2"
    assert spec.without("n").canonical == "gender=male,age=20-29"
    with pytest.raises(FilterSpecError):
        spec.without("colour")
    with pytest.raises(FilterSpecError):
        FilterSpec(age=("20-29", "40-49"))
    with pytest.raises(FilterSpecError):
        FilterSpec(gender="../x")
    assert FilterSpec(age="20-29").age == ("20-29",)  # type: ignore[arg-type]


def test_method_key_is_last_canonical_and_validated() -> None:
    spec = parse_spec("method = Eyes, n=5, gender=female, seed=2")
    assert spec.method == "eyes" and spec.canonical == "gender=female,n=5,seed=2,method=eyes"
    assert parse_spec(spec.canonical) == spec and spec.without("method").canonical == "gender=female,n=5,seed=2"
    assert parse_spec("method=warp").to_polars_expr().meta.eq(parse_spec("all").to_polars_expr())
    with pytest.raises(FilterSpecError, match="unknown method 'morph'; allowed: warp, eyes, none"):
        parse_spec("method=morph")


def test_tag_key_selects_faces_with_the_tag() -> None:
    spec = parse_spec("Tag = Eyeglasses, gender=female")
    assert spec.canonical == "gender=female,tag=eyeglasses" and spec.tag == "eyeglasses"
    assert spec.required_columns() == ("gender", "tag_eyeglasses")
    master = pl.DataFrame({"gender": ["female", "female", "male", "female"],
                           "tag_eyeglasses": [0.9, 0.2, 0.95, None]})
    assert master.filter(spec.to_polars_expr()).height == 1
    assert parse_spec(spec.canonical) == spec and "tag.eyeglasses" in spec.slug
    for bad in ("tag=long__hair", "tag=_x", "tag=surplus", "tag=Ä"):
        with pytest.raises(FilterSpecError):
            parse_spec(bad)


def test_quality_key_defaults_to_good_and_takes_any_or_poor() -> None:
    assert parse_spec("quality=good") == parse_spec("all") and parse_spec("Quality = GOOD").canonical == "all"
    spec = parse_spec("n=5, quality=any, gender=male")
    assert spec.canonical == "gender=male,quality=any,n=5" and spec.quality_filter == "any"
    assert parse_spec(spec.canonical) == spec and spec.slug == "gender.male__quality.any__n.5"
    assert parse_spec("quality=poor").quality_filter == "poor" and parse_spec("all").quality_filter == "good"
    assert parse_spec("quality=any").without("quality").canonical == "all"
    with pytest.raises(FilterSpecError, match="unknown quality 'sharp'; allowed: good, any, poor"):
        parse_spec("quality=sharp")
