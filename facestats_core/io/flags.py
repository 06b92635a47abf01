"""Yes/no words of settings and environment variables (``1``/``0``, ``true``/``false``, ``yes``/``no``, ``on``/``off``)."""

from __future__ import annotations

TRUE_WORDS: tuple[str, ...] = ("1", "true", "yes", "on")
FALSE_WORDS: tuple[str, ...] = ("0", "false", "no", "off")


def parse_flag(text: str) -> bool | None:
    """True or False for a yes/no word (case and surrounding spaces ignored); None for anything else."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None
