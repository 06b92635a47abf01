"""Where the attribute probes and the attractiveness regressor come from: one decision for the
pipeline's model assets and for ``facestats analyse``.

The rule, per target, first match wins:

1. a **bundle** is configured: its models (attractiveness: none when the bundle has no regressor;
   a bundle is never mixed with training);
2. the **reference** set has labels (attributes) or ratings (attractiveness): train on it;
3. the **analysed** set has its own labels or ratings: train on them (the faces they label are
   then predicted out of fold);
4. models the pipeline already **stored** in the model root (what ``facestats analyse`` applies;
   the assets never pass any, they train);
5. otherwise attributes come from CLIP **zero-shot** prompts and attractiveness has **none**.

Attractiveness trains only on at least ``min_rated`` rated faces: a chosen rated set with fewer
gives no regressor (``none``) with the count in the reason, as does no rated set at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from facestats_core.labels.vocab import ATTRIBUTES

Target = Literal["attributes", "attractiveness"]
Source = Literal["bundle", "reference", "analysed", "stored", "zero_shot", "none"]
TRAINED: tuple[Source, ...] = ("reference", "analysed")
"""Sources that mean: train on that set's rows now."""
MIN_RATED = 10
"""Fewest rated faces the regressor trains on (fewer: no regressor)."""
NO_RATINGS_HINT = ("configure ratings (FACESTATS_RATINGS, or a reference set with FACESTATS_REFERENCE_RATINGS) "
                   "or a bundle (FACESTATS_MODELS)")


@dataclass(frozen=True)
class Available:
    """What a run has to take models from: the configured bundle, and how many faces of each set
    carry labels or ratings, and which models the model root already stores."""

    bundle: str = ""
    """The configured bundle (path or URL); empty: none."""
    bundle_has_regressor: bool = False
    reference_labelled: int = 0
    """Reference faces with at least one attribute label."""
    reference_rated: int = 0
    analysed_labelled: int = 0
    """Faces of the analysed set (embedded) with at least one label of its own."""
    analysed_rated: int = 0
    stored_root: str = ""
    """The model root that holds already trained models; empty: none considered."""
    stored_probes: bool = False
    stored_regressor: bool = False


@dataclass(frozen=True)
class ModelSource:
    """One target's source, the faces it trains on (0 unless it trains) and why, in one sentence."""

    target: Target
    source: Source
    reason: str
    faces: int = 0

    @property
    def trains(self) -> bool:
        """Whether the model is trained now, on the ``source`` set's rows."""
        return self.source in TRAINED

    def metadata(self) -> dict[str, Any]:
        """The decision as flat metadata: ``model_source`` and ``model_source_reason``."""
        return {"model_source": self.source, "model_source_reason": self.reason}


@dataclass(frozen=True)
class ModelSources:
    """The decision for both targets."""

    attributes: ModelSource
    attractiveness: ModelSource


def _attributes(available: Available) -> ModelSource:
    if available.bundle:
        return ModelSource("attributes", "bundle", f"the probes of the bundle {available.bundle}")
    if available.reference_labelled:
        return ModelSource("attributes", "reference", f"probes trained on {available.reference_labelled} labelled "
                           "faces of the reference set", available.reference_labelled)
    if available.analysed_labelled:
        return ModelSource("attributes", "analysed", f"probes trained on {available.analysed_labelled} labelled "
                           "faces of the analysed set (those faces are predicted out of fold)",
                           available.analysed_labelled)
    if available.stored_probes:
        return ModelSource("attributes", "stored", f"the probes stored in {available.stored_root}")
    return ModelSource("attributes", "zero_shot", "no labelled faces (no reference set labels, no data-set labels) "
                       "and no bundle: CLIP zero-shot prompts")


def _attractiveness(available: Available, min_rated: int) -> ModelSource:
    if available.bundle:
        if available.bundle_has_regressor:
            return ModelSource("attractiveness", "bundle", f"the regressor of the bundle {available.bundle}")
        return ModelSource("attractiveness", "none", f"the bundle {available.bundle} has no attractiveness regressor")
    for source, rated in (("reference", available.reference_rated), ("analysed", available.analysed_rated)):
        if rated >= min_rated:
            return ModelSource("attractiveness", source, f"trained on the {source} set's ratings ({rated} rated "
                               "faces)", rated)
        if rated:
            return ModelSource("attractiveness", "none", f"{rated} rated faces in the {source} set (need "
                               f"{min_rated}); {NO_RATINGS_HINT}")
    if available.stored_regressor:
        return ModelSource("attractiveness", "stored", f"the regressor stored in {available.stored_root}")
    return ModelSource("attractiveness", "none", f"0 rated faces (need {min_rated}); {NO_RATINGS_HINT}")


def decide_model_sources(available: Available, *, min_rated: int = MIN_RATED) -> ModelSources:
    """Where each model comes from (the rule in the module docstring)."""
    return ModelSources(_attributes(available), _attractiveness(available, min_rated))


def label_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``frame`` with at least one attribute label."""
    return frame.filter(pl.any_horizontal(pl.col(a).is_not_null() for a in ATTRIBUTES))


@dataclass(frozen=True, eq=False)
class TrainingSets:
    """The rows each model could train on: labelled and rated faces of the reference and analysed sets.

    Labelled rows hold ``face_id``, ``embedding`` and the label columns (the reference set's
    every column); rated rows hold ``face_id``, ``embedding`` and ``score``.
    """

    reference_labelled: pl.DataFrame
    reference_rated: pl.DataFrame
    analysed_labelled: pl.DataFrame
    analysed_rated: pl.DataFrame

    def available(self, bundle: str = "", bundle_has_regressor: bool = False) -> Available:
        """The counts :func:`decide_model_sources` takes, with the configured bundle."""
        return Available(bundle=bundle, bundle_has_regressor=bundle_has_regressor,
                         reference_labelled=self.reference_labelled.height,
                         reference_rated=self.reference_rated.height,
                         analysed_labelled=self.analysed_labelled.height, analysed_rated=self.analysed_rated.height)

    def rows(self, decision: ModelSource) -> pl.DataFrame:
        """The rows ``decision`` trains on; ``ValueError`` when it does not train."""
        if not decision.trains:
            raise ValueError(f"{decision.target} from {decision.source} trains on no rows")
        kind = "labelled" if decision.target == "attributes" else "rated"
        return getattr(self, f"{decision.source}_{kind}")


def training_sets(embeddings: pl.DataFrame, reference_embeddings: pl.DataFrame,
                  dataset_labels: pl.DataFrame) -> TrainingSets:
    """The labelled and rated rows of the reference set (``reference_embeddings``: embedding, labels,
    score; may be empty without columns) and of the analysed set (``embeddings`` joined with its
    ``dataset_labels``)."""
    vectors = embeddings.select("face_id", "embedding")
    empty_labelled = vectors.clear()
    empty_rated = vectors.clear().with_columns(pl.lit(None, dtype=pl.Float64).alias("score"))
    has_reference = bool(reference_embeddings.height)
    return TrainingSets(
        reference_labelled=label_rows(reference_embeddings) if has_reference else empty_labelled,
        reference_rated=(reference_embeddings.filter(pl.col("score").is_not_null())
                         .select("face_id", "embedding", "score") if has_reference else empty_rated),
        analysed_labelled=vectors.join(label_rows(dataset_labels).select("face_id", *ATTRIBUTES, "split"),
                                       on="face_id"),
        analysed_rated=vectors.join(dataset_labels.filter(pl.col("score").is_not_null()).select("face_id", "score"),
                                    on="face_id"),
    )
