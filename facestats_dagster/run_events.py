"""Where a run's log records and progress go: the definitions' `console` logger and one progress hook.

By default the logger is Dagster's coloured console logger (the UI, `dagster asset materialize`).
A process that runs the pipeline itself (`facestats run`) registers a sink with `add_sink`: every log
record of the runs in this process (Dagster's events included) and every progress report of a long
loop (`report_progress`) then go to the sink instead of the terminal; the sink writes the log file
and draws the progress display. Runs execute in process (`defs/resources.py`), so the sink sees
every step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dagster as dg

Sink = Callable[[str, Any], None]
"""`sink(kind, payload)`: kind `"record"` (a `logging.LogRecord`) or `"progress"` (`(step, label, done, total)`)."""

_SINKS: list[Sink] = []


def add_sink(sink: Sink) -> None:
    _SINKS.append(sink)


def remove_sink(sink: Sink) -> None:
    if sink in _SINKS:
        _SINKS.remove(sink)


def report_progress(step: str | None, label: str, done: int, total: int) -> None:
    """A long loop's progress (`done` of `total`) to every sink; nothing when there is none."""
    for sink in list(_SINKS):
        sink("progress", (step, label, done, total))


class _SinkHandler(logging.Handler):
    """Records to the sinks when there are any, else to Dagster's console logger at its level."""

    def __init__(self, console: logging.Logger) -> None:
        super().__init__(logging.DEBUG)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        if _SINKS:
            for sink in list(_SINKS):
                sink("record", record)
        elif record.levelno >= self.console.level:
            self.console.handle(record)


@dg.logger(
    config_schema={
        "log_level": dg.Field(str, default_value="DEBUG", is_required=False),
        "name": dg.Field(str, default_value="dagster", is_required=False),
    },
    description="Dagster's coloured console logger, or the `facestats run` sink (log file and progress display).",
)
def facestats_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    console = dg.colored_console_logger.logger_fn(init_context)  # type: ignore[misc]
    logger = logging.Logger(init_context.logger_config["name"], logging.DEBUG)
    logger.addHandler(_SinkHandler(console))
    return logger
