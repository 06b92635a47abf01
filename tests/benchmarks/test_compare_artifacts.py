"""benchmarks/compare_artifacts.py: the verdicts it gives two artifact trees."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_artifacts.py"
_SPEC = importlib.util.spec_from_file_location("compare_artifacts", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
compare = importlib.util.module_from_spec(_SPEC)
sys.modules["compare_artifacts"] = compare  # dataclasses look their module up
_SPEC.loader.exec_module(compare)


def _tree(root: Path, *, score: float, pixel: int, extra: bool, key: str) -> Path:
    (root / "chip-a" / "224").mkdir(parents=True)
    pl.DataFrame({"face_id": ["a", "b"], "score": [0.5, score]}).write_parquet(root / "t.parquet")
    pl.DataFrame({"x": [1, 2], "y": ["p", "q"]}).select("y", "x").write_parquet(root / "reordered.parquet")
    (root / "m.json").write_text(json.dumps({"n": 2, "inner": {key: 1}}))
    pixels = np.zeros((8, 8, 3), np.uint8)
    pixels[0, 0, 0] = pixel
    Image.fromarray(pixels).save(root / "chip-a" / "224" / "f.png")
    (root / "same.txt").write_text("same")
    if extra:
        (root / "new.txt").write_text("only here")
    return root


def test_equal_trees_have_no_difference(tmp_path: Path) -> None:
    old = _tree(tmp_path / "old", score=0.25, pixel=0, extra=False, key="k")
    new = _tree(tmp_path / "new", score=0.25, pixel=0, extra=False, key="k")
    verdicts = compare.compare_trees(old, new)
    assert len(verdicts) == 5
    assert {v.kind for v in verdicts.values()} <= {"identical", "equal"}


def test_each_kind_of_difference_is_named(tmp_path: Path) -> None:
    old = _tree(tmp_path / "old", score=0.25, pixel=0, extra=False, key="k")
    new = _tree(tmp_path / "new", score=0.75, pixel=9, extra=True, key="j")
    (new / "chip-a").rename(new / "chip-b")  # another content version: still matched by path below it
    pl.DataFrame({"x": [1, 2], "y": ["p", "q"]}).write_parquet(new / "reordered.parquet")
    verdicts = compare.compare_trees(old, new)
    assert verdicts["t.parquet"].kind == "differs"
    assert "score: 1 rows, max |diff| 0.5" in verdicts["t.parquet"].detail
    assert verdicts["reordered.parquet"].kind == "equal"
    assert verdicts["m.json"].kind == "differs" and "inner.j (new)" in verdicts["m.json"].detail
    image = verdicts["<version>/224/f.png"]
    assert image.kind == "differs" and "max 9" in image.detail
    assert verdicts["new.txt"].kind == "only_new"
    assert verdicts["same.txt"].kind == "identical"


def test_main_ends_with_the_summary_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    old = _tree(tmp_path / "old", score=0.25, pixel=0, extra=False, key="k")
    new = _tree(tmp_path / "new", score=0.25, pixel=0, extra=True, key="k")
    pl.DataFrame({"x": [1, 2], "y": ["p", "q"]}).write_parquet(new / "reordered.parquet")  # equal, not identical
    assert compare.main([str(old), str(new)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == "summary: files=6 identical=4 equal=1 differ=0 only_old=0 only_new=1"
