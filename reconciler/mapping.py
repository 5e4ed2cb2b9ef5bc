"""Attribute mapping: which Okta value feeds which SCIM attribute, and how to compare them.

A mapping is ``{SCIM attribute path: source}``, as in the ``[mapping]`` table
of the configuration. Pure: no I/O.

SCIM paths (RFC 7644 §3.10, the subset a user mapping needs):
  ``userName``, ``displayName``             a top-level attribute
  ``name.givenName``                        a sub-attribute of a complex attribute
  ``emails[type eq "work"].value``          the entry of a given type of a multi-valued attribute
  ``urn:...:enterprise:2.0:User:department`` an attribute of an extension schema
  ``urn:...:enterprise:2.0:User:manager.value``  a sub-attribute of one (any extension URN works)

Okta source paths:
  ``credentials.userName``   the app user's userName
  ``profile.NAME``           the app user's profile (what Okta's SCIM app pushes)
  ``user.profile.NAME``      the Okta user's own profile (needs ``expand=user``)
  ``id``                     the Okta user id

A source (:data:`SourceSpec`) is a source path, or a table that is one of:
  ``{ source = "profile.email", transform = ["trim", "lower"] }``   a path, transformed
  ``{ source = "profile.title", default = "Staff" }``               a path, with a fallback
  ``{ join = ["profile.firstName", "profile.lastName"], separator = " " }``  paths joined
  ``{ constant = "Employee" }``                                     a fixed value

Reading, in this order: each value read from Okta goes through ``transform``
(``lower``, ``upper``, ``trim``, left to right; a value that is not a string
passes unchanged); a ``join`` then joins the parts that are not empty; then
``default`` replaces a result that is missing, null or empty. The default and
a constant are sent as written, never transformed. There is no expression
language beyond this, on purpose: a mapping stays readable in a diff.

What Okta did not say is UNKNOWN, and an UNKNOWN attribute is neither
compared nor written: a path whose profile field is absent (the string form,
as always), a ``user.profile.NAME`` when the listing carries no user profile
(even with a default, since Okta's value is not known), and a join whose
every part is absent. A join skips a part that is absent, null or empty, but
is UNKNOWN as a whole when any part's profile is not carried at all.

Only mapped attributes are compared and written; the rest of a platform user
is the platform's. ``externalId`` (the Okta user id, the link between the two
sides) and ``active`` (the assignment's status) are the reconciler's own and
cannot be mapped; ``id``, ``meta`` and ``schemas`` are the platform's or follow
from the mapped attributes.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from reconciler.records import OktaAssignment, ProfileFields

DEFAULT_MAPPING: Final[Mapping[str, str]] = {
    "userName": "credentials.userName",
    "name.givenName": "profile.givenName",
    "name.familyName": "profile.familyName",
    'emails[type eq "work"].value': "profile.email",
    "displayName": "profile.displayName",
    "locale": "profile.locale",
}
"""What Okta's "SCIM 2.0 Test App" sends on a create (see DESIGN.md)."""

RESERVED_PATHS: Final[Mapping[str, str]] = {
    "externalid": (
        "the reconciler always sets externalId to the Okta user id (the link between the two sides); "
        "it cannot be mapped: it is how platform users are matched to Okta users and how the safety gate "
        "counts the users it manages"
    ),
    "active": (
        "the reconciler sets active to follow the user's assignment status in Okta; it cannot be mapped: "
        "assigned and active is true, unassigned or deactivated is false (suspended: see policy.suspended)"
    ),
    "id": "the platform assigns id; it cannot be mapped",
    "meta": "the platform keeps meta; it cannot be mapped",
    "schemas": "the reconciler writes schemas from the attributes mapped; it cannot be mapped",
}
"""Core attributes the reconciler or the platform owns (by lowercased name), with why they are never mapped."""

CASE_INSENSITIVE_PATHS: Final = frozenset({"username", "emails.value"})
"""RFC 7643 marks these ``caseExact: false``: compared without regard to case."""

