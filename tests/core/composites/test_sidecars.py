from __future__ import annotations

import json
from pathlib import Path

from facestats_core.composites.sidecars import member_ids, read_sidecars


def test_member_ids_of_every_readable_sidecar(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(json.dumps({"spec": "gender=male", "face_ids": ["x", "y"]}))
    (tmp_path / "a.json").write_text(json.dumps({"spec": "all", "face_ids": ["x", "y", "z"]}))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"no": "spec"}))
    (tmp_path / "noids.json").write_text(json.dumps({"spec": "gender=female"}))
    assert [meta["spec"] for meta in read_sidecars(tmp_path)] == ["all", "gender=female", "gender=male"]
    assert member_ids(tmp_path) == {"all": ["x", "y", "z"], "gender=male": ["x", "y"]}
    assert member_ids(tmp_path / "missing") == {}
