"""The Dagster UI in a real browser: ``dagster dev`` on 127.0.0.1 driven by headless Chromium.

The test starts ``dagster dev -w workspace.yaml`` on a fresh ``DAGSTER_HOME`` and a small demo
data root, opens the asset graph in the system Chromium (Debian ``chromium``, installed by
``.ci/run``; Playwright drives it through ``executable_path`` and never downloads a browser),
checks that every asset of the ``Definitions`` is drawn, launches the demo through the GraphQL
API the UI itself uses (image shards as one partition-range run, then the analysis, the composites
and the report), waits for success, saves screenshots under ``tests/artifacts/`` and opens the
generated stats report. Every process it started is stopped, on success and on failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the CI container runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCATION = "facestats_dagster.definitions"
ASSET_JOB = "__ASSET_JOB"
IMAGE_ASSETS = ["raw_images", "face_detections", "face_chips", "embedding_shards"]
ANALYSIS_ASSETS = [
    "embeddings_clip",
    "reference_embeddings",
    "dataset_labels",
    "attribute_classifiers",
    "attributes",
    "attribute_flags",
    "embedding_clusters",
    "manual_labels",
    "attractiveness_regressor",
    "attractiveness_scores",
    "model_bundle",
    "master_metadata",
]
DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)
"""Exec ``argv[1:]`` with SIGINT handled again: a shell's background job (e.g. ``make test &``) ignores
SIGINT, the ignore is inherited, and ``dagster dev`` would then neither stop on SIGINT nor on SIGTERM."""
INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
    # Runs requested by sensors, schedules, declarative automation and backfills stay queued:
    # they are tested elsewhere, and here they would race the runs this test launches.
    tag_concurrency_limits:
      - key: dagster/sensor_name
        limit: 0
      - key: dagster/schedule_name
        limit: 0
      - key: dagster/backfill
        limit: 0
"""


# --------------------------------------------------------------------------- processes


