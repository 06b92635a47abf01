"""Filter specs: which faces go into a composite (docs/composites.md, "Filter specs").

A spec is ``key=value`` terms joined by ``,``. Parsing is lenient (case,
whitespace, term order, FairFace spellings such as ``East Asian`` or
``Female``, ``race`` for ``ethnicity``) and strict about meaning: unknown keys,
unknown values, duplicate keys and anything that looks like a path
(``/``, ``\\``, ``.``, ``%``, NUL …) are rejected with a message that lists what
is allowed. The empty spec (``""`` or ``all``) selects every face.

Canonical form: the terms in the fixed key order
``gender, ethnicity, age, attractiveness, cluster, tag, quality, n, seed, method``, each value in its
canonical spelling, defaults left out (``quality=good``, ``seed=0``, and ``seed`` altogether
when there is no ``n``, since the seed only drives sampling). Equal specs have
the same canonical string and ``parse_spec(spec.canonical) == spec``.

Values:

* ``gender``: one of :data:`~facestats_core.labels.vocab.GENDERS`.
* ``ethnicity``: one of :data:`~facestats_core.labels.vocab.ETHNICITIES`.
* ``age``: a FairFace bin (``20-29``, ``70+``) or a run of consecutive bins
  written by its outer edges (``20-39`` = 20-29 and 30-39, ``0-9`` = 0-2 and
  3-9, ``60+`` = 60-69 and 70+). Ranges must start and end on bin edges.
* ``attractiveness``: ``topN`` (percentile >= 100-N), ``bottomN``
  (percentile < N) with 1 <= N <= 99, a decile ``d7`` or a decile range ``d7-d10``.
* ``cluster``: a non-negative int; ``n``: a positive sample size; ``seed``: a
  non-negative int.
* ``tag``: an open-vocabulary tag name (``config/tags.yaml``, e.g. ``eyeglasses``): faces whose
  ``tag_<name>`` probability is at least 0.5. Names are lower-case letters, digits and single
  underscores (not containing ``plus``, which slugs use).
* ``quality``: which faces by their quality verdict (:mod:`facestats_core.faces.quality`), one of
  :data:`QUALITY_FILTERS`: ``good`` (the default: near-frontal, sharp faces; the others are left
  out and recorded in the sidecar), ``any`` (every face) or ``poor`` (only the faces judged poor).
  Not a row predicate of :meth:`FilterSpec.to_polars_expr`: the composite build applies it
  (:mod:`facestats_core.composites.quality`).
* ``method``: how the composite is made, one of :data:`COMPOSITE_METHODS` (``warp``:
  landmark warp onto the mean shape, ``eyes``: eye alignment only, ``none``: no
  alignment); absent = the composite settings' default. Not a filter.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Literal

import polars as pl

from facestats_core.labels.vocab import (
    AGE_BINS,
    ETHNICITIES,
    GENDERS,
    normalize_age_bin,
    normalize_ethnicity,
    normalize_gender,
)
from facestats_core.models.tag_columns import has_tag, tag_column

KEY_ORDER: tuple[str, ...] = (
    "gender", "ethnicity", "age", "attractiveness", "cluster", "tag", "quality", "n", "seed", "method",
)
_TAG_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
"""Canonical order of the spec keys."""

ALL_SPEC = "all"
"""Canonical string (and slug) of the empty spec."""

DEFAULT_SEED = 0
COMPOSITE_METHODS: tuple[str, ...] = ("warp", "eyes", "none")
"""Values of the ``method`` key (see :mod:`facestats_core.composites.warped`)."""
DEFAULT_QUALITY = "good"
QUALITY_FILTERS: tuple[str, ...] = (DEFAULT_QUALITY, "any", "poor")
"""Values of the ``quality`` key; ``good`` is the default (left out of the canonical form)."""
MAX_SPEC_CHARS = 1000
MAX_SLUG_CHARS = 96
MAX_CLUSTER = 10**9
MAX_N = 10**9
MAX_SEED = 2**63 - 1

_KEY_ALIASES: dict[str, str] = {
    **{key: key for key in KEY_ORDER},
    "sex": "gender",
    "race": "ethnicity",
    "attractive": "attractiveness",
    "beauty": "attractiveness",
    "size": "n",
    "align": "method",
}

# Characters a spec may contain at all (checked before anything else). Path
# separators, dots, percent-escapes, NUL and non-ASCII never get further.
_ALLOWED_CHARS = re.compile(r"[A-Za-z0-9 _+,=\-\t]*")
_DIGITS = re.compile(r"[0-9]{1,19}")
_SLUG_OK = re.compile(r"[a-z0-9_.\-]+")

_BIN_EDGES: tuple[tuple[int, int | None], ...] = tuple(
    (int(b[:-1]), None) if b.endswith("+") else (int(b.split("-")[0]), int(b.split("-")[1]))
    for b in AGE_BINS
)


class FilterSpecError(ValueError):
    """A filter spec could not be parsed or is invalid."""


@dataclass(frozen=True)
class AttractivenessFilter:
    """``top`` / ``bottom`` N percent (``value``), or deciles ``lo``..``hi`` (1-10)."""

    kind: Literal["top", "bottom", "decile"]
    value: int = 0
    lo: int = 0
    hi: int = 0

    def __post_init__(self) -> None:
        if self.kind in ("top", "bottom"):
            if not 1 <= self.value <= 99:
                raise FilterSpecError(f"attractiveness {self.kind}N needs 1 <= N <= 99, got {self.value}")
            if self.lo or self.hi:
                raise FilterSpecError("attractiveness top/bottom filters take no decile bounds")
        elif self.kind == "decile":
            if not 1 <= self.lo <= self.hi <= 10:
                raise FilterSpecError(
                    f"attractiveness deciles need 1 <= lo <= hi <= 10, got d{self.lo}-d{self.hi}"
                )
            if self.value:
                raise FilterSpecError("attractiveness decile filters take no percent value")
        else:
            raise FilterSpecError(f"unknown attractiveness filter kind {self.kind!r}")

    @property
    def canonical(self) -> str:
        if self.kind == "decile":
            return f"d{self.lo}" if self.lo == self.hi else f"d{self.lo}-d{self.hi}"
        return f"{self.kind}{self.value}"

    def to_polars_expr(self) -> pl.Expr:
        if self.kind == "top":
            return pl.col("attractiveness_percentile") >= 100 - self.value
        if self.kind == "bottom":
            return pl.col("attractiveness_percentile") < self.value
        return pl.col("attractiveness_decile").is_between(self.lo, self.hi, closed="both")


@dataclass(frozen=True)
class FilterSpec:
    """A parsed filter spec; every field ``None`` means "no filter on that key".

    ``age`` holds the selected bins (consecutive, in :data:`AGE_BINS` order).
    ``seed`` is normalised: it is ``0`` when ``n`` is ``None``.
    """

    gender: str | None = None
    ethnicity: str | None = None
    age: tuple[str, ...] | None = None
    attractiveness: AttractivenessFilter | None = None
    cluster: int | None = None
    tag: str | None = None
    n: int | None = None
    seed: int = DEFAULT_SEED
    method: str | None = None
    quality: str | None = None
    """``any`` or ``poor``; None is the default, ``good`` (normalised to None)."""

    def __post_init__(self) -> None:
        if self.quality == DEFAULT_QUALITY:
            object.__setattr__(self, "quality", None)
        if self.quality is not None and self.quality not in QUALITY_FILTERS:
            raise FilterSpecError(f"unknown quality {self.quality!r}; allowed: {', '.join(QUALITY_FILTERS)}")
        if self.method is not None and self.method not in COMPOSITE_METHODS:
            raise FilterSpecError(f"unknown method {self.method!r}; allowed: {', '.join(COMPOSITE_METHODS)}")
        if self.tag is not None:
            object.__setattr__(self, "tag", _parse_tag(self.tag))
        if self.gender is not None and self.gender not in GENDERS:
            raise FilterSpecError(f"unknown gender {self.gender!r}; allowed: {', '.join(GENDERS)}")
        if self.ethnicity is not None and self.ethnicity not in ETHNICITIES:
            raise FilterSpecError(
                f"unknown ethnicity {self.ethnicity!r}; allowed: {', '.join(ETHNICITIES)}"
            )
        if self.age is not None:
            if isinstance(self.age, str):
                object.__setattr__(self, "age", (self.age,))
            bins = tuple(self.age)
            if not bins or any(b not in AGE_BINS for b in bins):
                raise FilterSpecError(f"unknown age bins {bins!r}; allowed: {', '.join(AGE_BINS)}")
            first = AGE_BINS.index(bins[0])
            if bins != AGE_BINS[first : first + len(bins)]:
                raise FilterSpecError(f"age bins must be consecutive, got {bins!r}")
            object.__setattr__(self, "age", bins)
        for name, low, high in (("cluster", 0, MAX_CLUSTER), ("n", 1, MAX_N), ("seed", 0, MAX_SEED)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise FilterSpecError(f"{name} must be an int in [{low}, {high}], got {value!r}")
        if self.seed is None:
            raise FilterSpecError("seed must be an int, got None")
        if self.n is None and self.seed != DEFAULT_SEED:
            object.__setattr__(self, "seed", DEFAULT_SEED)

    # ------------------------------------------------------------------ forms

    def terms(self) -> dict[str, str]:
        """Canonical ``key -> value`` strings of the set terms, in :data:`KEY_ORDER`."""
        out: dict[str, str] = {}
        if self.gender is not None:
            out["gender"] = self.gender
        if self.ethnicity is not None:
            out["ethnicity"] = self.ethnicity
        if self.age is not None:
            out["age"] = _age_text(self.age)
        if self.attractiveness is not None:
            out["attractiveness"] = self.attractiveness.canonical
        if self.cluster is not None:
            out["cluster"] = str(self.cluster)
        if self.tag is not None:
            out["tag"] = self.tag
        if self.quality is not None:
            out["quality"] = self.quality
        if self.n is not None:
            out["n"] = str(self.n)
            if self.seed != DEFAULT_SEED:
                out["seed"] = str(self.seed)
        if self.method is not None:
            out["method"] = self.method
        return out

    @property
    def canonical(self) -> str:
        """The unique canonical string (``all`` for the empty spec)."""
        terms = self.terms()
        return ",".join(f"{k}={v}" for k, v in terms.items()) if terms else ALL_SPEC

    @property
    def slug(self) -> str:
        """File-name-safe, injective form of :attr:`canonical`.

        ``=`` becomes ``.``, ``,`` becomes ``__`` and ``+`` becomes ``plus``
        (canonical values never contain ``.``, ``__`` or ``plus``, so the
        mapping is reversible). Slugs longer than :data:`MAX_SLUG_CHARS` are
        cut and end in ``-`` plus 16 hex digits of the canonical string's
        SHA-256 (no uncut slug ends that way).
        """
        text = self.canonical.replace("=", ".").replace(",", "__").replace("+", "plus")
        if len(text) > MAX_SLUG_CHARS:
            digest = hashlib.sha256(self.canonical.encode("ascii")).hexdigest()[:16]
            text = text[: MAX_SLUG_CHARS - 17].rstrip("._-") + "-" + digest
        if not _SLUG_OK.fullmatch(text) or ".." in text:  # by construction never
            raise AssertionError(f"unsafe slug {text!r}")
        return text

    def __str__(self) -> str:
        return self.canonical

    @property
    def is_empty(self) -> bool:
        return not self.terms()

    @property
    def quality_filter(self) -> str:
        """The quality the faces must have: ``good`` (default), ``any`` or ``poor``."""
        return self.quality or DEFAULT_QUALITY

    def without(self, *keys: str) -> FilterSpec:
        """A copy with the filters on ``keys`` removed (``n``/``seed`` included)."""
        unknown = set(keys) - set(KEY_ORDER)
        if unknown:
            raise FilterSpecError(f"unknown keys {sorted(unknown)}; allowed: {', '.join(KEY_ORDER)}")
        changes: dict[str, object] = {k: None for k in keys if k != "seed"}
        if "seed" in keys or "n" in keys:
            changes["seed"] = DEFAULT_SEED
        return replace(self, **changes)

    def required_columns(self) -> tuple[str, ...]:
        """Master-table columns :meth:`to_polars_expr` reads."""
        cols: list[str] = []
        for key in ("gender", "ethnicity", "age", "cluster"):
            if getattr(self, key) is not None:
                cols.append(key)
        if self.tag is not None:
            cols.append(tag_column(self.tag))
        if self.attractiveness is not None:
            cols.append(
                "attractiveness_decile"
                if self.attractiveness.kind == "decile"
                else "attractiveness_percentile"
            )
        return tuple(cols)

    def to_polars_expr(self) -> pl.Expr:
        """Row predicate over the master table (``n``/``seed`` are not filters).

        Columns: ``gender``, ``ethnicity``, ``age`` (canonical labels),
        ``attractiveness_percentile`` (0-100), ``attractiveness_decile`` (1-10),
        ``cluster`` (int), ``tag_<name>`` (probability). Rows with nulls in a filtered column never match.
        """
        parts: list[pl.Expr] = []
        if self.gender is not None:
            parts.append(pl.col("gender") == self.gender)
        if self.ethnicity is not None:
            parts.append(pl.col("ethnicity") == self.ethnicity)
        if self.age is not None:
            parts.append(pl.col("age").is_in(list(self.age)))
        if self.attractiveness is not None:
            parts.append(self.attractiveness.to_polars_expr())
        if self.cluster is not None:
            parts.append(pl.col("cluster") == self.cluster)
        if self.tag is not None:
            parts.append(has_tag(self.tag))
        if not parts:
            return pl.lit(True)
        expr = parts[0]
        for part in parts[1:]:
            expr = expr & part
        return expr.fill_null(False)


# --------------------------------------------------------------------------- parsing


def _age_text(bins: tuple[str, ...]) -> str:
    if len(bins) == 1:
        return bins[0]
    lo = _BIN_EDGES[AGE_BINS.index(bins[0])][0]
    hi = _BIN_EDGES[AGE_BINS.index(bins[-1])][1]
    return f"{lo}+" if hi is None else f"{lo}-{hi}"


def _parse_int(key: str, value: str, low: int, high: int) -> int:
    text = value.strip()
    if not _DIGITS.fullmatch(text) or not low <= int(text) <= high:
        raise FilterSpecError(f"{key} must be an integer in [{low}, {high}], got {value!r}")
    return int(text)


def _parse_gender(value: str) -> str:
    gender = normalize_gender(value)
    if gender is None:
        raise FilterSpecError(f"unknown gender {value!r}; allowed: {', '.join(GENDERS)}")
    return gender


def _parse_ethnicity(value: str) -> str:
    ethnicity = normalize_ethnicity(value)
    if ethnicity is None:
        raise FilterSpecError(
            f"unknown ethnicity {value!r}; allowed: {', '.join(ETHNICITIES)} "
            "(FairFace spellings like 'East Asian' are accepted)"
        )
    return ethnicity


def _age_error(value: str, why: str) -> FilterSpecError:
    return FilterSpecError(
        f"invalid age {value!r}: {why}; use one bin ({', '.join(AGE_BINS)}) or a range "
        "aligned to bin edges such as 20-39, 0-9 or 60+"
    )


def _parse_age(value: str) -> tuple[str, ...]:
    """One bin (any spelling of :data:`~facestats_core.labels.vocab.AGE_ALIASES`) or a run of
    consecutive bins written by its outer edges (``20-39``, ``60+``)."""
    single = normalize_age_bin(value)
    if single is not None:
        return (single,)
    text = re.sub(r"\s+", "", value.lower())
    starts = [lo for lo, _ in _BIN_EDGES]
    ends = [hi for _, hi in _BIN_EDGES]
    match = re.fullmatch(r"([0-9]{1,3})(?:-([0-9]{1,3})|(\+))", text)
    if not match:
        raise _age_error(value, "not a bin or range")
    lo = int(match.group(1))
    hi = None if match.group(3) else int(match.group(2))
    if lo not in starts:
        raise _age_error(value, f"{lo} is not the start of a bin")
    if hi is not None and hi not in ends:
        raise _age_error(value, f"{hi} is not the end of a bin")
    first = starts.index(lo)
    last = ends.index(hi)
    if last < first:
        raise _age_error(value, "range ends before it starts")
    return AGE_BINS[first : last + 1]


def _attr_error(value: str) -> FilterSpecError:
    return FilterSpecError(
        f"invalid attractiveness {value!r}; use topN or bottomN (percent, 1 <= N <= 99), "
        "a decile d1..d10, or a decile range such as d7-d10"
    )


def _parse_attractiveness(value: str) -> AttractivenessFilter:
    text = re.sub(r"\s+", "", value.lower())
    match = re.fullmatch(r"(top|bottom)([0-9]{1,3})", text)
    if match:
        n = int(match.group(2))
        if not 1 <= n <= 99:
            raise _attr_error(value)
        return AttractivenessFilter(match.group(1), value=n)  # type: ignore[arg-type]
    match = re.fullmatch(r"d([0-9]{1,2})(?:-d?([0-9]{1,2}))?", text)
    if match:
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) else lo
        if not 1 <= lo <= hi <= 10:
            raise _attr_error(value)
        return AttractivenessFilter("decile", lo=lo, hi=hi)
    raise _attr_error(value)


def _parse_tag(value: str) -> str:
    tag = value.strip().lower()
    if not _TAG_NAME.fullmatch(tag) or "plus" in tag or len(tag) > 40:
        raise FilterSpecError(
            f"bad tag name {value!r}: use lower-case letters, digits and single underscores "
            "(a tag of config/tags.yaml, e.g. eyeglasses)"
        )
    return tag


def _parse_quality(value: str) -> str:
    quality = value.strip().lower()
    if quality not in QUALITY_FILTERS:
        raise FilterSpecError(f"unknown quality {value!r}; allowed: {', '.join(QUALITY_FILTERS)}")
    return quality


def _parse_method(value: str) -> str:
    method = value.strip().lower()
    if method not in COMPOSITE_METHODS:
        raise FilterSpecError(f"unknown method {value!r}; allowed: {', '.join(COMPOSITE_METHODS)}")
    return method


def _check_characters(text: str) -> None:
    if not _ALLOWED_CHARS.fullmatch(text):
        bad = next(ch for ch in text if not _ALLOWED_CHARS.fullmatch(ch))
        raise FilterSpecError(
            f"filter spec contains forbidden character {bad!r}; allowed are ASCII letters, digits, "
            "space, '_', '-', '+', ',' and '='"
        )


def parse_spec(text: str) -> FilterSpec:
    """Parse a filter spec (see the module docstring); raise :class:`FilterSpecError`."""
    if not isinstance(text, str):
        raise FilterSpecError(f"filter spec must be a string, got {type(text).__name__}")
    if len(text) > MAX_SPEC_CHARS:
        raise FilterSpecError(f"filter spec longer than {MAX_SPEC_CHARS} characters")
    _check_characters(text)
    stripped = text.strip()
    if stripped == "" or stripped.lower() == ALL_SPEC:
        return FilterSpec()
    values: dict[str, str] = {}
    for raw_term in stripped.split(","):
        term = raw_term.strip()
        if not term:
            raise FilterSpecError(f"empty term in filter spec {text!r} (stray ',')")
        if term.count("=") != 1:
            raise FilterSpecError(f"term {term!r} is not key=value (in {text!r})")
        raw_key, raw_value = (part.strip() for part in term.split("="))
        key = _KEY_ALIASES.get(raw_key.lower())
        if key is None:
            raise FilterSpecError(f"unknown key {raw_key!r}; allowed keys: {', '.join(KEY_ORDER)}")
        if key in values:
            raise FilterSpecError(f"duplicate key {key!r} in filter spec {text!r}")
        if not raw_value:
            raise FilterSpecError(f"key {key!r} has an empty value")
        values[key] = raw_value
    fields: dict[str, object] = {}
    if "gender" in values:
        fields["gender"] = _parse_gender(values["gender"])
    if "ethnicity" in values:
        fields["ethnicity"] = _parse_ethnicity(values["ethnicity"])
    if "age" in values:
        fields["age"] = _parse_age(values["age"])
    if "attractiveness" in values:
        fields["attractiveness"] = _parse_attractiveness(values["attractiveness"])
    if "cluster" in values:
        fields["cluster"] = _parse_int("cluster", values["cluster"], 0, MAX_CLUSTER)
    if "tag" in values:
        fields["tag"] = _parse_tag(values["tag"])
    if "quality" in values:
        fields["quality"] = _parse_quality(values["quality"])
    if "n" in values:
        fields["n"] = _parse_int("n", values["n"], 1, MAX_N)
    if "seed" in values:
        fields["seed"] = _parse_int("seed", values["seed"], 0, MAX_SEED)
    if "method" in values:
        fields["method"] = _parse_method(values["method"])
    return FilterSpec(**fields)  # type: ignore[arg-type]


def canonicalize(text: str) -> str:
    """``parse_spec(text).canonical``."""
    return parse_spec(text).canonical
