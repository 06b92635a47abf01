"""The demo's 68-point landmark truth: written to demo_truth.csv, consistent with the eyes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facestats_core.faces.alignment import read_landmarks_csv
from facestats_core.faces.landmarks68 import read_landmarks68_csv
from facestats_demo.faces import DemoSpec, generate_demo_dataset


def test_demo_truth_has_68_landmarks_consistent_with_the_eyes(tmp_path: Path) -> None:
    demo = generate_demo_dataset(tmp_path, DemoSpec(n_images=6, size=128))
    points = read_landmarks68_csv(demo.truth)
    eyes = read_landmarks_csv(demo.truth)  # the old reader still reads the eyes
    assert sorted(points) == sorted(eyes["file"].to_list()) and len(points) == 6
    for file, lx, ly, rx, ry in eyes.iter_rows():
        lm = points[file]
        assert lm.shape == (68, 2) and ((lm > 0) & (lm < 127)).all()
        np.testing.assert_allclose(lm[36:42].mean(axis=0), (lx, ly), atol=2e-3)
        np.testing.assert_allclose(lm[42:48].mean(axis=0), (rx, ry), atol=2e-3)
        chin, nose_tip, mouth_top = lm[8], lm[30], lm[51]
        eye_line = (ly + ry) / 2
        # rotations are at most 12 degrees: the vertical order brows < eyes < nose < mouth < chin holds
        assert lm[17:27, 1].mean() < eye_line < nose_tip[1] < mouth_top[1] < chin[1]
        assert lm[0, 0] < lm[16, 0] and lm[36, 0] < lm[39, 0] < lm[42, 0] < lm[45, 0]