ENTERPRISE_URN: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:User"

TRANSFORMS: Final[Mapping[str, Callable[[str], str]]] = {"lower": str.lower, "upper": str.upper, "trim": str.strip}
"""The transforms a source may name, applied to string values only."""

SPEC_KINDS: Final = ("source", "constant", "join")
"""A source table has exactly one of these."""

SPEC_KEYS: Final = (*SPEC_KINDS, "transform", "default", "separator")
_SPEC_KEYS_TEXT: Final = "source, constant or join, with transform and default (and separator for join)"

_TYPED_ENTRY = re.compile(r'^(?P<attr>\w+)\[type eq "(?P<type>[^"]+)"\]\.(?P<sub>\w+)$')
_PLAIN = re.compile(r"^(?P<attr>\w+)(?:\.(?P<sub>\w+))?$")
_SOURCE = re.compile(r"^(credentials\.userName|id|profile\.\w+|user\.profile\.\w+)$")


class _Unknown:
    """The Okta side did not say: such an attribute is neither compared nor written."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()


class _Absent:
    """A profile field the (carried) profile does not have: a join skips it, a default replaces it."""

    def __repr__(self) -> str:
        return "ABSENT"


_ABSENT: Final = _Absent()

SourceSpec = str | Mapping[str, Any]
"""A ``[mapping]`` value: an Okta source path, or a source table as TOML reads it.

