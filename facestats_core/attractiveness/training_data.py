"""The attractiveness training set: embeddings joined with ratings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from facestats_core.embedding.vectors import embedding_matrix


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Rows with both an embedding and a rating, sorted by `face_id`."""

    face_ids: list[str]
    X: np.ndarray
    y: np.ndarray


def assemble_training_data(embeddings: pl.DataFrame, ratings: pl.DataFrame) -> TrainingData:
    """Inner-join embeddings (`face_id, embedding`) with ratings (`face_id, score`).

    Rows are sorted by `face_id` so the result is independent of input order.
    If an image appears more than once in either input, its first row is used.
    """
    emb = embeddings.select("face_id", "embedding").unique("face_id", keep="first", maintain_order=True)
    rat = ratings.select("face_id", "score").unique("face_id", keep="first", maintain_order=True)
    joined = emb.join(rat, on="face_id", how="inner").sort("face_id")
    return TrainingData(
        face_ids=joined["face_id"].to_list(),
        X=embedding_matrix(joined),
        y=joined["score"].cast(pl.Float64).to_numpy().copy(),
    )
