"""The metric names a PromQL expression reads, by a small tokenizer (enough for the project's rules and board)."""

from __future__ import annotations

import re

KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTORS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAMES = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The names of the series ``expr`` selects: not its functions, keywords, labels, strings or durations."""
    text = _RANGES.sub(" ", _SELECTORS.sub(" ", _STRINGS.sub('""', expr)))
    text = _LABEL_LISTS.sub(" ", text)
    return {name for name in _NAMES.findall(text) if name not in KEYWORDS}
