"""One page of ``GET /api/v1/apps/{appId}/users?expand=user``, decoded straight into compact records.

A 500-user page with ``expand=user`` is about 1 MB of JSON, most of it links
and fields the reconciler never reads. Decoding it with ``json`` into dicts
(or into the SDK's pydantic models) costs 30-40 ms a page, more than a round
trip to Okta; msgspec's typed decoder skips what these structs do not name.
When the caller names the profile fields it reads (:class:`ProfileFields`),
the profiles are decoded into structs of just those fields, so the rest of
each profile is never built, and 100,000 records stay small.
"""

from __future__ import annotations

import functools
import json
import operator
import sys
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any, ClassVar

import msgspec
from msgspec.structs import force_setattr

from reconciler.errors import SourceError
from reconciler.models.records import OktaAssignment, ProfileFields
from reconciler.net.transport import NESTING_MESSAGE
from reconciler.plan.mapping import UNKNOWN
from reconciler.plan.projection import Projection

KEEP_ALL = ProfileFields()


class _Credentials(msgspec.Struct):
    userName: str | None = None  # noqa: N815 - Okta's JSON names


class ProfileStruct(msgspec.Struct, frozen=True, gc=False):
    """A profile decoded into just the fields a run reads, read as the read-only dict of those present.

    A struct of five fields is a quarter of the dict it would be, and is never
    converted: the plan compares the values read from it (see
    :mod:`reconciler.plan.projection`), and only a saved plan or a mapping
    with transforms reads it as a mapping. Absent fields are ``UNSET``.
    """

    _json_names: ClassVar[dict[str, str]]
    """JSON name -> field name."""

    def get(self, name: str, default: Any = None) -> Any:
        field = self._json_names.get(name)
        value = getattr(self, field) if field is not None else msgspec.UNSET
        return default if value is msgspec.UNSET else value

    def __getitem__(self, name: str) -> Any:
        value = self.get(name, msgspec.UNSET)
        if value is msgspec.UNSET:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(msgspec.to_builtins(self))

    def __len__(self) -> int:
        return len(msgspec.to_builtins(self))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name, msgspec.UNSET) is not msgspec.UNSET

    def keys(self) -> KeysView[str]:
        return msgspec.to_builtins(self).keys()  # type: ignore[no-any-return]

    def items(self) -> ItemsView[str, Any]:
        return msgspec.to_builtins(self).items()  # type: ignore[no-any-return]

    def values(self) -> ValuesView[Any]:
        return msgspec.to_builtins(self).values()  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return repr(msgspec.to_builtins(self))


Mapping.register(ProfileStruct)


class _Profile:
    """How a profile is decoded: whole, as a dict, or into a :class:`ProfileStruct` of the fields wanted."""

    def __init__(self, wanted: frozenset[str] | None, kind: str) -> None:
        self.names = sorted(wanted) if wanted is not None else None
        self.type: Any = dict[str, Any]
        if self.names is not None:
            fields = [(f"f{i}", Any, msgspec.UNSET) for i in range(len(self.names))]
            rename = {f"f{i}": name for i, name in enumerate(self.names)}
            self.type = msgspec.defstruct(kind, fields, rename=rename, bases=(ProfileStruct,), frozen=True, gc=False)
            self.type._json_names = {name: field for field, name in rename.items()}

    def as_mapping(self, decoded: Any) -> Mapping[str, Any]:
        """The decoded profile as the record keeps it (an absent profile was refused before)."""
        return {} if decoded is None else decoded  # type: ignore[no-any-return]


class _PageDecoder:
    """A decoder for one choice of profile fields."""

    def __init__(self, fields: ProfileFields) -> None:
        self.app_profile = _Profile(fields.app, "AppProfile")
        self.user_profile = _Profile(fields.user, "UserProfile")
        embedded_user = msgspec.defstruct(
            "EmbeddedUser", [("status", str | None, None), ("profile", self.user_profile.type | None, None)]
        )
        embedded = msgspec.defstruct("Embedded", [("user", embedded_user | None, None)])
        app_user = msgspec.defstruct(
            "AppUser",
            [
                ("id", str | None, None),
                ("status", str | None, None),
                ("scope", str | None, None),
                ("syncState", str | None, None),
                ("externalId", str | None, None),
                ("credentials", _Credentials | None, None),
                ("profile", self.app_profile.type | None, None),
                ("embedded", embedded | None, None),
            ],
            rename={"embedded": "_embedded"},
        )
        self.decoder = msgspec.json.Decoder(list[app_user])  # type: ignore[valid-type]
        self._values_readers: dict[Projection, Callable[[Any], tuple[Any, ...]] | None] = {}

    def values_reader(self, projection: Projection) -> Callable[[Any], tuple[Any, ...]] | None:
        """One C-level getter of every mapped value from a decoded app user, when each is a field read as it
        stands and decoded by name; None otherwise (the values are then read from the assignment)."""
        if projection not in self._values_readers:
            paths = [self._struct_path(a.plain_source) for a in projection.attributes]
            known = [path for path in paths if path is not None]
            getter = operator.attrgetter(*known) if known else None
            if getter is None or len(known) != len(paths):
                self._values_readers[projection] = None
            elif len(known) == 1:
                self._values_readers[projection] = lambda app_user: (getter(app_user),)
            else:
                self._values_readers[projection] = getter
        return self._values_readers[projection]

    def _struct_path(self, source: str | None) -> str | None:
        """Where ``source`` sits in a decoded app user, or None when it is not a field decoded by name."""
        if source == "credentials.userName" or source == "id":
            return source
        if source is None:
            return None
        for prefix, profile, at in (
            ("user.profile.", self.user_profile, "embedded.user.profile"),
            ("profile.", self.app_profile, "profile"),
        ):
            if source.startswith(prefix):
                name = source.removeprefix(prefix)
                if profile.names is None or name not in profile.names:
                    return None
                return f"{at}.f{profile.names.index(name)}"
        return None


