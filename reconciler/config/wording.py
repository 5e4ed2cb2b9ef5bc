"""How a configuration problem is worded: a value as the file spells it, and the known name meant."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any


def show(value: Any) -> str:
    """A value as TOML would spell it, cut short: for "got ..." in a message."""
    if isinstance(value, Mapping):
        return "a table"
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(key: str, allowed: tuple[str, ...]) -> str:
    """The end of an "unknown key" problem: the nearest allowed name, else all of them."""
    matches = difflib.get_close_matches(key.lower(), allowed, n=1)
    if matches:
        return f" — did you mean {matches[0]}?"
    return f" — expected one of {', '.join(allowed)}"