A loaded configuration keeps a table read-only, its lists as tuples: plain
values that compare, print and serialise as written in the file.
"""

Scalar = str | bool | int
"""What a constant or a default may be, as TOML spells it."""


@dataclass(frozen=True, slots=True)
class _Spec:
    """A checked source, as the readers are built from it: exactly one of source, join, constant."""

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


@dataclass(frozen=True, slots=True)
class TargetPath:
    """A parsed SCIM attribute path."""

    text: str
    attribute: str
    sub_attribute: str | None = None
    entry_type: str | None = None
    """For ``emails[type eq "work"].value``: ``work``."""
    schema: str | None = None
    """An extension schema URN, or None for the core User schema."""
    case_insensitive: bool = False
    """RFC 7643 ``caseExact: false`` (see CASE_INSENSITIVE_PATHS)."""


def _case_insensitive(attribute: str, sub_attribute: str | None, schema: str | None) -> bool:
    key = attribute.lower() + (f".{sub_attribute.lower()}" if sub_attribute else "")
    return schema is None and key in CASE_INSENSITIVE_PATHS


@functools.lru_cache(maxsize=1024)
def parse_target_path(text: str) -> TargetPath:
    """Parse a SCIM attribute path, or raise ValueError saying what is accepted.

    Cached: the planner reads the same few paths for every user. Attribute
    names are case-insensitive in SCIM, so ``ExternalId`` is as reserved as
    ``externalId``; an extension schema may use any of those names.
    """
    schema = None
    rest = text
    if text.startswith("urn:"):
        schema, sep, rest = text.rpartition(":")
        if not sep or not schema or not rest:
            raise ValueError(f"an extension path is URN:attribute, e.g. {ENTERPRISE_URN}:department")
    if match := _TYPED_ENTRY.match(rest):
        insensitive = _case_insensitive(match["attr"], match["sub"], schema)
        return TargetPath(text, match["attr"], match["sub"], match["type"], schema, insensitive)
    if match := _PLAIN.match(rest):
        reserved = RESERVED_PATHS.get(match["attr"].lower())
        if reserved is not None and schema in (None, CORE_USER_URN):
            raise ValueError(reserved)
        insensitive = _case_insensitive(match["attr"], match["sub"], schema)
        return TargetPath(text, match["attr"], match["sub"], None, schema, insensitive)
    raise ValueError('not a supported SCIM path: use attr, attr.sub, attr[type eq "work"].sub or URN:attr')


# --- sources --------------------------------------------------------------------------------------


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


def _show(value: Any) -> str:
    """A value as TOML would spell it, cut short: for "got ..." in a message."""
    if isinstance(value, Mapping):
        return "a table"
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _path_problem(path: Any, what: str = "source") -> str | None:
    if isinstance(path, str) and _SOURCE.match(path):
        return None
    return f"{what} {_show(path)} is not one of credentials.userName, id, profile.NAME, user.profile.NAME"


def _scalar_problem(key: str, value: Any) -> str | None:
    if isinstance(value, bool | int) or (isinstance(value, str) and value):
        return None
    return f"{key} must be a non-empty string, true/false or an integer, got {_show(value)}"


def _parse_spec(value: Any) -> tuple[_Spec | None, list[str]]:
    """The source a ``[mapping]`` value stands for, and every problem with it (one line each, without the key)."""
    if isinstance(value, str):
        problem = _path_problem(value)
        return (None, [problem]) if problem else (_Spec(source=value), [])
    if not isinstance(value, Mapping):
        return None, [
            'expected a source path such as "profile.title" or a table such as '
            f'{{ source = "profile.title", transform = "trim" }}, got {_show(value)}'
        ]
    return _parse_table(value)


def _parse_table(table: Mapping[str, Any]) -> tuple[_Spec | None, list[str]]:
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
        return f"unknown key {_show(key)}; did you mean {nearest}? (a source table takes {_SPEC_KEYS_TEXT})"
    return f"unknown key {_show(key)}; a source table takes {_SPEC_KEYS_TEXT}"


def _constant_problems(table: Mapping[str, Any]) -> list[str]:
    constant = table["constant"]
    problems = []
    if not isinstance(constant, str | bool | int):
        problems.append(f"constant must be a string, true/false or an integer, got {_show(constant)}")
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
        return [f"join needs a list of at least two sources, e.g. {example}, got {_show(parts)}"]
    problems = [problem for part in parts if (problem := _path_problem(part, "join source"))]
    separator = table.get("separator", " ")
    if not isinstance(separator, str):
        problems.append(f"separator must be a string, got {_show(separator)}")
    return problems


def _transform_problems(transform: Any) -> list[str]:
    names = (transform,) if isinstance(transform, str) else transform
    known = ", ".join(TRANSFORMS)
    if not isinstance(names, list | tuple) or not all(isinstance(name, str) for name in names):
        return [f"transform must be one of {known} or a list of them, got {_show(transform)}"]
    return [f"unknown transform {_show(name)}; use {known}" for name in names if name not in TRANSFORMS]


def _spec_from_table(table: Mapping[str, Any]) -> _Spec:
    """A checked table (see :func:`_parse_table`) as a _Spec."""
    transform = table.get("transform", ())
    return _Spec(
        source=table.get("source"),
        join=tuple(table.get("join", ())),
        separator=table.get("separator", " "),
        constant=table.get("constant"),
        transform=(transform,) if isinstance(transform, str) else tuple(transform),
        default=table.get("default"),
    )


def _checked_spec(value: SourceSpec) -> _Spec:
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


def profile_fields(mapping: Mapping[str, SourceSpec]) -> ProfileFields:
    """The Okta profile fields the mapping reads (joined parts too): all a run needs to keep of each profile."""
    sources = {path for value in mapping.values() for path in _checked_spec(value).sources}
    user = frozenset(s.removeprefix("user.profile.") for s in sources if s.startswith("user.profile."))
    app = frozenset(s.removeprefix("profile.") for s in sources if s.startswith("profile."))
    return ProfileFields(app=app, user=user)


def resource_attributes(mapping: Mapping[str, SourceSpec]) -> frozenset[str]:
    """The top-level attributes (or extension URNs) of a SCIM user that the mapping compares."""
    paths = [parse_target_path(text) for text in mapping]
    return frozenset(path.attribute if path.schema in (None, CORE_USER_URN) else path.schema for path in paths)


def read_source(assignment: OktaAssignment, source: str) -> Any:
    """The Okta value at ``source``, or UNKNOWN when Okta's listing does not carry it."""
    return source_reader(source)(assignment)


