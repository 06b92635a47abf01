"""How pure a composite is: the share of its members whose TRUE labels satisfy its filter spec.

A composite's members are picked by predicted attributes (the master table's ``gender``, ``age``,
``ethnicity``). Where true labels exist (the demo's kept-aside ``labels/truth_fairface_labels.csv``,
``FACESTATS_TRUTH_LABELS``), :func:`composite_purity` checks each member against the spec term by
term, with the spec's own matching (:meth:`FilterSpec.to_polars_expr` of a spec with only that
term, so an age range such as ``0-19`` accepts every bin it spans). Terms on things that have no
true label (``attractiveness``, ``cluster``, ``tag``) are listed as having no truth, never scored.
The purity is measured against the spec as requested: a composite built with relaxed terms
(``FACESTATS_RELAX``) is scored on the terms it was named for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from facestats_core.composites.filter_spec import FilterSpec
from facestats_core.labels.face_labels import true_labels_by_face
from facestats_core.labels.vocab import ATTRIBUTES

TRUTH_KEYS: tuple[str, ...] = tuple(ATTRIBUTES)
"""Spec keys a true label can be checked against (``gender``, ``age``, ``ethnicity``)."""
NO_TRUTH_KEYS: tuple[str, ...] = ("attractiveness", "cluster", "tag")
"""Spec keys that filter on something no truth file labels."""


@dataclass(frozen=True)
class AttributePurity:
    """One spec term checked against the truth.

    ``members``: distinct member faces; ``with_truth``: those with a true value of the attribute;
    ``pure``: those whose true value satisfies the term; ``impure_ids``: the others with a true value
    (sorted).
    """

    attribute: str
    condition: str
    members: int
    with_truth: int
    pure: int
    impure_ids: tuple[str, ...]

    @property
    def purity(self) -> float | None:
        """``pure / with_truth``; None when no member has a true value of the attribute."""
        return self.pure / self.with_truth if self.with_truth else None

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "condition": self.condition, "members": self.members,
                "with_truth": self.with_truth, "pure": self.pure, "purity": self.purity,
                "impure_ids": list(self.impure_ids)}


@dataclass(frozen=True)
class CompositePurity:
    """Every spec term of one composite against the truth.

    ``attributes``: the terms with truth, in spec key order; ``no_truth``: the other filter terms as
    ``key=value`` (``n``, ``seed`` and ``method`` are not filters and are left out); ``with_truth``:
    members with a truth row at all.
    """

    spec: str
    members: int
    with_truth: int
    attributes: tuple[AttributePurity, ...]
    no_truth: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "members": self.members, "with_truth": self.with_truth,
                "attributes": [a.to_dict() for a in self.attributes], "no_truth": list(self.no_truth)}


def purity_from_face_truth(spec: FilterSpec, members: Sequence[str], face_truth: pl.DataFrame) -> CompositePurity:
    """:class:`CompositePurity` of ``members`` (face ids) under ``spec``, from true labels keyed by
    ``face_id`` (any of ``gender``, ``age``, ``ethnicity``; canonical values, null = unknown), e.g.
    :func:`~facestats_core.labels.face_labels.true_labels_by_face`. Members without a truth row, or
    with a null value, count as members but not towards ``with_truth``."""
    ids = sorted({str(m) for m in members})
    cols = [c for c in TRUTH_KEYS if c in face_truth.columns]
    truth = (
        face_truth.select(pl.col("face_id").cast(pl.String), *(pl.col(c).cast(pl.String) for c in cols))
        .filter(pl.col("face_id").is_not_null())
        .unique("face_id", keep="first")
    )
    rows = pl.DataFrame({"face_id": ids}, schema={"face_id": pl.String}).join(truth, on="face_id", how="inner")
    terms = spec.terms()
    checked: list[AttributePurity] = []
    for key in TRUTH_KEYS:
        if getattr(spec, key) is None:
            continue
        if key in cols:
            known = rows.filter(pl.col(key).is_not_null())
        else:  # the truth has no such column: nobody has a true value
            known = pl.DataFrame(schema={"face_id": pl.String, key: pl.String})
        ok = known.with_columns(FilterSpec(**{key: getattr(spec, key)}).to_polars_expr().alias("_ok"))
        impure = ok.filter(~pl.col("_ok")).get_column("face_id").sort().to_list()
        checked.append(AttributePurity(key, terms[key], len(ids), known.height, known.height - len(impure),
                                       tuple(impure)))
    no_truth = tuple(f"{key}={terms[key]}" for key in NO_TRUTH_KEYS if key in terms)
    return CompositePurity(spec.canonical, len(ids), rows.height, tuple(checked), no_truth)


def composite_purity(spec: FilterSpec, members: Sequence[str], master: pl.DataFrame, truth: pl.DataFrame,
                     *, prefix: str = "") -> CompositePurity:
    """:func:`purity_from_face_truth` with image labels keyed by ``file`` (``truth``, as
    :func:`~facestats_core.labels.attribute_labels.read_fairface_labels` reads them) mapped to faces
    through ``master`` (``face_id``, ``image_id``, ``path``; ``prefix`` as in
    :func:`~facestats_core.labels.attribute_labels.match_labels_to_images`)."""
    return purity_from_face_truth(spec, members, true_labels_by_face(truth, master, prefix=prefix))


def _percent(part: int, whole: int) -> str:
    """``part / whole`` as a percentage rounded down to 0.1 (so only a pure set reads 100%)."""
    if part == whole:
        return "100%"
    return f"{math.floor(1000 * part / whole) / 10:.1f}%"


def purity_text(purity: CompositePurity) -> str:
    """One line: ``gender=male 100% (40/40), age=0-19 95.0% (38/40); no truth: attractiveness=top10`` (members
    without a true value, when there are any, as ``38/40 of 42``)."""
    parts: list[str] = []
    for attr in purity.attributes:
        share = "-" if attr.purity is None else _percent(attr.pure, attr.with_truth)
        counted = f"{attr.pure}/{attr.with_truth}"
        if attr.with_truth != attr.members:
            counted += f" of {attr.members}"
        parts.append(f"{attr.attribute}={attr.condition} {share} ({counted})")
    text = ", ".join(parts) if parts else "no attribute terms"
    if purity.no_truth:
        text += f"; no truth: {', '.join(purity.no_truth)}"
    return text
