"""Attribute mapping, read: each source compiled once into a reader of Okta's value, beside one of the platform's.

The language (SCIM paths, Okta source paths, source tables, the order in which
transform, join and default apply) is :mod:`reconciler.config.mapping`'s,
which parses and checks it. Here a checked source becomes a closure, decided
once per mapping (:func:`compile_mapping`) and run for every user. Pure: no I/O.

What Okta did not say is UNKNOWN, and an UNKNOWN attribute is neither
compared nor written: a path whose profile field is absent (the string form,
as always), a ``user.profile.NAME`` when the listing carries no user profile
(even with a default, since Okta's value is not known), and a join whose
every part is absent. A join skips a part that is absent, null or empty, but
is UNKNOWN as a whole when any part's profile is not carried at all.

UNKNOWN is the meaning of one user's missing field, not of a listing's: a
mapped attribute that is UNKNOWN for every user, or a ``userName`` UNKNOWN
for any user, stops the run before it plans
(:func:`reconciler.plan.projection.unknown_problems`).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from reconciler.config.mapping import TRANSFORMS, CheckedSource, SourceSpec, checked_source, mapping_key
from reconciler.models.records import OktaAssignment, ProfileFields
from reconciler.models.scim_path import CORE_USER_URN, TargetPath, parse_target_path, target_reader


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


# --- sources --------------------------------------------------------------------------------------


def profile_fields(mapping: Mapping[str, SourceSpec]) -> ProfileFields:
    """The Okta profile fields the mapping reads (joined parts too): all a run needs to keep of each profile."""
    sources = {path for value in mapping.values() for path in checked_source(value).sources}
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
    return _reader(source, missing=UNKNOWN)


def _field_reader(source: str) -> Callable[[OktaAssignment], Any]:
    """Like :func:`source_reader`, but a field the carried profile lacks reads as _ABSENT, not UNKNOWN.

    The difference matters to a join (which skips an absent part) and a
    default (which replaces it); UNKNOWN remains for a profile not carried at all.
    """
    return _reader(source, missing=_ABSENT)


def _reader(source: str, *, missing: Any) -> Callable[[OktaAssignment], Any]:
    """A reader of ``source``; a profile field the carried profile lacks reads as ``missing``."""
    if source == "credentials.userName":
        return operator.attrgetter("user_name")
    if source == "id":
        return operator.attrgetter("okta_user_id")
    if source.startswith("user.profile."):
        name = source.removeprefix("user.profile.")

        def read_user_profile(assignment: OktaAssignment) -> Any:
            profile = assignment.user_profile
            return UNKNOWN if profile is None else profile.get(name, missing)

        return read_user_profile
    name = source.removeprefix("profile.")
    return lambda assignment: assignment.app_profile.get(name, missing)


def is_empty(value: Any) -> bool:
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


def _join_reader(spec: CheckedSource) -> Callable[[OktaAssignment], Any]:
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
            if not is_empty(value):
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
    spec = checked_source(value)
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
        return default if is_empty(value) else value

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
    plain_source: str | None = None
    """The Okta source path when the value is read exactly as it stands there (no transform, join, default
    or constant): what a page decoder may read straight from its decoded structs."""


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
        spec = checked_source(value)
        plain = spec.source if spec.is_plain else None
        compiled.append(MappedAttribute(text, path, read, target_reader(path), plain))
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