def source_reader(source: str) -> Callable[[OktaAssignment], Any]:
    """A function reading ``source`` of an assignment (see :func:`read_source`), decided once."""
    if source in ("credentials.userName", "id"):
        return _field_reader(source)
    if source.startswith("user.profile."):
        name = source.removeprefix("user.profile.")

        def read_user_profile(assignment: OktaAssignment) -> Any:
            profile = assignment.user_profile
            return UNKNOWN if profile is None else profile.get(name, UNKNOWN)

        return read_user_profile
    name = source.removeprefix("profile.")
    return lambda assignment: assignment.app_profile.get(name, UNKNOWN)


def _field_reader(source: str) -> Callable[[OktaAssignment], Any]:
    """Like :func:`source_reader`, but a field the carried profile lacks reads as _ABSENT, not UNKNOWN.

    The difference matters to a join (which skips an absent part) and a
    default (which replaces it); UNKNOWN remains for a profile not carried at all.
    """
    if source == "credentials.userName":
        return operator.attrgetter("user_name")
    if source == "id":
        return operator.attrgetter("okta_user_id")
    if source.startswith("user.profile."):
        name = source.removeprefix("user.profile.")

        def read_user_profile(assignment: OktaAssignment) -> Any:
            profile = assignment.user_profile
            return UNKNOWN if profile is None else profile.get(name, _ABSENT)

        return read_user_profile
    name = source.removeprefix("profile.")
    return lambda assignment: assignment.app_profile.get(name, _ABSENT)


def _is_empty(value: Any) -> bool:
    """Missing, null or empty: what a join skips and a default replaces."""
    return value is _ABSENT or value is None or value == "" or value == []


def _transformer(names: tuple[str, ...]) -> Callable[[Any], Any]:
    """The transforms, in order, as one function; a value that is not a string passes unchanged."""
    steps = tuple(TRANSFORMS[name] for name in names)

    def transform(value: Any) -> Any:
        if type(value) is str:
            for step in steps:
                value = step(value)
        return value

    return transform


def _as_text(value: Any) -> str:
    """A join part as text: a string as it is, anything else as JSON spells it (``42``, ``true``)."""
    return value if type(value) is str else json.dumps(value, ensure_ascii=False)


def _transformed_reader(source: str, transforms: tuple[str, ...]) -> Callable[[OktaAssignment], Any]:
    read = _field_reader(source)
    if not transforms:
        return read
    transform = _transformer(transforms)
    return lambda assignment: transform(read(assignment))


def _join_reader(spec: _Spec) -> Callable[[OktaAssignment], Any]:
    """The parts that are not empty, joined; None when every part Okta carries is empty, _ABSENT when none is there."""
    readers = tuple(_transformed_reader(part, spec.transform) for part in spec.join)
    separator = spec.separator

    def read_joined(assignment: OktaAssignment) -> Any:
        texts = []
        present = False
        for read in readers:
            value = read(assignment)
            if value is UNKNOWN:
                return UNKNOWN
            present = present or value is not _ABSENT
            if not _is_empty(value):
                texts.append(_as_text(value))
        if texts:
            return separator.join(texts)
        return None if present else _ABSENT

    return read_joined


def spec_reader(value: SourceSpec) -> Callable[[OktaAssignment], Any]:
    """A function reading Okta's value for a source (UNKNOWN when Okta did not say), all decided once.

    ``{ source = ... }`` alone is read exactly as its string form. Raises
    ValueError (its problems) for a source :func:`mapping_problems` refuses.
    """
    spec = _checked_spec(value)
    if spec.constant is not None:
        constant = spec.constant
        return lambda assignment: constant
    assert spec.source is not None or spec.join
    if spec.is_plain:
        assert spec.source is not None
        return source_reader(spec.source)
    read = _join_reader(spec) if spec.join else _transformed_reader(spec.source or "", spec.transform)
    default = spec.default
    if default is None:

        def read_or_unknown(assignment: OktaAssignment) -> Any:
            value = read(assignment)
            return UNKNOWN if value is _ABSENT else value

        return read_or_unknown

    def read_or_default(assignment: OktaAssignment) -> Any:
        value = read(assignment)
        if value is UNKNOWN:
            return UNKNOWN
        return default if _is_empty(value) else value

    return read_or_default


