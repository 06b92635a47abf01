"""The same faces averaged by each composite method, side by side (none | eyes | warp), for the report."""

from __future__ import annotations

import io
import os
from typing import Any

import polars as pl
from PIL import Image, ImageDraw

from facestats_core.composites.build import chip_members, has_68
from facestats_core.composites.select import sample_ids
from facestats_core.composites.warped import METHODS, MemberComposite, WarpSettings, composites_from_members
from facestats_core.images.preprocess import laplacian_variance


def method_comparison(master: pl.DataFrame, layout: Any, n: int = 100, size: int = 192, seed: int = 0
                      ) -> tuple[bytes, dict[str, float]] | None:
    """A PNG of up to ``n`` faces with 68 landmarks (sampled with ``seed``) averaged by ``none``,
    ``eyes`` and ``warp``, with each picture's face-hull sharpness; None with fewer than two such faces."""
    needed = {"face_id", "composite_path", "chip_landmarks", "landmark_points", "chip_ok"}
    if not needed <= set(master.columns):
        return None
    faces = master.filter(pl.col("chip_ok").fill_null(False) & has_68())
    if faces.height < 2:
        return None
    chosen = sample_ids(faces["face_id"].to_list(), n, seed)
    members = chip_members(faces.filter(pl.col("face_id").is_in(chosen)), layout)
    settings = WarpSettings(size)
    # One pass: each chip decoded once for the three pictures, members sampled in threads (the members are
    # sorted by id, so each picture is byte for byte what composite_from_members makes of them alone).
    made = composites_from_members([(members, method, settings) for method in METHODS], workers=os.cpu_count() or 1)
    pictures: dict[str, MemberComposite] = {}
    for method, picture in zip(METHODS, made, strict=True):
        if isinstance(picture, ValueError):
            raise picture
        pictures[method] = picture
    warp = pictures["warp"]
    sharpness = {m: round(laplacian_variance(pictures[m].image.convert("RGB"), mask=warp.face_mask), 2)
                 for m in METHODS}
    sheet = Image.new("RGB", (3 * size + 16, size + 22), "white")
    draw = ImageDraw.Draw(sheet)
    for i, method in enumerate(("none", "eyes", "warp")):
        sheet.paste(pictures[method].image.convert("RGB"), (i * (size + 8), 0))
        draw.text((i * (size + 8) + 4, size + 5), f"{method}  (sharpness {sharpness[method]:.0f})", fill="black")
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue(), {"faces": float(len(members)), **sharpness}