def _proc_info(pid: str) -> tuple[int, str, bytes, bytes] | None:
    """(session id, state, environ, cmdline) of a process, or None when it is gone or unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return None
    return int(stat[3]), stat[0], environ, cmdline


def live_processes(session: int | None = None, marker: str | None = None) -> list[int]:
    """Pids (zombies excluded) in ``session`` or whose environment or command line holds ``marker``."""
    found = []
    needle = marker.encode() if marker else None
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        info = _proc_info(pid)
        if info is None or info[1] in ("Z", "X"):
            continue
        sid, _, environ, cmdline = info
        if (session is not None and sid == session) or (needle and (needle in environ or needle in cmdline)):
            found.append(int(pid))
    return found


def _wait_gone(pids: Any, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = pids()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def stop_process_tree(process: subprocess.Popen[bytes], marker: str) -> list[int]:
    """Stop ``dagster dev`` and everything it started; returns the pids still alive (should be none).

    SIGINT to ``dagster dev`` (it shuts its webserver, daemon and code servers down), then
    SIGTERM and finally SIGKILL to its process group and to every process carrying ``marker``.
    """

    def ours() -> list[int]:
        return live_processes(session=process.pid, marker=marker)

    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None and not _wait_gone(ours, 5.0):
            return []
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        for pid in ours():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    return _wait_gone(ours, 5.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- GraphQL


class Dagster:
    """A running ``dagster dev``: its URL, log and a small GraphQL client."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
        assert not payload.get("errors"), f"GraphQL errors: {payload['errors']}"
        return payload["data"]

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until /server_info answers and the code location is loaded (fails fast on a load error)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"dagster dev exited early:\n{self.log_tail()}"
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"the webserver did not answer /server_info in {timeout:.0f} s:\n{self.log_tail()}")
        query = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
            locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        while time.monotonic() < deadline:
            entries = self.graphql(query)["workspaceOrError"]["locationEntries"]
            entry = next((e for e in entries if e["name"] == LOCATION), None)
            if entry and entry["loadStatus"] == "LOADED" and entry["locationOrLoadError"]:
                error = entry["locationOrLoadError"]
                assert error["__typename"] != "PythonError", (
                    f"code location failed to load: {error['message']}"
                )
                return
            time.sleep(0.5)
        pytest.fail(f"the code location {LOCATION} did not load:\n{self.log_tail()}")

    def launch(self, assets: list[str], tags: dict[str, str] | None = None) -> str:
        """Launch one run of ``assets`` with their asset checks (as the UI's Materialize button does);
        returns its id.

        Runs use the in-process executor (one process per run: lean on a 2-core CI machine). The
        checks run inside their asset's step, so Dagster refuses a selection that leaves them out; a
        failed check (tiny random-CLIP data does not meet the metric floors) does not fail a run."""
        from facestats_dagster.definitions import defs

        checks = [key for key in defs.resolve_asset_graph().asset_check_keys
                  if key.asset_key.to_user_string() in assets]
        mutation = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
            __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message }
            ... on RunConfigValidationInvalid { errors { message } } } }"""
        params: dict[str, Any] = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": "__repository__",
                "jobName": ASSET_JOB,
                "assetSelection": [{"path": [key]} for key in assets],
                "assetCheckSelection": [{"assetKey": {"path": list(key.asset_key.path)}, "name": key.name}
                                        for key in checks],
            },
            "runConfigData": {"execution": {"config": {"in_process": {}}}},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        result = self.graphql(mutation, {"params": params})["launchRun"]
        if result["__typename"] == "RunConfigValidationInvalid":  # an executor without in_process
            params.pop("runConfigData")
            result = self.graphql(mutation, {"params": params})["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", f"launchRun {assets}: {result}"
        return str(result["run"]["runId"])

    def wait_run(self, run_id: str, timeout: float = 240.0) -> None:
        query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = self.graphql(query, {"id": run_id})["runOrError"]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(0.5)
        assert status == "SUCCESS", f"run {run_id} ended {status}: {self.failure_messages(run_id)}"

    def failure_messages(self, run_id: str) -> list[str]:
        query = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
            __typename ... on MessageEvent { message level }
            ... on ExecutionStepFailureEvent { stepKey error { message } } } } } }"""
        events = self.graphql(query, {"id": run_id})["logsForRun"].get("events", [])
        return [
            f"{e.get('stepKey', '')}: {(e.get('error') or {}).get('message') or e.get('message')}"
            for e in events
            if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent")
            or e.get("level") == "ERROR"
        ]

    def partition_keys(self, asset: str) -> list[str]:
        query = """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) {
            ... on AssetNode { partitionKeys } } }"""
        return list(self.graphql(query, {"key": {"path": [asset]}})["assetNodeOrError"]["partitionKeys"])

    def add_dynamic_partition(self, definition: str, key: str) -> None:
        mutation = """mutation($repo: RepositorySelector!, $name: String!, $key: String!) {
            addDynamicPartition(repositorySelector: $repo, partitionsDefName: $name, partitionKey: $key) {
            __typename ... on Error { message } } }"""
        repo = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"}
        result = self.graphql(mutation, {"repo": repo, "name": definition, "key": key})["addDynamicPartition"]
        assert result["__typename"] in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"), (
            result
        )

    def materialized_assets(self) -> set[str]:
        query = """{ assetsOrError { ... on AssetConnection { nodes { key { path }
            assetMaterializations(limit: 1) { runId } } } } }"""
        nodes = self.graphql(query)["assetsOrError"]["nodes"]
        return {"/".join(n["key"]["path"]) for n in nodes if n["assetMaterializations"]}


@contextmanager
def dagster_dev(env: dict[str, str], cwd: Path, marker: str) -> Iterator[Dagster]:
    """``dagster dev -w workspace.yaml`` on a free port of 127.0.0.1, stopped (with everything it
    started) on exit; fails if a process it started survives."""
    port = free_port()
    log = cwd / "dagster_dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                DEFAULT_SIGINT,
                str(BIN / "dagster"),
                "dev",
                "-w",
                str(REPO / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Dagster(process, f"http://127.0.0.1:{port}", log)
    failed = True
    try:
        yield server
        failed = False
    finally:
        left = stop_process_tree(process, marker)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, ARTIFACTS / "ui_dagster_dev.log")
        if not failed:
            assert not left, f"processes started by dagster dev still alive: {left}"


# --------------------------------------------------------------------------- browser


def _asset_labels_match(keys: set[str], labels: list[str]) -> set[str]:
    """Keys with no graph label: a label is the full name or a middle-truncated ``prefix…suffix``."""
    missing = set()
    for key in keys:
        found = False
        for label in labels:
            if label == key:
                found = True
            elif "…" in label:
                head, _, tail = label.partition("…")
                found = key.startswith(head) and key.endswith(tail) and len(head) + len(tail) < len(key)
            if found:
                break
        if not found:
            missing.add(key)
    return missing