@dataclass(frozen=True, slots=True)
class MappedAttribute:
    """One mapping entry, parsed: where it goes on the platform and how it is read from Okta."""

    text: str
    path: TargetPath
    read: Callable[[OktaAssignment], Any]
    """Okta's value (UNKNOWN when its listing does not carry it)."""
    read_current: Callable[[Mapping[str, Any]], Any]
    """The platform's value, from a SCIM resource (None when absent)."""


CompiledMapping = tuple[MappedAttribute, ...]


def compile_mapping(mapping: Mapping[str, SourceSpec]) -> CompiledMapping:
    """The mapping with its paths parsed and its sources resolved, for reading many users fast.

    Everything is decided here, once: reading a user runs only the closures
    built for its spec. Raises ValueError naming the key of an unusable entry.
    """
    compiled = []
    for text, value in mapping.items():
        try:
            path = parse_target_path(text)
            read = spec_reader(value)
        except ValueError as error:
            raise ValueError(f"mapping.{mapping_key(text)}: {error}") from error
        compiled.append(MappedAttribute(text, path, read, target_reader(path)))
    return tuple(compiled)


def desired_attributes(
    assignment: OktaAssignment, mapping: Mapping[str, SourceSpec] | CompiledMapping
) -> dict[str, Any]:
    """The mapped SCIM attributes Okta wants for this user; unknown sources left out."""
    compiled = mapping if isinstance(mapping, tuple) else compile_mapping(mapping)
    wanted = {}
    for attribute in compiled:
        value = attribute.read(assignment)
        if value is not UNKNOWN:
            wanted[attribute.text] = value
    return wanted


def _container(resource: Mapping[str, Any], path: TargetPath) -> Mapping[str, Any]:
    if path.schema is None or path.schema == CORE_USER_URN:
        return resource
    extension = resource.get(path.schema)
    return extension if isinstance(extension, Mapping) else {}


def find_typed_entry(entries: Any, entry_type: str) -> Mapping[str, Any] | None:
    """The entry of a multi-valued attribute with the given type.

    Some servers drop ``type``; then the primary entry, or a lone entry, stands for it.
    """
    if not isinstance(entries, list):
        return None
    folded = entry_type.lower()
    for entry in entries:  # the common case, one pass: an entry of that very type
        if _is_mapping(entry):
            found = entry.get("type")
            if found == entry_type or (found is not None and str(found).lower() == folded):
                return entry  # type: ignore[no-any-return]
    dicts = [e for e in entries if _is_mapping(e)]
    untyped = [e for e in dicts if not e.get("type")]
    for entry in untyped:
        if entry.get("primary"):
            return entry  # type: ignore[no-any-return]
    return untyped[0] if len(untyped) == 1 and len(dicts) == 1 else None


def _is_mapping(value: Any) -> bool:
    """``isinstance(value, Mapping)``, without the ABC check for the plain dicts JSON decodes to."""
    return type(value) is dict or isinstance(value, Mapping)


def read_attribute(resource: Mapping[str, Any], path: TargetPath) -> Any:
    """The whole attribute that ``path`` points into (e.g. every ``emails`` entry)."""
    return _container(resource, path).get(path.attribute)


def read_target(resource: Mapping[str, Any], path: TargetPath) -> Any:
    """The value at ``path`` in a SCIM resource; None when absent."""
    return target_reader(path)(resource)


