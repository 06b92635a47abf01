"""Yes/no words of settings."""

from __future__ import annotations

import pytest

from facestats_core.io.flags import parse_flag


@pytest.mark.parametrize(("text", "expected"), [
    ("1", True), (" Yes ", True), ("ON", True), ("true", True),
    ("0", False), ("no", False), ("Off", False), ("FALSE", False),
    ("auto", None), ("", None), ("2", None),
])
def test_yes_no_words(text: str, expected: bool | None) -> None:
    assert parse_flag(text) is expected
