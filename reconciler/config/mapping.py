"""The ``[mapping]`` table: which Okta value feeds which SCIM attribute.

Each key is a SCIM attribute path, each value its source in Okta. The file's
table is merged over the default mapping (what Okta's SCIM 2.0 app sends): a
key replaces the default of the same SCIM path (matched without regard to
case), a new key adds a mapping, and a key set to ``""`` removes a default,
e.g. ``locale = ""``. ``userName`` must stay mapped. Only mapped attributes are
compared and written: whatever else a platform user carries is left as it is.

SCIM attribute paths (RFC 7644 §3.10, the subset a user mapping needs):

- ``userName``, ``displayName``, ``title``, ...: a top-level attribute
- ``"name.givenName"``: a sub-attribute of a complex attribute (quote a dotted path)
- ``'emails[type eq "work"].value'``: the entry of a given type of a multi-valued attribute
- ``"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"``: an attribute of an extension
  schema, and ``"urn:...:User:manager.value"`` a sub-attribute of one (any extension URN works)

Okta source paths:

- ``credentials.userName``: the app user's userName
- ``profile.NAME``: the app user's profile (what Okta's SCIM app pushes)
- ``user.profile.NAME``: the Okta user's own profile
- ``id``: the Okta user id

A source is a source path, or a table that is one of:

- ``{ source = "profile.email", transform = ["trim", "lower"] }``: a path, transformed
- ``{ source = "profile.title", default = "Staff" }``: a path, with a fallback
- ``{ join = ["profile.firstName", "profile.lastName"], separator = " " }``: paths joined
- ``{ constant = "Employee" }``: a fixed value

Reading, in this order: each value read from Okta goes through ``transform``
(``lower``, ``upper``, ``trim``, left to right; a value that is not a string
passes unchanged); a ``join`` then joins the parts that are not empty; then
``default`` replaces a result that is missing, null or empty. The default and
a constant are sent as written, never transformed. There is no expression
language beyond this, on purpose: a mapping stays readable in a diff. A value
Okta's listing does not carry at all is neither compared nor written.

``externalId`` (the Okta user id, the link between the two sides) and
``active`` (the assignment's status in Okta) are the reconciler's own and
cannot be mapped; ``id``, ``meta`` and ``schemas`` are the platform's or follow
from the mapped attributes.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from reconciler.config.keys import STRING, Key, ValueType
from reconciler.config.wording import show
from reconciler.models.scim_path import parse_target_path

DEFAULT_MAPPING: Final[Mapping[str, str]] = {
    "userName": "credentials.userName",
    "name.givenName": "profile.givenName",
    "name.familyName": "profile.familyName",
    'emails[type eq "work"].value': "profile.email",
    "displayName": "profile.displayName",
    "locale": "profile.locale",
}
"""What Okta's "SCIM 2.0 Test App" sends on a create (see DESIGN.md)."""


TRANSFORMS: Final[Mapping[str, Callable[[str], str]]] = {"lower": str.lower, "upper": str.upper, "trim": str.strip}
"""The transforms a source may name, applied to string values only."""


SPEC_KINDS: Final = ("source", "constant", "join")
"""A source table has exactly one of these."""


SOURCE_PATH: Final = ValueType(
    "source path", "An Okta source path: ``credentials.userName``, ``profile.NAME``, ``user.profile.NAME`` or ``id``."
)
SCALAR: Final = ValueType("value", 'A string, ``true``/``false`` or an integer, sent as written: ``"Employee"``.')


SOURCE_TABLE_KEYS: Final = (
    Key("source", SOURCE_PATH, "Where the value comes from."),
    Key("constant", SCALAR, "A fixed value instead of a source; it takes no other key."),
    Key(
        "join",
        ValueType("list of source paths", 'An array of two or more source paths: ``["...", "..."]``.'),
        "Two or more sources whose values are joined, in order; the parts that are empty are skipped.",
    ),
    Key(
        "transform",
        ValueType("string or list", 'One name, or an array of names: ``"trim"``, ``["trim", "lower"]``.'),
        "Applied to each value read, left to right; a value that is not a string passes unchanged.",
        choices=tuple(TRANSFORMS),
    ),
    Key("default", SCALAR, "Sent when the result is missing, null or empty (after the transforms)."),
    Key("separator", STRING, "What goes between the parts of a ``join``.", default=" "),
)
"""The keys of a source table: exactly one of source, constant and join, and what goes with it."""