@functools.lru_cache(maxsize=1024)
def target_reader(path: TargetPath) -> Callable[[Mapping[str, Any]], Any]:
    """A function reading ``path`` of a SCIM resource (see :func:`read_target`), shaped once for the path.

    The planner reads each mapped path of every user; deciding the path's shape
    once, rather than per user, halves the cost of a comparison.
    """
    attribute, sub_attribute, entry_type = path.attribute, path.sub_attribute, path.entry_type
    in_extension = path.schema is not None and path.schema != CORE_USER_URN

    def container(resource: Mapping[str, Any]) -> Mapping[str, Any]:
        return _container(resource, path) if in_extension else resource

    if entry_type is not None:
        wanted = sub_attribute or "value"

        def read_typed_entry(resource: Mapping[str, Any]) -> Any:
            entry = find_typed_entry(container(resource).get(attribute), entry_type)
            return None if entry is None else entry.get(wanted)

        return read_typed_entry
    if sub_attribute is not None:

        def read_sub_attribute(resource: Mapping[str, Any]) -> Any:
            value = container(resource).get(attribute)
            return value.get(sub_attribute) if _is_mapping(value) else None

        return read_sub_attribute
    if in_extension:
        return lambda resource: container(resource).get(attribute)
    return operator.methodcaller("get", attribute)


def _normalise(value: Any, case_insensitive: bool) -> Any:
    if value == "" or value == []:
        return None
    if case_insensitive and isinstance(value, str):
        return value.casefold()
    if isinstance(value, list):
        return sorted((_normalise(v, case_insensitive) for v in value), key=repr)
    return value


def values_equal(path: TargetPath, desired: Any, actual: Any) -> bool:
    """Equal as SCIM compares them: case-insensitively where RFC 7643 says so,
    regardless of order in multi-valued attributes, and "" the same as absent."""
    insensitive = path.case_insensitive
    return _normalise(desired, insensitive) == _normalise(actual, insensitive)


def set_value(resource: dict[str, Any], path: TargetPath, value: Any) -> None:
    """Write ``value`` at ``path`` into a SCIM resource dict, in place.

    Other entries of a multi-valued attribute and other sub-attributes are kept,
    so that a whole-resource write does not lose what the platform owns.
    """
    if path.schema is not None and path.schema != CORE_USER_URN:
        container = resource.setdefault(path.schema, {})
        schemas = resource.setdefault("schemas", [CORE_USER_URN])
        if path.schema not in schemas:
            schemas.append(path.schema)
    else:
        container = resource
    if path.entry_type is not None:
        _set_typed_entry(container, path, value)
    elif path.sub_attribute is not None:
        complex_value = container.get(path.attribute)
        complex_value = dict(complex_value) if isinstance(complex_value, Mapping) else {}
        complex_value[path.sub_attribute] = value
        container[path.attribute] = complex_value
    else:
        container[path.attribute] = value


def _set_typed_entry(container: dict[str, Any], path: TargetPath, value: Any) -> None:
    entries = [dict(e) for e in container.get(path.attribute) or [] if isinstance(e, Mapping)]
    assert path.entry_type is not None
    current = find_typed_entry(entries, path.entry_type)
    if current is None:
        if value is None:
            return
        entry: dict[str, Any] = {"type": path.entry_type}
        if not any(e.get("primary") for e in entries):
            entry["primary"] = True
        entries.append(entry)
    else:
        entry = current  # type: ignore[assignment]
    entry[path.sub_attribute or "value"] = value
    entry.setdefault("type", path.entry_type)
    container[path.attribute] = [e for e in entries if e.get(path.sub_attribute or "value") is not None]


def build_resource(attributes: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A SCIM User resource: ``base`` (deep-copied) with each mapped attribute set."""
    resource: dict[str, Any] = copy.deepcopy(dict(base)) if base else {"schemas": [CORE_USER_URN]}
    for text, value in attributes.items():
        if text in ("active", "externalId"):
            resource[text] = value
        else:
            set_value(resource, parse_target_path(text), value)
    return resource
