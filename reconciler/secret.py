"""A wrapper that keeps a credential out of reprs, logs, reports and tracebacks."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final


class Secret:
    """Holds a credential; only :meth:`reveal` gives the value back.

    ``str()``, ``repr()`` and f-strings all print a mask, so a Secret that ends
    up in a log line, an exception or a report by accident leaks nothing.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> None:  # type: ignore[override]
        raise TypeError("a Secret cannot be pickled")


MIN_SECRET_CHARS: Final = 8
"""A secret shorter than this is no real credential, and masking it would mask pieces of ordinary words
(a one-letter token would turn every "e" of a log line into ``********``): the configuration refuses it,
and :func:`redact` never masks with one."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and credential-looking header value masked.

    Values shorter than :data:`MIN_SECRET_CHARS` are not searched for: the configuration refuses such
    secrets, so none reaches here but the empty ones of a configuration read without its secrets.
    """
    for value in secrets:
        if len(value) >= MIN_SECRET_CHARS:
            text = text.replace(value, "********")
    return _CREDENTIAL_PATTERNS.sub(lambda m: f"{m.group(1) or m.group(2)} ********".replace("= ", "="), text)


_CREDENTIAL_PATTERNS = re.compile(
    r"(?i)\b(SSWS|Bearer|DPoP)\s+[A-Za-z0-9._~+/=-]{8,}|(client_assertion=)[A-Za-z0-9._-]+"
)