SPEC_KEYS: Final = tuple(key.name for key in SOURCE_TABLE_KEYS)


_SPEC_KEYS_TEXT: Final = "source, constant or join, with transform and default (and separator for join)"


_SOURCE = re.compile(r"^(credentials\.userName|id|profile\.\w+|user\.profile\.\w+)$")


SourceSpec = str | Mapping[str, Any]
"""A ``[mapping]`` value: an Okta source path, or a source table as TOML reads it.

A loaded configuration keeps a table read-only, its lists as tuples: plain
values that compare, print and serialise as written in the file.
"""


Scalar = str | bool | int
"""What a constant or a default may be, as TOML spells it."""


@dataclass(frozen=True, slots=True)
class CheckedSource:
    """A ``[mapping]`` value once checked, in one shape whatever its form: exactly one of source, join, constant.

    The planner builds its readers from it (:mod:`reconciler.plan.mapping`); a
    source path alone is ``CheckedSource(source=path)``.
    """

    source: str | None = None
    join: tuple[str, ...] = ()
    separator: str = " "
    constant: Scalar | None = None
    transform: tuple[str, ...] = ()
    default: Scalar | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        """Every Okta source path this reads."""
        return (self.source,) if self.source is not None else self.join

    @property
    def is_plain(self) -> bool:
        """Read exactly as the string form of its source path."""
        return self.source is not None and not self.transform and self.default is None


def mapping_key(target: str) -> str:
    """A ``[mapping]`` key as TOML spells it, for a message: ``"title"``, ``'emails[type eq "work"].value'``."""
    if '"' in target and "'" not in target:
        return f"'{target}'"
    return json.dumps(target, ensure_ascii=False)


def looks_like_spec_typo(key: str) -> bool:
    """Whether ``key`` is nearly a source-table key (``sorce``, ``transfrom``) without being one.

    An unquoted dotted key (``name.givenName = ...``) reads as nested tables,
    so a misspelt source table would otherwise pass for a sub-attribute
    (``title.sorce``). No SCIM sub-attribute name is near a source-table key.
    """
    return key not in SPEC_KEYS and _nearest_spec_key(key) is not None


def _nearest_spec_key(key: str) -> str | None:
    matches = difflib.get_close_matches(key.lower(), SPEC_KEYS, n=1, cutoff=0.75)
    return matches[0] if matches else None


def _path_problem(path: Any, what: str = "source") -> str | None:
    if isinstance(path, str) and _SOURCE.match(path):
        return None
    return f"{what} {show(path)} is not one of credentials.userName, id, profile.NAME, user.profile.NAME"


def _scalar_problem(key: str, value: Any) -> str | None:
    if isinstance(value, bool | int) or (isinstance(value, str) and value):
        return None
    return f"{key} must be a non-empty string, true/false or an integer, got {show(value)}"


def _parse_spec(value: Any) -> tuple[CheckedSource | None, list[str]]:
    """The source a ``[mapping]`` value stands for, and every problem with it (one line each, without the key)."""
    if isinstance(value, str):
        problem = _path_problem(value)
        return (None, [problem]) if problem else (CheckedSource(source=value), [])
    if not isinstance(value, Mapping):
        return None, [
            'expected a source path such as "profile.title" or a table such as '
            f'{{ source = "profile.title", transform = "trim" }}, got {show(value)}'
        ]
    return _parse_table(value)


