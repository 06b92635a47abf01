"""The terminal display of `facestats run` / `update` / `demo`: one line per asset step (a `rich` progress
line on a terminal, a plain line per finished step otherwise), Dagster's event log written to a file
(`-v` also streams it), warnings counted and shown once at the end, then a short summary."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from facestats_core.analysis.run_summary import summarize, summary_lines
from facestats_core.composites.sidecars import read_sidecars
from facestats_core.models.caveats import numbers_caveats
from facestats_dagster import run_events
from facestats_dagster.settings import LOG_FILE, Settings


def _event(record: logging.LogRecord) -> Any:
    meta = getattr(record, "dagster_meta", None)
    return meta.get("dagster_event") if isinstance(meta, dict) else None


def _warning_kind(message: str) -> str:
    """A warning without its run-specific parts (ids, numbers, paths), so equal kinds count together."""
    text = message.split(" - ")[-1]
    text = re.sub(r"'[^']*'", "'…'", re.sub(r"/\S+", "PATH", text))
    return re.sub(r"\d+(\.\d+)?", "N", text)[:120]


MAX_REASON = 800
"""Characters of a failure's reason the terminal shows (the log file has the whole traceback)."""


def failure_reason(event: Any) -> str:
    """One line saying why a step failed: a ``dagster.Failure``'s description, else the innermost
    cause of the error (the exception the asset raised, not Dagster's "Error occurred while
    executing op" wrapper), its class named without its module path, whitespace collapsed."""
    data = getattr(event, "event_specific_data", None)
    description = getattr(getattr(data, "user_failure_data", None), "description", None)
    if description:
        return _one_line(str(description))
    error = getattr(data, "error", None)
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[union-attr]
    text = (getattr(error, "message", "") or str(getattr(event, "message", "") or "")).strip()
    head, sep, rest = text.partition(": ")
    if sep and "." in head and " " not in head:
        text = f"{head.rsplit('.', 1)[-1]}: {rest}"
    return _one_line(text) or "failed"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 1] + "…"


class RunDisplay:
    """Receives the runs' log records and progress (`run_events` sink) while it is entered."""

    def __init__(self, log_path: Path, verbose: bool = False, out: TextIO | None = None,
                 tty: bool | None = None) -> None:
        self.log_path = log_path
        self.verbose = verbose
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.log: TextIO | None = None
        self.progress: Any = None
        self.tasks: dict[str, Any] = {}
        self.started: dict[str, float] = {}
        self.done: list[str] = []
        self.failures: list[str] = []
        self.warnings: Counter[str] = Counter()
        self.notes: list[str] = []

    @classmethod
    def for_settings(cls, settings: Settings, verbose: bool = False) -> RunDisplay:
        """A display logging to the project's `facestats.log` (without a project: in the Dagster home)."""
        log = settings.log_file() or settings.dagster_home() / LOG_FILE
        return cls(log, verbose)

    # -------------------------------------------------------------- lifecycle

    def __enter__(self) -> RunDisplay:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("a", encoding="utf-8")
        self.log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n")
        self._print(f"  log {self.log_path}{'' if self.verbose else ' (-v streams it)'}")
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # its weight-loading bars would break the display
        if self.tty and not self.verbose:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.progress = Progress(TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TimeRemainingColumn(), console=Console(file=self.out))
            self.progress.start()
        run_events.add_sink(self.sink)
        return self

    def __exit__(self, *exc: Any) -> None:
        run_events.remove_sink(self.sink)
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def _print(self, line: str) -> None:
        if self.progress is not None:
            self.progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.out, flush=True)

    # -------------------------------------------------------------- what the runs send

    def sink(self, kind: str, payload: Any) -> None:
        if kind == "progress":
            self._progress(*payload)
            return
        record: logging.LogRecord = payload
        line = f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {record.levelname:<7} {record.getMessage()}"
        if self.log is not None:
            self.log.write(line + "\n")
            self.log.flush()
        if self.verbose:
            print(line, file=sys.stderr, flush=True)
        event = _event(record)
        if event is not None:
            self._event(event)
        elif record.levelno >= logging.WARNING and not any(
                said in record.getMessage() for said in ("not built", "NOTICE:")):
            self.warnings[_warning_kind(record.getMessage())] += 1  # those two are in the summary

    def _event(self, event: Any) -> None:
        kind, step = event.event_type_value, event.step_key
        if kind == "STEP_START" and step:
            self.started[step] = time.perf_counter()
            if self.progress is not None:
                self.tasks[step] = self.progress.add_task(f"  {step}", total=None)
        elif kind == "STEP_SUCCESS" and step:
            seconds = time.perf_counter() - self.started.get(step, time.perf_counter())
            self.done.append(step)
            if self.progress is not None and step in self.tasks:
                task = self.tasks[step]
                total = self.progress.tasks[task].total or 1
                self.progress.update(task, description=f"✓ {step} ({seconds:.1f} s)", total=total, completed=total)
            elif self.progress is None and not self.verbose:
                print(f"  done {step:<28} {seconds:7.1f} s", file=self.out, flush=True)
        elif kind == "STEP_FAILURE" and step:
            self.failures.append(f"{step}: {failure_reason(event)}")
            if self.progress is not None and step in self.tasks:
                self.progress.update(self.tasks[step], description=f"✗ {step}")

    def _progress(self, step: str | None, label: str, done: int, total: int) -> None:
        if self.progress is None or step not in self.tasks:
            return
        self.progress.update(self.tasks[step], description=f"  {step}: {label}"[:44], total=max(total, 1),
                             completed=done)

    # -------------------------------------------------------------- what the CLI says

    def run_started(self, described: str) -> None:
        if self.log is not None:
            self.log.write(f"---- run {described}\n")

    def run_failed(self, run_id: str) -> None:
        if self.log is not None:
            self.log.write(f"---- run {run_id} failed\n")

    def note(self, line: str) -> None:
        self._print(f"  {line}")

    def failed(self, who: str) -> None:
        """One line: what failed, and what to do."""
        what = self.failures[0] if self.failures else "a run failed"
        self._print(f"{who}: FAILED {what}")
        self._print(f"  fix the cause above (details: {self.log_path}) and run the same command again: "
                    "finished work is reused.")

    def summary(self, settings: Settings) -> None:
        """The short summary of a finished run: counts, warnings by kind, caveats, the report's path."""

        layout = settings.paths.layout()
        master = layout.read_artifact("master_metadata")
        self._print("")
        if master is None:
            self._print("no master table was written; see the log.")
            return
        summary = summarize(master, read_sidecars(layout.composites_dir))
        for line in summary_lines(summary):
            self._print(line)
        for kind, n in self.warnings.most_common(2):
            self._print(f"warning ({n}×)    {kind}")
        for caveat in caveats_of(settings, summary.methods):
            self._print(f"NOTICE            {caveat}")
        report = layout.report_dir / "index.html"
        self._print(f"report            {report if report.exists() else 'not written'}")


def caveats_of(settings: Settings, methods: dict[str, dict[str, int]]) -> list[str]:
    """What the numbers rest on, when it is weak (`facestats_core.models.caveats`)."""

    return numbers_caveats(settings["clip.model"], methods)
