"""The run display: plain lines when the output is not a terminal, the log file, failures in one line."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import dagster as dg

from facestats_dagster import run_events
from facestats_dagster.cli.display import RunDisplay


def _record(message: str, level: int = logging.DEBUG, event: object = None) -> logging.LogRecord:
    record = logging.LogRecord("dagster", level, __file__, 1, message, None, None)
    record.dagster_meta = {"dagster_event": event}
    return record


def _event(kind: str, step: str, error: str = "") -> SimpleNamespace:
    data = SimpleNamespace(error=SimpleNamespace(message=error)) if error else None
    return SimpleNamespace(event_type_value=kind, step_key=step, event_specific_data=data, message="")


def test_plain_output_has_one_line_per_step_and_the_log_gets_everything(tmp_path) -> None:
    out = io.StringIO()
    display = RunDisplay(tmp_path / "facestats.log", out=out, tty=False)
    with display:
        for step in ("raw_images", "face_detections"):
            display.sink("record", _record(f"start {step}", event=_event("STEP_START", step)))
            run_events.report_progress(step, "detect shard 00", 1, 2)
            display.sink("record", _record("LOADED_INPUT lots of detail"))
            display.sink("record", _record(f"done {step}", event=_event("STEP_SUCCESS", step)))
        display.sink("record", _record("could not read /x/y.jpg", logging.WARNING))
        display.sink("record", _record("STEP_FAILURE", logging.ERROR,
                                       _event("STEP_FAILURE", "face_chips", "OSError: disk full")))
    display.failed("facestats run")
    lines = out.getvalue().splitlines()
    assert [line.split()[:2] for line in lines[1:3]] == [["done", "raw_images"], ["done", "face_detections"]]
    assert "DEBUG" not in out.getvalue() and "LOADED_INPUT" not in out.getvalue()
    assert lines[-2] == "facestats run: FAILED face_chips: OSError: disk full"
    assert "run the same command again" in lines[-1] and len(lines) == 5
    log = (tmp_path / "facestats.log").read_text()
    assert "LOADED_INPUT lots of detail" in log and "DEBUG" in log
    assert display.warnings == {"could not read PATH": 1}
    assert not run_events._SINKS  # the display let go of the runs' records


class _ModelMissing(OSError):
    """Stands in for an error an asset raises (e.g. ClipLoadError)."""


@dg.asset
def _needs_a_model() -> None:
    raise _ModelMissing("Could not load CLIP model 'x'\n(no network); to run offline set FACESTATS_CLIP_MODEL")


@dg.asset
def _refuses() -> None:
    raise dg.Failure(description="Zero-shot attributes need the CLIP text tower: not found")


def _failure_line(asset: dg.AssetsDefinition, tmp_path) -> str:  # type: ignore[no-untyped-def]
    result = dg.materialize([asset], raise_on_error=False)
    event = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    out = io.StringIO()
    display = RunDisplay(tmp_path / "facestats.log", out=out, tty=False)
    with display:
        display.sink("record", _record("STEP_FAILURE", logging.ERROR, event))
    display.failed("facestats run")
    return next(line for line in out.getvalue().splitlines() if "FAILED" in line)


def test_a_failure_shows_the_error_the_asset_raised_not_dagsters_wrapper(tmp_path) -> None:
    line = _failure_line(_needs_a_model, tmp_path)
    assert line == ("facestats run: FAILED _needs_a_model: _ModelMissing: Could not load CLIP model 'x' (no network); "
                    "to run offline set FACESTATS_CLIP_MODEL")
    assert "DagsterExecutionStepExecutionError" not in line


def test_a_dagster_failure_shows_its_description(tmp_path) -> None:
    assert _failure_line(_refuses, tmp_path) == ("facestats run: FAILED _refuses: Zero-shot attributes need the CLIP text "
                                       "tower: not found")
