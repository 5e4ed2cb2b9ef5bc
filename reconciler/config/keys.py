"""The keys of the configuration file, declared on the model fields they fill.

One declaration says both what the loader accepts and what the operator's
reference shows (``docs/configuration.md``, written by
:mod:`reconciler.config.reference`): a model field names in its metadata the
key or keys of its table that fill it (:func:`setting`), each with its type,
bounds, default and meaning. Usually one key; a set of alternatives for a
secret (``token_env``, ``token_file`` and ``token_credential`` all fill
``token``); a family for the per-kind limits. The loader reads each key with the
bounds and the default declared for it, so the reference cannot drift from what
is accepted, and a key added to the model is accepted and documented at once.
Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import MISSING, dataclass
from functools import cache
from types import MappingProxyType
from typing import Any, Final, get_args


@dataclass(frozen=True)
class ValueType:
    """What a key takes: its name in the reference's Type column, and how such a value is written."""

    name: str
    doc: str


STRING: Final = ValueType("string", 'Text in double quotes: ``"..."``.')
STRINGS: Final = ValueType("list of strings", 'An array of strings: ``["...", "..."]``.')
INTEGER: Final = ValueType("integer", "A whole number, without quotes.")
SHARE: Final = ValueType("share", "A number from 0 to 1: ``0.05`` is 5 %.")
SECONDS: Final = ValueType("seconds", "A number of seconds greater than 0, e.g. ``30`` or ``2.5``.")
DURATION: Final = ValueType(
    "duration",
    'A number of seconds, or a string with a unit: ``"90s"``, ``"30m"``, ``"6h"``, ``"1d"``. 0 only where the '
    "key says what it means (its Allowed column: ``0 (no jitter) or more``).",
)
BOOLEAN: Final = ValueType("boolean", "``true`` or ``false``.")
TABLE: Final = ValueType("table", "An inline table: ``{ name = value, ... }``.")
URL: Final = ValueType(
    "URL",
    'An ``"https://..."`` URL, its certificate verified. Plain ``http://`` is refused, except to a loopback '
    "host (127.0.0.1, ::1, localhost) such as a local test server: the credentials would cross the network in clear.",
)
PATH: Final = ValueType("path", "A file path; a relative one is taken relative to the configuration file's directory.")
ENV_NAME: Final = ValueType(
    "variable name",
    'The NAME of an environment variable that holds a secret (e.g. ``"SCIM_TOKEN"``), not the secret itself; '
    "its value is read at start-up, stripped of surrounding whitespace. As for a secret file, a token under 8 "
    "characters is refused.",
)
SECRET_FILE: Final = ValueType(
    "secret file",
    "The path of a file that holds a secret (its text, stripped of surrounding whitespace); relative to the "
    "configuration file's directory. It must be private to its owner: a file that its group or others may read "
    "is refused, with the command to fix it (``chmod 600 FILE``). A token under 8 characters is refused (under "
    "16, a warning is logged): no issuer hands out such a token, and the log could not mask it.",
)
CREDENTIAL: Final = ValueType(
    "credential",
    "Under systemd: the name given to ``LoadCredential=`` in the unit. The secret is read from "
    "``$CREDENTIALS_DIRECTORY/NAME``. In the directory systemd makes (``/run/credentials/UNIT``, or "
    "``$XDG_RUNTIME_DIR/credentials/UNIT`` for a user service), private to the service, its mode is not checked; "
    "anywhere else it must be private to its owner, as a secret file. Outside systemd, use the matching "
    "``*_file`` key.",
)


@dataclass(frozen=True)
class Key:
    """One key of a table, as written in the file: what it takes, its default, and what it means."""

    name: str
    type: ValueType
    doc: str
    """What it means, for the operator."""
    default: Any = None
    """Taken when the key is absent, as a value of the file (seconds for a duration); None: none."""
    required: bool = False
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()
    """The values it may take (for a table: its keys)."""
    zero: str | None = None
    """For a duration: what 0 means where it means "none" (``"no jitter"``); None: 0 is refused as nonsense."""


KEYS: Final = "reconciler.config.keys"
"""The name of a field's keys in its metadata."""


def setting(
    *keys: Key,
    default: Any = MISSING,
    default_factory: Any = MISSING,
    repr: bool = True,
) -> Any:
    """A model field filled from ``keys`` of its table.

    A single key without a default of its own takes the field's: the model's
    defaults are the file's. A field with neither is required, and so is its key.
    """
    if len(keys) == 1 and keys[0].default is None:
        if default not in (MISSING, None):
            keys = (dataclasses.replace(keys[0], default=default),)
        elif default is MISSING and default_factory is MISSING:
            keys = (dataclasses.replace(keys[0], required=True),)
    return dataclasses.field(default=default, default_factory=default_factory, repr=repr, metadata={KEYS: keys})


@cache
def table_keys(model: type) -> Mapping[str, Key]:
    """The keys of ``model``'s table by name, in the order of its fields."""
    return MappingProxyType(
        {key.name: key for field in dataclasses.fields(model) for key in field.metadata.get(KEYS, ())}
    )


def as_file_value(value: Any) -> Any:
    """A default as the file would give it: a tuple as a list, a mapping as a table (a fresh one)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


# --- the kinds of keys ------------------------------------------------------------------------


def text(name: str, doc: str, value_type: ValueType = STRING, *, default: Any = None, required: bool = False) -> Key:
    return Key(name, value_type, doc, default, required)


def integer(name: str, low: int, high: int, doc: str, *, default: int | None = None) -> Key:
    return Key(name, INTEGER, doc, default, low=low, high=high)


def share(name: str, doc: str, *, default: float | None = None) -> Key:
    return Key(name, SHARE, doc, default)


def seconds(name: str, doc: str) -> Key:
    return Key(name, SECONDS, doc)


def duration(name: str, doc: str, *, zero: str | None = None, low: int | None = None, high: int | None = None) -> Key:
    """A duration; ``zero`` says what 0 means where it legitimately means "none" (else 0 is refused); ``low``
    and ``high``, in seconds, bound it where a value outside would make no sense (0 stays allowed with
    ``zero``)."""
    return Key(name, DURATION, doc, zero=zero, low=low, high=high)


def duration_text(seconds: float) -> str:
    """``"30m"`` for 1800 seconds: the largest unit that divides it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def flag(name: str, doc: str) -> Key:
    return Key(name, BOOLEAN, doc)


def choice(name: str, options: Any, doc: str, *, default: str | None = None) -> Key:
    """One of ``options``, a ``Literal`` type of the model (or a tuple of strings)."""
    return Key(name, STRING, doc, default, choices=tuple(get_args(options) or options))
