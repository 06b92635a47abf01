from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from facestats_core.models.tag_columns import has_tag, tag_column
from facestats_core.models.tag_config import TagConfigError, TagSpec, parse_tag_config, read_tag_config
from facestats_core.models.tags import tag_probabilities, tag_prompt_groups

REPO = Path(__file__).resolve().parents[3]


def test_the_shipped_tags_file_is_valid() -> None:
    names = [spec.name for spec in read_tag_config(REPO / "config" / "tags.yaml")]
    assert {"smiling", "eyeglasses", "beard", "headwear"} <= set(names)


def test_parse_keeps_order_and_accepts_a_single_prompt_string() -> None:
    specs = parse_tag_config("tags:\n  b:\n    positive: a hat\n    negative: [no hat]\n  a:\n"
                             "    positive: [x]\n    negative: [y]\n")
    assert specs == (TagSpec("b", ("a hat",), ("no hat",)), TagSpec("a", ("x",), ("y",)))
    assert parse_tag_config("") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tags: [", "not valid YAML"),
        ("smiling: {}", "one top-level key 'tags'"),
        ("tags: [a, b]", "must be a mapping"),
        ("tags:\n  Smiling:\n    positive: [x]\n    negative: [y]", "tag name 'Smiling'"),
        ("tags:\n  smiling:\n    positive: [x]", "missing \\['negative'\\]"),
        ("tags:\n  smiling:\n    positive: []\n    negative: [y]", "non-empty list"),
        ("tags:\n  smiling:\n    positive: [x, '']\n    negative: [y]", "empty prompts"),
        ("tags:\n  smiling:\n    positive: [x]\n    negative: [y]\n    weight: 2", "unknown fields \\['weight'\\]"),
        ("tags:\n  smiling: a smile", "expected a mapping"),
    ],
)
def test_malformed_files_raise_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(TagConfigError, match=message):
        parse_tag_config(text, source="my.yaml")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(TagConfigError) as info:
        parse_tag_config("tags:\n  a: 1\n  B-x: {}\n", source="my.yaml")
    assert str(info.value).startswith("my.yaml: ") and "'a'" in str(info.value) and "'B-x'" in str(info.value)


def test_tag_probability_is_the_softmax_over_positive_and_negative() -> None:
    specs = (TagSpec("glasses", ("g",), ("n",)), TagSpec("hat", ("h",), ("nh",)))
    groups = tag_prompt_groups(specs)
    assert list(groups) == ["tag/glasses/positive", "tag/glasses/negative", "tag/hat/positive", "tag/hat/negative"]
    embeddings = {
        "tag/glasses/positive": np.array([1.0, 0.0]), "tag/glasses/negative": np.array([0.0, 1.0]),
        "tag/hat/positive": np.array([0.0, 1.0]), "tag/hat/negative": np.array([1.0, 0.0]),
    }
    X = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    frame = tag_probabilities(X, specs, embeddings, logit_scale=10.0)
    assert frame.columns == [tag_column("glasses"), tag_column("hat")] == ["tag_glasses", "tag_hat"]
    assert frame.schema["tag_glasses"] == pl.Float32
    np.testing.assert_allclose(frame["tag_glasses"].to_numpy(), [1 / (1 + np.exp(-10)), 1 / (1 + np.exp(10)), 0.5],
                               rtol=1e-5)
    np.testing.assert_allclose(frame["tag_glasses"] + frame["tag_hat"], 1.0, rtol=1e-6)
    edited = frame.with_columns(pl.Series("tag_glasses", [0.9, None, 0.5], dtype=pl.Float32))
    selected = edited.filter(has_tag("glasses"))
    assert selected.height == 2
    assert tag_probabilities(X, (), embeddings, 10.0).width == 0
    with pytest.raises(KeyError, match="tag/beard"):
        tag_probabilities(X, (TagSpec("beard", ("b",), ("nb",)),), embeddings, 10.0)