@functools.lru_cache(maxsize=16)
def _page_decoder(fields: ProfileFields) -> _PageDecoder:
    return _PageDecoder(fields)


def decode_app_users(
    body: bytes | str, fields: ProfileFields = KEEP_ALL, projection: Projection | None = None
) -> list[OktaAssignment]:
    """The assignments in one listing page; SourceError names the first thing that does not parse.

    With ``projection`` (whose profile fields ``fields`` must include), each assignment also carries the
    mapped values the plan compares, read straight from the decoded page where the mapping reads a field
    as it stands.
    """
    page = _page_decoder(fields)
    try:
        app_users = page.decoder.decode(body)
    except msgspec.ValidationError as error:
        raise SourceError(f"the answer does not parse as app users ({error})") from None
    except msgspec.DecodeError as error:
        raise SourceError(f"the answer is not JSON ({error})") from None
    except RecursionError:
        raise SourceError(f"the answer is {NESTING_MESSAGE}") from None
    assignments = [_assignment(app_user, page) for app_user in app_users]
    if projection is not None:
        _project(assignments, app_users, projection, page)
    return assignments


def _project(
    assignments: list[OktaAssignment], app_users: list[Any], projection: Projection, page: _PageDecoder
) -> None:
    """Each assignment's values, set in place (the cache is no part of the record's identity)."""
    read = page.values_reader(projection)
    if read is None:
        for assignment in assignments:
            _keep_values(assignment, projection, projection.read_okta(assignment))
        return
    for assignment, app_user in zip(assignments, app_users, strict=True):
        values = read(app_user)
        if msgspec.UNSET in values:  # a field this user's profile lacks: UNKNOWN, as the profile reader says
            values = tuple([UNKNOWN if value is msgspec.UNSET else value for value in values])
        _keep_values(assignment, projection, values)


def _keep_values(assignment: OktaAssignment, projection: Projection, values: tuple[Any, ...]) -> None:
    force_setattr(assignment, "values", values)
    force_setattr(assignment, "projection", projection)


EXPAND_DROPPED = "the answer ignored expand=user (a proxy or gateway that drops query parameters?)"
NOT_OKTAS_SHAPE = "Okta always sends it: the answer is not the shape Okta lists (a proxy or gateway altering it?)"


def _assignment(app_user: Any, page: _PageDecoder) -> OktaAssignment:
    """One app user; SourceError names a field the run needs that the answer lacks, the user and the likely cause.

    Nothing missing is read as a default (see docs/mapping.md, "When Okta's answer lacks a field"):
    a missing status would make the user ACTIVE, a missing profile would write nothing, or a default.
    """
    if not app_user.id:
        raise SourceError("an Okta app user has no id")
    user_name = app_user.credentials.userName if app_user.credentials else None
    if not user_name:
        raise SourceError(f"Okta app user {app_user.id} has no credentials.userName; {NOT_OKTAS_SHAPE}")
    who = f"Okta app user {app_user.id} ({user_name})"
    if not app_user.status:
        raise SourceError(f"{who} has no status; {NOT_OKTAS_SHAPE}")
    if app_user.profile is None:
        raise SourceError(f"{who} has no profile; {NOT_OKTAS_SHAPE}")
    embedded = app_user.embedded.user if app_user.embedded else None
    if embedded is None:
        raise SourceError(f"{who} has no _embedded.user: {EXPAND_DROPPED}")
    if not embedded.status:
        raise SourceError(f"{who} has no _embedded.user.status; {NOT_OKTAS_SHAPE}")
    if embedded.profile is None:
        raise SourceError(f"{who} has no _embedded.user.profile; {NOT_OKTAS_SHAPE}")
    return OktaAssignment(
        okta_user_id=app_user.id,
        user_name=user_name,
        app_status=_shared(app_user.status),
        user_status=_shared(embedded.status),
        scope=_shared(app_user.scope),
        sync_state=_shared(app_user.syncState),
        scim_id=app_user.externalId or None,
        app_profile=page.app_profile.as_mapping(app_user.profile),
        user_profile=page.user_profile.as_mapping(embedded.profile),
    )


def _shared(value: str | None) -> str | None:
    """One copy of each status word for all users, not one per user."""
    return None if value is None else sys.intern(value)


def assignment_from_app_user(data: Mapping[str, Any]) -> OktaAssignment:
    """One AppUser, as Okta sends it (camelCase JSON keys), as an :class:`OktaAssignment`.

    Takes the JSON object of a recorded response, or :func:`app_user_as_dict`
    of an SDK model, and reads it exactly as a listing page is read
    (:func:`decode_app_users`); an empty ``externalId``
    counts as none.
    """
    return decode_app_users(json.dumps([data]))[0]


def app_user_as_dict(app_user: Any) -> Mapping[str, Any]:
    """The camelCase dict of an SDK ``AppUser`` (or a dict, passed through).

    ``AppUser.to_dict()`` would drop ``externalId`` and ``_embedded`` (read-only
    in the spec), so this dumps the pydantic model by alias instead.
    """
    if isinstance(app_user, Mapping):
        return app_user
    dumped: dict[str, Any] = app_user.model_dump(by_alias=True, mode="json")
    return dumped
