from __future__ import annotations

import subprocess
import sys

import dagster as dg


def test_definitions_load_with_every_asset() -> None:
    from facestats_dagster.definitions import defs

    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_images", "preprocessed_images", "embedding_shards", "embeddings_clip"} <= keys
    defs.resolve_implicit_global_asset_job_def()


def test_definitions_import_no_torch_or_transformers() -> None:
    code = (
        "import sys, facestats_dagster.definitions; "
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_resources_follow_environment(monkeypatch) -> None:
    from facestats_dagster.defs.resources import build_resources
    from facestats_dagster.settings import load_settings

    monkeypatch.setenv("FACESTATS_DATA_ROOT", "s3://bucket/faces")
    monkeypatch.setenv("FACESTATS_CLIP_MODEL", "/opt/clip")
    monkeypatch.setenv("FACESTATS_CLIP_PRECISION", "bf16")
    resources = build_resources(load_settings())
    assert str(resources["paths"].layout().processed_dir) == "s3://bucket/faces/processed"
    assert resources["clip"].model == "/opt/clip"
    assert resources["clip"].config().precision == "bf16"
    assert isinstance(resources["clip"], dg.ConfigurableResource)
