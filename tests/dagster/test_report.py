"""The `stats_report` asset: takes the master table and the two models (optional inputs, loaded
through the model store), reads the composites; attaches plots."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
from PIL import Image

from facestats_core.io.atomic import atomic_write_parquet
from facestats_core.io.layout import Layout
from facestats_dagster.cli.dagster_runs import ANALYSIS_SELECTION
from facestats_dagster.definitions import defs
from facestats_dagster.resources import FacesResource
from tests.core.report.test_report import master
from tests.dagster.models import save_small_models
from tests.dagster.resources import make_resources


def _resources(tmp_path: Path) -> dict[str, object]:
    return make_resources(tmp_path / "data", tmp_path / "models", faces=FacesResource())


def _materialize(tmp_path: Path) -> dg.ExecuteInJobResult:
    return dg.materialize(
        list(defs.assets),  # type: ignore[arg-type]
        resources=_resources(tmp_path),
        selection=["stats_report"],
        instance=dg.DagsterInstance.ephemeral(),
    )


def test_stats_report_writes_html_and_pngs_and_shows_plots(tmp_path: Path) -> None:
    layout = Layout.from_roots(tmp_path / "data", tmp_path / "models")
    atomic_write_parquet(layout.artifact("master_metadata"), master())
    save_small_models(layout.model_root)
    layout.composites_dir.mkdir(parents=True)
    Image.new("RGB", (64, 64), "gray").save(layout.composites_dir / "all.png")
    (layout.composites_dir / "all.json").write_text(
        json.dumps({"spec": "all", "image_file": "all.png", "matched": 12, "used": 12})
    )

    result = _materialize(tmp_path)
    assert result.success
    metadata = result.asset_materializations_for_node("stats_report")[0].metadata
    index = layout.report_dir / "index.html"
    assert metadata["path"].value == str(index)
    assert "<title>FaceStats report</title>" in index.read_text()
    assert (layout.report_dir / "attractiveness_histogram.png").exists()
    for name in ("plot_attributes_ethnicity", "plot_attractiveness_histogram"):
        assert metadata[name].value.startswith(f"![{name.removeprefix('plot_')}.png](data:image/png;base64,")
    assert metadata["composites"].value == 1 and metadata["images"].value == 12
    assert "| composites | ok |" in metadata["sections"].value
    assert "| classifiers | ok |" in metadata["sections"].value
    page = index.read_text()
    assert "setting FACESTATS_SEED" in page and "package dagster" in page and "attribute_classifiers sha256" in page


def test_stats_report_without_models_or_composites_says_what_is_missing(tmp_path: Path) -> None:
    layout = Layout.from_roots(tmp_path / "data", tmp_path / "models")
    atomic_write_parquet(layout.artifact("master_metadata"), master(scores=False))
    result = _materialize(tmp_path)
    assert result.success
    metadata = result.asset_materializations_for_node("stats_report")[0].metadata
    assert "| classifiers | no classifier metrics |" in metadata["sections"].value
    assert "plot_attractiveness_histogram" not in metadata and "plot_attributes_ethnicity" in metadata
    assert "No attractiveness scores" in (layout.report_dir / "index.html").read_text()


def test_report_is_registered_and_runs_after_the_master_table() -> None:
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey("stats_report")
    assert graph.get(key).group_name == "report"
    assert dg.AssetKey("master_metadata") in graph.get(key).parent_keys
    analysis = dg.AssetSelection.from_string(ANALYSIS_SELECTION).resolve(graph)
    assert key not in analysis  # `facestats update` builds it in its own, last command
