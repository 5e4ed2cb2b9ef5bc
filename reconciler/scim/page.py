"""SCIM users and ListResponse pages (RFC 7644 §3.4.2), decoded straight into PlatformUser records.

A listing of 100,000 users is about 60 MB of JSON. Pages are decoded with
msgspec, and each user is trimmed in place to the attributes a run compares:
``meta`` alone (timestamps, location) is a third of a user's memory. (A typed
decoder that skips the other attributes was measured slower: it builds each
kept value through Python.) Every user's identity (``id``, ``userName``,
``externalId``, ``active``) is checked by hand, with errors that name the
field, rather than through scim2-models' User: only these fields are read, and
the models forbid the vendor extensions real platforms carry.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any, Final

import msgspec
from msgspec.structs import force_setattr

from reconciler.models.records import PlatformUser
from reconciler.net.transport import NESTING_MESSAGE
from reconciler.plan.projection import Projection

IDENTITY_ATTRIBUTES: Final = frozenset({"id", "userName", "externalId", "active"})
"""Kept in every listed resource, whatever the mapping. (Not ``schemas``: only a PUT needs it, and a PUT
of a trimmed user reads it whole first.)"""


class PageError(ValueError):
    """A page that cannot be read; the message says why."""


def to_platform_user(resource: Mapping[str, Any]) -> PlatformUser:
    """A PlatformUser from a whole SCIM User resource (a dict), kept whole.

    ``active`` has no default in RFC 7643; an absent or null ``active`` is read
    as True, since platforms list their usable users and many never send it.
    Raises ValueError naming the first field that is missing or of the wrong type.
    """
    return checked_user(resource, _meta_version(resource.get("meta")), False)


def checked_user(
    resource: Mapping[str, Any],
    version: Any,
    partial: bool,
    kept: Mapping[str, Any] | None = None,
    values: tuple[Any, ...] | None = None,
    projection: Projection | None = None,
) -> PlatformUser:
    """The PlatformUser of a resource whose identity attributes are what a SCIM user's must be;
    ``kept``: what it keeps as its resource, when not ``resource`` itself."""
    scim_id, user_name = resource.get("id"), resource.get("userName")
    if not isinstance(scim_id, str) or not scim_id:
        raise ValueError(f"id is required and must be a non-empty string (got {scim_id!r})")
    if not isinstance(user_name, str) or not user_name:
        raise ValueError(f"userName is required and must be a non-empty string (got {user_name!r})")
    external_id, active = resource.get("externalId"), resource.get("active")
    if external_id is not None and not isinstance(external_id, str):
        raise ValueError(f"externalId must be a string (got {external_id!r})")
    if active is not None and not isinstance(active, bool):
        raise ValueError(f"active must be true or false (got {active!r})")
    if version is not None and not isinstance(version, str):
        raise ValueError(f"meta.version must be a string (got {version!r})")
    return PlatformUser(
        scim_id=scim_id,
        user_name=user_name,
        external_id=external_id,
        active=True if active is None else active,
        resource=resource if kept is None else kept,
        version=version,
        partial=partial,
        values=values,
        projection=projection,
    )


def _meta_version(meta: Any) -> Any:
    return meta.get("version") if isinstance(meta, Mapping) else None


class _Envelope(msgspec.Struct):
    """A ListResponse with its users left undecoded, for pages of whole users."""

    totalResults: Any = None  # noqa: N815 - SCIM's JSON names
    Resources: Any = None  # noqa: N815


class PageDecoder:
    """Decodes ``GET /Users`` pages; with ``keep``, trims each user to those attributes as it goes."""

    def __init__(self, keep: frozenset[str] | None) -> None:
        self._allowed = None if keep is None else keep | IDENTITY_ATTRIBUTES
        self._decoder = msgspec.json.Decoder(_Envelope)

    def decode(self, body: bytes, projection: Projection | None = None) -> tuple[int, list[PlatformUser]]:
        """``(totalResults, users)``; PageError (or ValueError from a user) says what is wrong.

        With ``projection`` (whose attributes ``keep`` must include), each user also carries the mapped
        values the plan compares, read once here.
        """
        total, resources = self.envelope(body)
        return total, self.users(resources, projection)

    def envelope(self, body: bytes) -> tuple[int, list[dict[str, Any]]]:
        """``(totalResults, Resources)`` of a page, its users decoded to dicts but not yet read."""
        try:
            page = self._decoder.decode(body)
        except msgspec.ValidationError as error:
            raise PageError(f"a malformed ListResponse: {error}") from None
        except msgspec.DecodeError as error:
            raise PageError(f"malformed JSON: {error}") from None
        except RecursionError:
            raise PageError(NESTING_MESSAGE) from None
        total = page.totalResults
        if total is None:
            raise PageError("a ListResponse without totalResults")
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise PageError(f"a malformed ListResponse: totalResults is {total!r}, not a count")
        resources = page.Resources or []
        if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
            raise PageError("Resources that are not a list of objects")
        return total, resources

    def users(self, resources: list[dict[str, Any]], projection: Projection | None = None) -> list[PlatformUser]:
        """The records of some of a page's users (see :meth:`decode`); ValueError names what is wrong."""
        if self._allowed is None:
            users = [to_platform_user(resource) for resource in resources]
            if projection is not None:
                for user in users:
                    force_setattr(user, "values", projection.pack(user.resource))
                    force_setattr(user, "projection", projection)
            return users
        return [self._listed_user(resource, self._allowed, projection) for resource in resources]

    @staticmethod
    def _listed_user(resource: dict[str, Any], allowed: frozenset[str], projection: Projection | None) -> PlatformUser:
        """Drop, in place, what the run does not compare (``meta`` above all: a third of a user's memory);
        with a projection, read the values the plan compares and keep the rest as JSON."""
        version = _meta_version(resource.get("meta"))
        for key in resource.keys() - allowed:
            del resource[key]
        if projection is None:
            return checked_user(resource, version, True)
        values = projection.pack(resource)
        return checked_user(resource, version, True, StoredResource(_encode(resource)), values, projection)


