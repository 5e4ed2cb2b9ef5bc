"""One table of the configuration file, read key by key: each problem is noted, not raised."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from reconciler.config.keys import as_file_value, duration_text, table_keys
from reconciler.config.model import SECTIONS, TABLE_MODELS
from reconciler.config.wording import did_you_mean, show
from reconciler.net.limits import MIB
from reconciler.net.transport import ca_bundle_problem, is_loopback_host

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float | None:
    """Seconds from ``90``, ``"90s"``, ``"30m"``, ``"6h"`` or ``"1d"``; None if unreadable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match[1]) * _UNIT_SECONDS[match[2]] if match else None


class Table:
    """One table of the file, read key by key; each problem is noted, not raised.

    Each reader returns the value, its default when the key is absent, or
    None when the value is unusable (the problem is noted). The keys a table
    accepts, their bounds and their defaults are those its model declares
    (:data:`~reconciler.config.model.TABLE_MODELS`, :mod:`reconciler.config.keys`).
    """

    def __init__(
        self,
        section: str,
        values: Mapping[str, Any] | None,
        problems: list[str],
        inherited: frozenset[str] | None = None,
        *,
        prefix: str = "",
    ) -> None:
        self.name = prefix + section
        """How a message names it: ``scim``, ``tenants[acme].scim``."""
        self.keys = table_keys(TABLE_MODELS[section])
        self.present = values is not None
        self.values: Mapping[str, Any] = values or {}
        self.problems = problems
        self.inherited = inherited or frozenset()
        """Keys whose value came from the top-level defaults of a multi-tenant file: a message says so."""
        self._problems_before = len(problems)

    @property
    def clean(self) -> bool:
        """No problem noted for this table so far."""
        return len(self.problems) == self._problems_before

    def note(self, key: str, text: str) -> None:
        origin = f" (from the top-level [{self.name.rpartition('.')[2]}])" if key in self.inherited else ""
        self.problems.append(f"{self.name}.{key}{origin}: {text}")

    def has(self, key: str) -> bool:
        return key in self.values

    def check_keys(self) -> None:
        """A problem for each key the model does not declare."""
        allowed = tuple(self.keys)
        for key in self.values:
            if key in SECTIONS:
                self.note(key, f"unknown key — is the [{key}] header missing?")
            elif key not in allowed:
                self.note(key, f"unknown key{did_you_mean(key, allowed)}")

    def value(self, key: str) -> Any:
        """The key's value as the file gives it, or its declared default."""
        if key in self.values:
            return self.values[key]
        return as_file_value(self.keys[key].default)

    def flag(self, key: str) -> bool | None:
        """``true`` or ``false``."""
        value = self.value(key)
        if not isinstance(value, bool):
            self.note(key, f"expected true or false, got {show(value)}")
            return None
        return value

    def string(self, key: str, missing: str | None = None) -> str | None:
        """A non-empty string; ``missing`` (a hint) makes the key required."""
        value = self.values.get(key)
        if value is None or value == "":
            if missing is not None:
                self.note(key, f"missing — {missing}")
            return None
        if not isinstance(value, str):
            self.note(key, f"expected a string, got {show(value)}")
            return None
        return value

    def http_url(self, key: str, missing: str, example: str) -> str | None:
        value = self.string(key, missing)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.note(key, f'expected an http(s) URL, e.g. "{example}", got {show(value)}')
            return None
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            self.note(
                key,
                f"plain http:// to {parts.hostname} would send the credentials unencrypted — use https:// "
                "(http:// is accepted only for a loopback host such as 127.0.0.1)",
            )
            return None
        return value.rstrip("/")

    def ca_bundle(self, base_dir: Path) -> Path | None:
        """``ca_bundle``: a readable PEM file, relative to the configuration's directory; None when not set."""
        name = self.string("ca_bundle")
        if name is None:
            return None
        path = base_dir / Path(name).expanduser()
        problem = ca_bundle_problem(path)
        if problem is not None:
            self.note("ca_bundle", f"{problem} — set it to the PEM file of the CA that signed the server's certificate")
            return None
        return path

    def response_cap(self) -> int | None:
        """``max_response_mb`` in bytes."""
        megabytes = self.integer("max_response_mb")
        return None if megabytes is None else megabytes * MIB

    def integer(self, key: str) -> int | None:
        """An integer within the declared bounds."""
        low, high = self.keys[key].low, self.keys[key].high
        assert low is not None and high is not None, f"{key} is declared without bounds"
        value = self.value(key)
        if not isinstance(value, int) or isinstance(value, bool):
            self.note(key, f"expected an integer, got {show(value)}")
            return None
        if not low <= value <= high:
            self.note(key, f"expected an integer from {low} to {high}, got {value}")
            return None
        return value

    def seconds(self, key: str) -> float | None:
        value = self.value(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.note(key, f"expected a number of seconds, got {show(value)}")
            return None
        if not value > 0:
            self.note(key, f"expected a number of seconds greater than 0, got {value}")
            return None
        return float(value)

    def ratio(self, key: str) -> float | None:
        """A share from 0 to 1, e.g. 0.05 for 5 %."""
        value = self.value(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
            self.note(key, f"expected a share from 0 to 1 (0.05 is 5 %), got {show(value)}")
            return None
        return float(value)

    def duration(self, key: str) -> float | None:
        """Seconds, from a number or a string like "90s", "30m", "6h", "1d"; 0 only where declared to mean none."""
        declared = self.keys[key]
        value = self.value(key)
        seconds = parse_duration(value)
        if seconds is None or seconds < 0:
            self.note(key, f'expected a duration such as "30m", "6h" or "1d", got {show(value)}')
            return None
        if seconds == 0 and declared.zero is None:
            default = (
                f' — or remove it for the default, "{duration_text(declared.default)}"' if declared.default else ""
            )
            self.note(key, f'0 is not a usable duration here: set one greater than 0, such as "30m"{default}')
            return None
        if seconds != 0 and not _within(seconds, declared.low, declared.high):
            self.note(key, f"expected {duration_bounds(declared.low, declared.high)}, got {show(value)}")
            return None
        return seconds

    def choice(self, key: str) -> str | None:
        """One of the declared choices."""
        options = self.keys[key].choices
        value = self.value(key)
        if value not in options:
            expected = " or ".join(f'"{option}"' for option in options)
            self.note(key, f"expected {expected}, got {show(value)}")
            return None
        return cast(str, value)

    def strings(self, key: str) -> tuple[str, ...] | None:
        """A non-empty list of non-empty strings; the declared default is the example a message gives."""
        example = as_file_value(self.keys[key].default)
        value = self.value(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.note(key, f"expected a non-empty list of strings, e.g. {show(example)}, got {show(value)}")
            return None
        return tuple(value)


def _within(seconds: float, low: int | None, high: int | None) -> bool:
    return (low is None or seconds >= low) and (high is None or seconds <= high)


def duration_bounds(low: int | None, high: int | None) -> str:
    """``a duration from "1s" to "10m"`` (or ``of at least``/``of at most`` one bound)."""
    if low is not None and high is not None:
        return f'a duration from "{duration_text(low)}" to "{duration_text(high)}"'
    if low is not None:
        return f'a duration of at least "{duration_text(low)}"'
    return f'a duration of at most "{duration_text(high or 0)}"'


def os_reason(error: OSError) -> str:
    return error.strerror or type(error).__name__
