"""The page: a Jinja2 template (``templates/report.html.j2``, autoescaped) and its number formats.

Python passes numbers, text and ``data:`` URIs; every bit of HTML and CSS is in the template.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

TEMPLATE_PACKAGE = "facestats_core.report"
TEMPLATE_FOLDER = "templates"
TEMPLATE = "report.html.j2"
"""The page template, ``facestats_core/report/templates/report.html.j2`` (package data)."""
MISSING = "–"
"""How a missing or non-finite number is shown."""


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None (None, NaN, inf, bools and text are not numbers)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def fmt_num(value: Any, digits: int = 3) -> str:
    """A number for a table cell: ints as they are, floats with ``digits`` decimals, missing as a dash;
    anything else as its text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    number = _number(value)
    if number is None:
        return MISSING if value is None or isinstance(value, float) else str(value)
    return f"{number:.{digits}f}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    """A share of 1 as a percentage (``0.4123`` → ``41.2%``), missing as a dash."""
    number = _number(value)
    return MISSING if number is None else f"{100 * number:.{digits}f}%"


def fmt_value(value: Any, percent: bool, digits: int = 3) -> str:
    """A share as a percentage, anything else as a number with ``digits`` decimals."""
    return fmt_pct(value) if percent else fmt_num(value, digits)


def fmt_signed(value: Any, digits: int = 3) -> str:
    """A difference with its sign (``+0.028``, ``-0.145``), missing as a dash."""
    number = _number(value)
    return MISSING if number is None else f"{number:+.{digits}f}"


def fmt_interval(low: Any, high: Any, percent: bool = False, digits: int = 3) -> str:
    """An interval ``low–high`` (``41.2–53.0%`` for shares), a dash when either end is missing."""
    lo, hi = _number(low), _number(high)
    if lo is None or hi is None:
        return MISSING
    if percent:
        return f"{100 * lo:.1f}–{100 * hi:.1f}%"
    return f"{lo:.{digits}f}–{hi:.{digits}f}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment: the package's templates, autoescaping on, undefined names an error."""
    env = Environment(
        loader=PackageLoader(TEMPLATE_PACKAGE, TEMPLATE_FOLDER),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(num=fmt_num, pct=fmt_pct, signed=fmt_signed)
    env.globals.update(interval=fmt_interval, fmt_value=fmt_value)
    return env


def render_page(**context: Any) -> str:
    """The report page rendered from :data:`TEMPLATE` with ``context``."""
    return environment().get_template(TEMPLATE).render(**context)
