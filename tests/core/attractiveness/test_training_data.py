"""Embeddings joined with ratings for the regressor."""

from __future__ import annotations

import numpy as np
import polars as pl

from facestats_core.attractiveness.training_data import assemble_training_data


def test_assemble_training_data_orders_by_face_id() -> None:
    emb = pl.DataFrame(
        {"face_id": ["b", "a", "c"], "embedding": [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]},
        schema={"face_id": pl.Utf8, "embedding": pl.Array(pl.Float32, 2)},
    )
    ratings = pl.DataFrame({"face_id": ["c", "a"], "path": ["c.jpg", "a.jpg"], "score": [4.0, 2.0]})
    data = assemble_training_data(emb, ratings)
    assert data.face_ids == ["a", "c"]
    assert data.X.dtype == np.float32 and data.X.shape == (2, 2)
    assert np.allclose(data.X, [[0.0, 1.0], [0.6, 0.8]]) and data.y.tolist() == [2.0, 4.0]
