"""What the numbers rest on: demo and random CLIPs, unmeasured zero-shot attributes."""

from __future__ import annotations

from facestats_core.models.caveats import DEMO_CLIP_RECORD, RANDOM_CLIP_RECORD, clip_kind, numbers_caveats


def test_the_clip_folder_says_what_kind_of_clip_it_is(tmp_path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / DEMO_CLIP_RECORD).write_text("{}")
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / RANDOM_CLIP_RECORD).write_text("{}")
    assert clip_kind(str(tmp_path / "demo")) == "demo" and clip_kind(str(tmp_path / "random")) == "random"
    assert clip_kind("openai/clip-vit-base-patch32") == "model" and clip_kind(str(tmp_path)) == "model"
    said = numbers_caveats(str(tmp_path / "demo"), {"gender": {"probe": 3}, "age": {"zero_shot": 2}})
    assert len(said) == 2 and "DEMO CLIP" in said[0] and said[1].startswith("age come from CLIP zero-shot")
    assert numbers_caveats("openai/clip-vit-base-patch32", {"gender": {"probe": 3, "label": 1}}) == []


def test_the_shipped_demo_clip_is_recognised() -> None:
    from facestats_demo.train_clip import DEMO_CLIP_DIR

    assert clip_kind(str(DEMO_CLIP_DIR)) == "demo"
