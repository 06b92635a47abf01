"""True labels of the analysed faces, for evaluation only (`face_statistics`' true shares, the purity of
composites): a FairFace-format file of image labels, read and mapped to the master table's faces."""

from __future__ import annotations

import dagster as dg
import polars as pl

from facestats_core.labels.attribute_labels import read_fairface_labels
from facestats_core.labels.face_labels import true_labels_by_face
from facestats_dagster.resources import LabelsResource, PathsResource


def face_truth(context: dg.AssetExecutionContext, master: pl.DataFrame, labels: LabelsResource,
               paths: PathsResource, *, own_labels: bool = True) -> pl.DataFrame | None:
    """`face_id` + `gender`, `age`, `ethnicity` from `truth_labels` (FACESTATS_TRUTH_LABELS) when set, else
    (`own_labels`) the data set's own FairFace-format labels; None when that is not configured, missing or
    unreadable (a warning)."""
    setting = labels.truth_labels or (labels.fairface_labels if own_labels else "")
    source = paths.layout().data_file(setting)
    if source is None or not source.exists():
        return None
    try:
        read = read_fairface_labels(source)
    except (OSError, ValueError) as exc:
        context.log.warning(f"Cannot read labels {source} ({exc}): nothing is compared with true labels.")
        return None
    return true_labels_by_face(read.labels, master, prefix=labels.fairface_prefix)
