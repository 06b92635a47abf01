from __future__ import annotations

from facestats_dagster import cli


def test_demo_falls_back_to_a_seeded_small_clip_loudly(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("FACESTATS_CLIP_MODEL", raising=False)
    monkeypatch.setattr(cli, "_hub_reachable", lambda host="huggingface.co": False)
    chosen = cli.resolve_demo_model(tmp_path)
    assert chosen == str(tmp_path / cli.FALLBACK_MODEL_DIR)
    assert (tmp_path / cli.FALLBACK_MODEL_DIR / "config.json").exists()
    printed = capsys.readouterr().out
    assert "NOTICE" in printed and "SEEDED RANDOM" in printed and "FACESTATS_CLIP_MODEL" in printed


def test_explicit_model_wins(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FACESTATS_CLIP_MODEL", "/models/my-clip")
    assert cli.resolve_demo_model(tmp_path) == "/models/my-clip"


def test_materialize_commands_cover_all_shards_then_downstream() -> None:
    from facestats_dagster.composites_cli import ANALYSIS_SELECTION
    from facestats_dagster.partitions import ALL_SHARDS_RANGE

    commands = cli.materialize_commands("dagster")
    first, second = commands[:2]
    assert first[-2:] == ["--partition-range", ALL_SHARDS_RANGE]
    assert "aligned_faces" in first[first.index("--select") + 1]
    assert ANALYSIS_SELECTION in second
    assert any("master_metadata" in c for c in commands) and any("contact_sheet" in c for c in commands)
    assert sum(c[:3] == ["facestats", "composites", "build"] for c in commands) == 1
    assert commands[-1][-2:] == ["--select", "stats_report"]
