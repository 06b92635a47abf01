"""True labels of the analysed faces, for evaluation only (`face_statistics`' true shares, the purity of
composites): a FairFace-format file of image labels, read and mapped to the master table's faces."""

from __future__ import annotations

import dagster as dg
import polars as pl

from facestats_core.labels.face_labels import read_true_labels_by_face
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
    truth, why_not = read_true_labels_by_face(source, master, prefix=labels.fairface_prefix)
    if truth is None:
        context.log.warning(f"Cannot read labels: {why_not}: nothing is compared with true labels.")
    return truth
