"""embedding_shards on the OpenVINO backend at int8: calibrated once on the run's own face chips,
recorded in the precision column and the metadata, reused on the next run."""

from __future__ import annotations

import dagster as dg
import pytest

from facestats_core.io.layout import Layout
from facestats_dagster.partitions import ALL_SHARDS_RANGE
from facestats_dagster.resources import ClipResource
from tests.dagster.resources import make_resources

pytest.importorskip("openvino", reason="openvino not installed (the `openvino` extra; `make test` installs it)")
pytest.importorskip("nncf", reason="nncf not installed (the `openvino` extra; `make test` installs it)")


def test_int8_embedding_shards_calibrate_on_the_chips_and_record_it(all_assets, raw_folder, tiny_clip_dir,
                                                                     tmp_path) -> None:
    clip = ClipResource(model=str(tiny_clip_dir), batch_size=4, precision="int8", backend="openvino",
                        cache_dir=str(tmp_path / "ov-cache"))
    resources = make_resources(raw_folder.parent, tmp_path / "models", clip=clip)
    first, last = ALL_SHARDS_RANGE.split("...")
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    selection = ["raw_images", "face_detections", "face_chips", "embedding_shards"]
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(all_assets, resources=resources, selection=selection, instance=instance, tags=tags)
    assert result.success
    metadata = result.asset_materializations_for_node("embedding_shards")[0].metadata
    label = metadata["precision"].value
    assert label.startswith("openvino-int8:")
    shards = Layout.from_roots(raw_folder.parent, tmp_path / "models").read_partitions("embedding_shards")
    assert set(shards["precision"]) == {label} and shards.height > 0
    assert (tmp_path / "ov-cache").is_dir()

    again = dg.materialize(all_assets, resources=resources, selection=selection, instance=instance, tags=tags)
    metadata = again.asset_materializations_for_node("embedding_shards")[0].metadata
    assert metadata["precision"].value == label  # the same calibration, not a new one
    assert metadata["embedded"].value == 0 and metadata["reused"].value == shards.height
