"""A slow embedding run for the kill test: ``python -m tests.core.embedding.checkpoint_worker CLIP CHIPS MANIFEST
PARTS CHUNK BATCH DELAY LOG``. Every batch sleeps ``DELAY`` seconds (a slow model) and appends the number of
faces it embedded to ``LOG`` (unbuffered, so a SIGKILL loses none of the lines)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from facestats_core.embedding.checkpoint import Checkpoint
from facestats_core.embedding.config import ClipConfig
from facestats_core.embedding.loader import load_clip
from facestats_core.embedding.table import embed_manifest
from tests.core.embedding.towers import recording


def main(clip_dir: str, chips_dir: str, manifest: str, parts: str, chunk: str, batch: str, delay: str,
         log: str) -> None:
    with open(log, "ab", buffering=0) as out:

        def slow(features: np.ndarray) -> None:
            time.sleep(float(delay))
            out.write(f"{len(features)}\n".encode())

        clip, _ = recording(load_clip(ClipConfig(model=clip_dir)), after=slow)
        embed_manifest(pl.read_parquet(manifest), clip, int(batch), Path(chips_dir),
                       checkpoint=Checkpoint(Path(parts), int(chunk)))


if __name__ == "__main__":
    main(*sys.argv[1:])