class StoredResource(Mapping[str, Any]):
    """A listed user's kept attributes, held as their JSON and decoded only when read.

    Once a page is decoded with a projection, the plan compares the values it
    read and never the resource: only the few users a run writes to, or a saved
    plan names, are read again. As JSON a user's kept attributes take a third of
    the memory of the dicts they decode to, which at 100,000 users is most of
    the platform side's.
    """

    __slots__ = ("_json", "_decoded")

    def __init__(self, encoded: bytes) -> None:
        self._json = encoded
        self._decoded: dict[str, Any] | None = None

    def _resource(self) -> dict[str, Any]:
        if self._decoded is None:
            self._decoded = _decode(self._json)
        return self._decoded

    def __getitem__(self, key: str) -> Any:
        return self._resource()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resource())

    def __len__(self) -> int:
        return len(self._resource())

    def __repr__(self) -> str:
        return repr(self._resource())


class _ReleasedResource(Mapping[str, Any]):
    """What a listed user keeps once the plan has found it in sync: nothing. Reading it is a bug, and says so."""

    def __getitem__(self, key: str) -> Any:
        raise self._error()

    def __iter__(self) -> Iterator[str]:
        raise self._error()

    def __len__(self) -> int:
        raise self._error()

    def __repr__(self) -> str:
        return "<released: the plan found this user in sync>"

    @staticmethod
    def _error() -> RuntimeError:
        return RuntimeError(
            "a platform user's attributes were read after the plan found the user in sync and released them: "
            "nothing sends a write to such a user (a bug in the caller)"
        )


RELEASED: Final[Mapping[str, Any]] = _ReleasedResource()


def release_resource(user: PlatformUser) -> None:
    """Let go of a listed user's kept attributes once the plan has found it in sync: no write and no saved
    plan reads them (those read only the users an action names), and at 100,000 users they are a sixth of
    the run's memory. Only a trimmed (``partial``) user is released: a whole one is a caller's own."""
    if user.partial:
        force_setattr(user, "resource", RELEASED)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


@functools.lru_cache(maxsize=16)
def page_decoder(keep: frozenset[str] | None) -> PageDecoder:
    return PageDecoder(keep)
