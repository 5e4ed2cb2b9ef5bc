"""A report's period from the command line: ``--since 30d``, or ``--from``/``--to``; and its ``--as-of``.

Moments are UTC: a date (``2026-11-01``) or a date and time (``2026-11-01T09:30``, an offset allowed). A date
given to ``--to`` or ``--as-of`` means the end of that day, so ``--from 2026-11-01 --to 2026-11-30`` covers all
of November. Each parser raises ValueError with a message that says what was expected, for the command line to
show beside the option's name.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Final

from reconciler.report.model import Period

DEFAULT_SINCE: Final = "30d"
UNITS: Final = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION: Final = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
DURATION_FORMAT: Final = "a number and a unit: m (minutes), h, d or w, e.g. 30d, 12h, 2w"
MOMENT_FORMAT: Final = "a date (2026-11-01) or a date and time (2026-11-01T09:30, UTC unless an offset is given)"


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"expected {DURATION_FORMAT}, not {text!r}")
    return timedelta(seconds=int(match.group(1)) * UNITS[match.group(2)])


def parse_moment(text: str, *, end_of_day: bool = False) -> datetime:
    """A UTC datetime; a bare date is its midnight, or the next midnight with ``end_of_day``."""
    text = text.strip()
    try:
        if len(text) == len("2026-11-01"):
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected {MOMENT_FORMAT}, not {text!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def period_of(
    since: timedelta | None, start: datetime | None, end: datetime | None, as_of: datetime | None, now: datetime
) -> Period:
    """The period asked for: ``since`` back from now, or ``start`` to ``end`` (now when not given).

    Raises ValueError naming the options when they cannot make a period.
    """
    if since is not None and start is not None:
        raise ValueError("--since and --from both set the start of the period: give one of them")
    if since is not None and end is not None:
        raise ValueError("--since counts back from now: give --from with --to instead")
    end = end or now
    start = start or end - (since or parse_duration(DEFAULT_SINCE))
    if start >= end:
        raise ValueError(f"--from ({start:%Y-%m-%d %H:%M} UTC) must be before --to ({end:%Y-%m-%d %H:%M} UTC)")
    return Period(start, end, as_of or min(end, now))
