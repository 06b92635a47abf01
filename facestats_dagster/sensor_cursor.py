"""Sensor cursors: a json object, read back tolerantly."""

from __future__ import annotations

import json
from typing import Any


def load_cursor(cursor: str | None) -> dict[str, Any]:
    """The json object a sensor stored as its cursor; `{}` when there is none or it is not one."""
    try:
        data = json.loads(cursor) if cursor else {}
    except json.JSONDecodeError:
        data = {}
    return data if isinstance(data, dict) else {}
