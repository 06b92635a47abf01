"""The few lines a finished run ends with."""

from __future__ import annotations

import polars as pl

from facestats_core.analysis.run_summary import summarize, summary_lines


def test_faces_faceless_reasons_methods_and_composites() -> None:
    master = pl.DataFrame({
        "image_id": ["a", "a", "b", "c", "d"],
        "face_id": ["a_1", "a_2", None, None, "d_1"],
        "reason": [None, None, "no_face", "unreadable", None],
        "gender_source": ["predicted", "predicted", None, None, "label"],
        "gender_method": ["probe", "zero_shot", None, None, None],
    })
    sidecars = [{"status": "built"}, {"status": "not_built", "reason": "filter spec 'gender=male' matched 3 faces"},
                {"status": "not_built", "reason": "filter spec 'gender=female' matched 4 faces"}]
    summary = summarize(master, sidecars)
    assert (summary.images, summary.images_with_faces, summary.faces) == (4, 2, 3)
    assert summary.faceless_by_reason == {"no_face": 1, "unreadable": 1}
    assert summary.methods == {"gender": {"probe": 1, "zero_shot": 1, "label": 1}}
    assert summary.built == 1 and summary.not_built == {"filter spec '…' matched N faces": 2}
    lines = summary_lines(summary)
    assert lines[0] == "faces found       3 in 2 of 4 images"
    assert "no face           2 images (no_face 1, unreadable 1)" in lines
    assert "  not built (2): filter spec '…' matched N faces" in lines
