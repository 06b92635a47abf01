"""A slow embedding run for the kill test: ``python -m tests.core.embedding.checkpoint_worker CLIP CHIPS MANIFEST
PARTS CHUNK BATCH DELAY LOG``. Every batch sleeps ``DELAY`` seconds (a slow model) and appends the number of
faces it embedded to ``LOG`` (unbuffered, so a SIGKILL loses none of the lines)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

import facestats_core.embedding.clip as embedding
from facestats_core.embedding.checkpoint import Checkpoint


def main(clip_dir: str, chips_dir: str, manifest: str, parts: str, chunk: str, batch: str, delay: str,
         log: str) -> None:
    clip = embedding.load_clip(embedding.ClipConfig(model=clip_dir))
    original = embedding.forward_batch
    with open(log, "ab", buffering=0) as out:

        def slow_forward(model: embedding.LoadedClip, pixels: Any) -> Any:
            time.sleep(float(delay))
            features = original(model, pixels)
            out.write(f"{len(features)}\n".encode())
            return features

        embedding.forward_batch = slow_forward
        embedding.embed_manifest(pl.read_parquet(manifest), clip, int(batch), Path(chips_dir),
                                 checkpoint=Checkpoint(Path(parts), int(chunk)))


if __name__ == "__main__":
    main(*sys.argv[1:])