def dismiss_dialogs(page: Any) -> None:
    """Close the first-visit "Join the Dagster community" dialog if it is shown."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=3000)
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: no dialog this time
        return
    skip.click()
    skip.wait_for(state="hidden", timeout=5000)


def open_expanded_graph(page: Any, url: str) -> list[str]:
    """The global asset lineage with every group expanded; returns the asset node labels."""
    page.goto(f"{url}/asset-groups")
    page.get_by_text("Global asset lineage").first.wait_for(timeout=60000)
    dismiss_dialogs(page)
    page.locator("svg foreignObject").first.wait_for(timeout=60000)  # the graph is laid out
    page.wait_for_timeout(500)
    node = page.locator("[class*='AssetNode_assetName']", has_text=re.compile(r"^stats_report$"))
    if node.count() == 0:
        # groups are collapsed (the default): "Expand all groups" (Alt+E, also in the context menu)
        page.keyboard.press("Alt+e")
    node.first.wait_for(timeout=30000)
    page.wait_for_timeout(500)
    return [label.strip() for label in page.locator("[class*='AssetNode_assetName']").all_inner_texts()]


# --------------------------------------------------------------------------- the test


def test_dagster_ui_in_headless_chromium(tmp_path: Path, tiny_clip_dir: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian `chromium` (.ci/run does) to run the browser test"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    from facestats_dagster.definitions import defs

    expected_keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    marker = f"facestats-ui-test-{uuid.uuid4().hex}"
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    (tmp_path / "composites.yaml").write_text("specs:\n  - all\n  - gender=female\n")
    env = {
        **os.environ,
        "FACESTATS_DATA_ROOT": str(data),
        "FACESTATS_MODEL_ROOT": str(tmp_path / "models"),
        "FACESTATS_CLIP_MODEL": str(tiny_clip_dir),
        "FACESTATS_SHARDS": "2",
        "FACESTATS_MIN_FACES": "2",
        "FACESTATS_FACE_MODE": "whole",
        "FACESTATS_COMPOSITES_CONFIG": str(tmp_path / "composites.yaml"),
        "DAGSTER_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "FACESTATS_UI_TEST_MARKER": marker,  # finds every process dagster dev starts
    }
    subprocess.run(
        [str(BIN / "facestats"), "demo-data", "--data-root", str(data), "--n-images", "24", "--size", "128"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    profile = tmp_path / "chromium-profile"

    with dagster_dev(env, tmp_path, marker) as dagster:
        dagster.wait_ready()
        served = {
            "/".join(n["assetKey"]["path"])
            for n in dagster.graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]
        }
        assert served == expected_keys

        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(profile),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1600, "height": 2400},  # the catalog renders only the rows in view
            )
            try:
                page = browser.new_page()
                page.set_default_timeout(60000)

                # 1. every asset of the Definitions is drawn in the asset graph and listed in the catalog
                labels = open_expanded_graph(page, dagster.url)
                assert not _asset_labels_match(expected_keys, labels), (
                    f"assets missing from the graph: {_asset_labels_match(expected_keys, labels)} (labels: {labels})"
                )
                page.goto(f"{dagster.url}/assets")
                page.get_by_text("stats_report", exact=True).first.wait_for()
                catalog = page.inner_text("body")
                assert not {k for k in expected_keys if k not in catalog}, "assets missing from the catalog"

                # 2. materialize the demo through GraphQL (what the UI's Materialize button sends)
                def partition_range(asset: str) -> dict[str, str]:
                    keys = dagster.partition_keys(asset)
                    assert keys, f"{asset} has no partitions"
                    return {
                        "dagster/asset_partition_range_start": keys[0],
                        "dagster/asset_partition_range_end": keys[-1],
                    }

                assert dagster.partition_keys("raw_images") == ["00", "01"]
                dagster.wait_run(
                    dagster.launch(IMAGE_ASSETS, partition_range("raw_images"))
                )  # one run, 2 shards
                dagster.wait_run(dagster.launch(ANALYSIS_ASSETS))
                for spec in ("all", "gender=female"):  # the YAML sensor adds them too; idempotent
                    dagster.add_dynamic_partition("composite_specs", spec)
                dagster.wait_run(dagster.launch(["composite"], partition_range("composite")))
                dagster.wait_run(dagster.launch(["contact_sheet", "face_statistics", "stats_report"]))
                assert dagster.materialized_assets() >= expected_keys

                # 3. screenshots: the graph with materialized assets, the report asset with an inline plot
                open_expanded_graph(page, dagster.url)
                page.screenshot(path=str(ARTIFACTS / "ui_asset_graph.png"))
                page.goto(f"{dagster.url}/assets/stats_report")
                page.get_by_text("Latest materialization").first.wait_for()
                page.locator("tr", has_text="plot_attractiveness_histogram").get_by_text(
                    "[Show Markdown]"
                ).click()
                plot = page.locator("img[src^='data:image/png']").first
                plot.wait_for()
                assert plot.evaluate("img => img.complete && img.naturalWidth > 0")
                page.wait_for_timeout(400)  # dialog fade-in
                page.screenshot(path=str(ARTIFACTS / "ui_stats_report.png"))

                # 4. the generated report renders: title, every chart and thumbnail decoded, no JS errors
                report = data / "processed" / "report" / "index.html"
                assert report.exists()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
                page.goto(report.as_uri())
                assert page.title() == "FaceStats report"
                images = page.locator("img")
                assert images.count() >= 12  # 10 charts + 2 composite thumbnails
                assert images.evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
                assert page.locator(".gallery figure").count() == 2
                assert page.locator("p.missing").count() == 0  # every section has data
                page.screenshot(path=str(ARTIFACTS / "ui_report.png"), full_page=True)
                assert not errors, errors
            except BaseException:
                for index, open_page in enumerate(browser.pages):
                    open_page.screenshot(path=str(ARTIFACTS / f"ui_failure_{index}.png"))
                raise
            finally:
                browser.close()
        assert not live_processes(marker=str(profile)), "Chromium processes survived"
        log = dagster.log.read_text(errors="replace")
        ours = [line for line in log.splitlines() if re.search(r"facestats\w*/\S*\.py:\d+: \w*Warning", line)]
        assert not ours, f"dagster dev warned about our code: {ours}"


def test_facestats_ui_serves_a_projects_runs(tmp_path: Path, tiny_clip_dir: Path) -> None:
    """`facestats ui PROJECT` (no FACESTATS_* variable): the Dagster UI on the project's Dagster home,
    its runs listed by the UI's own GraphQL API, the definitions built from the project's settings."""
    from tests.conftest import write_photos

    photos = tmp_path / "photos"
    write_photos(photos, 3)
    project = tmp_path / "project"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACESTATS_") and k != "DAGSTER_HOME"}
    env["HF_HUB_OFFLINE"] = "1"
    made = subprocess.run(
        [str(BIN / "facestats"), "run", str(photos), "--project", str(project), "--clip-model", str(tiny_clip_dir),
         "--face-mode", "whole", "--shards", "1", "--min-faces", "2"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    import dagster as dg

    with dg.DagsterInstance.from_config(str(project / ".dagster_home")) as instance:
        run_ids = {run.run_id for run in instance.get_runs()}
    assert len(run_ids) == 2

    marker = f"facestats-ui-test-{uuid.uuid4().hex}"
    port = free_port()
    log = tmp_path / "facestats_ui.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", DEFAULT_SIGINT, str(BIN / "facestats"), "ui", str(project), "--port", str(port)],
            env={**env, "FACESTATS_UI_TEST_MARKER": marker}, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Dagster(process, f"http://127.0.0.1:{port}", log)
    try:
        server.wait_ready()
        runs = server.graphql("{ runsOrError { ... on Runs { results { runId status } } } }")["runsOrError"]["results"]
        assert {run["runId"] for run in runs} == run_ids and {run["status"] for run in runs} == {"SUCCESS"}
        partitions = server.graphql('{ assetNodeOrError(assetKey: {path: ["raw_images"]}) { ... on AssetNode '
                                    '{ partitionKeys } } }')["assetNodeOrError"]["partitionKeys"]
        assert partitions == ["00"]  # run.shards = 1, from the project's facestats.toml
    finally:
        left = stop_process_tree(process, marker)
    assert not left, f"processes started by facestats ui still alive: {left}"