def _parse_table(table: Mapping[str, Any]) -> tuple[CheckedSource | None, list[str]]:
    problems = [unknown_spec_key_problem(key) for key in table if key not in SPEC_KEYS]
    kinds = [kind for kind in SPEC_KINDS if kind in table]
    if not kinds:
        problems.append('give one of source, constant or join, e.g. { source = "profile.title" }')
        return None, problems
    if len(kinds) > 1:
        both = "both " if len(kinds) == 2 else ""
        problems.append(f"set {both}{', '.join(kinds[:-1])} and {kinds[-1]}; keep only one")
        return None, problems
    if "constant" in table:
        problems += _constant_problems(table)
    else:
        problems += _source_problems(table) if "source" in table else _join_problems(table)
        problems += _transform_problems(table.get("transform", ()))
        if "default" in table:
            problems += filter(None, [_scalar_problem("default", table["default"])])
    if problems:
        return None, problems
    return _spec_from_table(table), []


def unknown_spec_key_problem(key: str) -> str:
    """What to say of a key a source table does not take: the key it nearly is, or the keys it takes."""
    nearest = _nearest_spec_key(key)
    if nearest:
        return f"unknown key {show(key)}; did you mean {nearest}? (a source table takes {_SPEC_KEYS_TEXT})"
    return f"unknown key {show(key)}; a source table takes {_SPEC_KEYS_TEXT}"


def _constant_problems(table: Mapping[str, Any]) -> list[str]:
    constant = table["constant"]
    problems = []
    if not isinstance(constant, str | bool | int):
        problems.append(f"constant must be a string, true/false or an integer, got {show(constant)}")
    problems += [
        f"{key} does not go with constant: write the value exactly as it is to be sent"
        for key in ("transform", "default", "separator")
        if key in table
    ]
    return problems


def _source_problems(table: Mapping[str, Any]) -> list[str]:
    problems = list(filter(None, [_path_problem(table["source"])]))
    if "separator" in table:
        problems.append("separator only goes with join")
    return problems


def _join_problems(table: Mapping[str, Any]) -> list[str]:
    parts = table["join"]
    if not isinstance(parts, list | tuple) or len(parts) < 2:
        example = '["profile.firstName", "profile.lastName"]'
        return [f"join needs a list of at least two sources, e.g. {example}, got {show(parts)}"]
    problems = [problem for part in parts if (problem := _path_problem(part, "join source"))]
    separator = table.get("separator", " ")
    if not isinstance(separator, str):
        problems.append(f"separator must be a string, got {show(separator)}")
    return problems


def _transform_problems(transform: Any) -> list[str]:
    names = (transform,) if isinstance(transform, str) else transform
    known = ", ".join(TRANSFORMS)
    if not isinstance(names, list | tuple) or not all(isinstance(name, str) for name in names):
        return [f"transform must be one of {known} or a list of them, got {show(transform)}"]
    return [f"unknown transform {show(name)}; use {known}" for name in names if name not in TRANSFORMS]


def _spec_from_table(table: Mapping[str, Any]) -> CheckedSource:
    """A checked table (see :func:`_parse_table`) as a CheckedSource."""
    transform = table.get("transform", ())
    return CheckedSource(
        source=table.get("source"),
        join=tuple(table.get("join", ())),
        separator=table.get("separator", " "),
        constant=table.get("constant"),
        transform=(transform,) if isinstance(transform, str) else tuple(transform),
        default=table.get("default"),
    )


def checked_source(value: SourceSpec) -> CheckedSource:
    """The checked form of a ``[mapping]`` value; ValueError (its problems, joined) for one that is unusable."""
    spec, problems = _parse_spec(value)
    if spec is None:
        raise ValueError("; ".join(problems))
    return spec


def mapping_problems(mapping: Mapping[str, Any]) -> list[str]:
    """Every problem with a ``[mapping]`` table, one line each, naming its key; empty when usable."""
    problems = []
    for target, value in mapping.items():
        key = mapping_key(target)
        try:
            parse_target_path(target)
        except ValueError as error:
            problems.append(f"mapping.{key}: {error}")
        spec, found = _parse_spec(value)
        problems += [f"mapping.{key}: {problem}" for problem in found]
        if target == "userName" and spec is not None and spec.constant is not None:
            problems.append(f"mapping.{key}: a constant would give every user the same userName; map a source")
    if "userName" not in mapping:
        problems.append('mapping: userName must be mapped (Okta sends "credentials.userName")')
    return problems
