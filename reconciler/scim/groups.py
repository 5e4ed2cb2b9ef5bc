"""The platform's SCIM ``/Groups`` (RFC 7643 §4.2): read them, and write group repairs.

Built on the run's :class:`~reconciler.scim.http.ScimConnection` (its auth, retries,
masking and counting) and its reader's discovered capabilities, as the user writer is.
Membership changes are PATCHes of ``members`` in batches: a 5,000-member group
is never sent whole, and each batch names only the members it changes, so a
member added on the platform meanwhile is not lost.

Servers differ (docs/compatibility.md); what this adapts to, as the user writer
adapts to PUT-only servers, is learnt from the first refusal and kept for the run:

- a server that ignores ``members`` in a POST (django-scim2) gets the members its
  answer lacks added by PATCH;
- a server that answers 501 to ``remove`` of ``members[value eq "…"]`` (django-scim2)
  gets ``remove`` of ``members`` with a value list, the form others refuse (400);
- a server that answers 501 to a PATCH ``replace`` of ``displayName`` or
  ``externalId`` (django-scim2) gets the group read and PUT back whole with the
  one attribute changed, one group at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import quote

from reconciler.errors import TargetError, TargetNotFound
from reconciler.models.groups import PlatformGroup
from reconciler.net.transport import decode_json
from reconciler.scim.http import ScimConnection
from reconciler.scim.patch import patch_message
from reconciler.scim.reader import ScimReader, filter_string

GROUP_URN: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
MEMBER_BATCH: Final = 100
"""Members named in one PATCH: small enough for any server's payload limit, few enough requests for 5,000."""
MAX_GROUP_PAGES: Final = 10_000

log = logging.getLogger(__name__)


class ScimGroups:
    """Reads and writes ``/Groups`` over the run's connection; page size and capabilities from its reader."""

    def __init__(self, connection: ScimConnection, reader: ScimReader, member_batch: int = MEMBER_BATCH) -> None:
        if member_batch < 1:
            raise ValueError(f"member_batch must be at least 1, got {member_batch}")
        self._reader = reader
        self._connection = connection
        self._batch = member_batch
        self._filtered_remove = True
        """Whether ``remove`` of ``members[value eq "…"]`` is answered (until a 501 says otherwise)."""
        self._patch_replace = True
        """Whether a PATCH ``replace`` of a group attribute is answered (until a 501 says otherwise)."""
        self._put_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        """One read-then-PUT at a time per group: a second would put back what the first changed."""

    async def list_groups(self) -> list[PlatformGroup]:
        """Every group with its members, page by page; a listing that cannot be read whole raises TargetError."""
        capabilities = await self._reader.capabilities()
        page_size = min(self._reader.page_size, capabilities.max_results or self._reader.page_size)
        groups: dict[str, PlatformGroup] = {}
        start, total = 1, None
        for _ in range(MAX_GROUP_PAGES):
            response = await self._connection.send("GET", "/Groups", params={"startIndex": start, "count": page_size})
            page = decode_json(response.content)
            total, resources = _list_response(page)
            for resource in resources:
                group = to_platform_group(resource)
                groups[group.scim_id] = group
            if not resources or start + len(resources) > total:
                break
            start += len(resources)
        if total is not None and len(groups) < total:
            raise TargetError(f"SCIM GET /Groups listed {len(groups)} groups of the {total} it announced")
        return list(groups.values())

    async def create_group(self, name: str, okta_group_id: str, member_ids: Sequence[str]) -> PlatformGroup:
        """POST the group with its first batch of members, then PATCH the rest in batches."""
        batches = list(_batches(member_ids, self._batch))
        body = {
            "schemas": [GROUP_URN],
            "displayName": name,
            "externalId": okta_group_id,
            "members": [{"value": member} for member in (batches[0] if batches else ())],
        }
        response = await self._connection.send("POST", "/Groups", body=body)
        created = to_platform_group(_object(decode_json(response.content)))
        dropped = [member for member in body["members"] if member["value"] not in created.member_ids]
        if dropped:  # a server that takes no members in a POST (django-scim2)
            await self._patch(created.scim_id, [_add([member["value"] for member in dropped])])
        for batch in batches[1:]:
            await self._patch(created.scim_id, [_add(batch)])
        return created

    async def rename_group(self, scim_id: str, name: str) -> None:
        await self._replace(scim_id, "displayName", name)

    async def link_group(self, scim_id: str, okta_group_id: str) -> None:
        """Set ``externalId`` to the Okta group id, so the group stays matched through renames."""
        await self._replace(scim_id, "externalId", okta_group_id)

    async def delete_group(self, scim_id: str) -> None:
        """DELETE the group (only ever for ``[groups] delete_unpushed``); one already gone counts as deleted."""
        try:
            await self._connection.send("DELETE", f"/Groups/{quote(scim_id, safe='')}")
        except TargetNotFound:
            return

    async def add_members(self, scim_id: str, member_ids: Sequence[str]) -> int:
        """PATCH ``add`` of members, a batch per request; returns the requests sent."""
        batches = list(_batches(member_ids, self._batch))
        for batch in batches:
            await self._patch(scim_id, [_add(batch)])
        return len(batches)

    async def remove_members(self, scim_id: str, member_ids: Sequence[str]) -> int:
        """PATCH ``remove`` of ``members[value eq "…"]``, a batch of operations per request; returns the requests."""
        batches = list(_batches(member_ids, self._batch))
        for batch in batches:
            await self._remove_batch(scim_id, batch)
        return len(batches)

    async def _remove_batch(self, scim_id: str, member_ids: Sequence[str]) -> None:
        if self._filtered_remove:
            filtered = [_remove(member) for member in member_ids]
            if await self._patch_if_implemented(scim_id, filtered, "members are removed by a value list"):
                return
            self._filtered_remove = False
        operation = {"op": "remove", "path": "members", "value": [{"value": member} for member in member_ids]}
        await self._patch(scim_id, [operation])

    async def _replace(self, scim_id: str, attribute: str, value: str) -> None:
        """PATCH ``replace`` of one attribute; where the server does not implement it, the group is PUT."""
        if self._patch_replace:
            replace = [{"op": "replace", "path": attribute, "value": value}]
            if await self._patch_if_implemented(scim_id, replace, "groups are renamed and linked by PUT"):
                return
            self._patch_replace = False
        await self._put_with(scim_id, attribute, value)

    async def _put_with(self, scim_id: str, attribute: str, value: str) -> None:
        """Read the group now and PUT it back whole (members as read) with ``attribute`` set to ``value``."""
        path = f"/Groups/{quote(scim_id, safe='')}"
        async with self._put_locks[scim_id]:
            response = await self._connection.send("GET", path)
            resource = _object(decode_json(response.content))
            group = to_platform_group(resource)
            body: dict[str, Any] = {
                "schemas": [GROUP_URN],
                "id": group.scim_id,
                "displayName": group.display_name,
                "members": [{"value": member} for member in sorted(group.member_ids)],
            }
            if group.external_id is not None:
                body["externalId"] = group.external_id
            body[attribute] = value
            await self._connection.send("PUT", path, body=body, headers=await self._if_match(resource))

    async def _if_match(self, resource: dict[str, Any]) -> dict[str, str] | None:
        version = (resource.get("meta") or {}).get("version")
        if isinstance(version, str) and (await self._reader.capabilities()).etag_supported:
            return {"If-Match": version}
        return None

    async def _patch_if_implemented(self, scim_id: str, operations: list[dict[str, Any]], instead: str) -> bool:
        """PATCH; False when the server answers 501 Not Implemented, and ``instead`` says what is done from now on."""
        try:
            await self._patch(scim_id, operations)
        except TargetError as error:
            if error.status != HTTPStatus.NOT_IMPLEMENTED:
                raise
            log.warning("SCIM /Groups: %s; %s from now on", error, instead)
            return False
        return True

    async def _patch(self, scim_id: str, operations: list[dict[str, Any]]) -> None:
        await self._connection.send("PATCH", f"/Groups/{quote(scim_id, safe='')}", body=patch_message(operations))


def _add(member_ids: Sequence[str]) -> dict[str, Any]:
    return {"op": "add", "path": "members", "value": [{"value": member} for member in member_ids]}


def _remove(member_id: str) -> dict[str, Any]:
    return {"op": "remove", "path": f"members[value eq {filter_string(member_id)}]"}


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TargetError(f"SCIM /Groups answered a JSON {type(value).__name__} where a Group was expected")
    return value


def _list_response(page: Any) -> tuple[int, list[dict[str, Any]]]:
    page = _object(page)
    resources = page.get("Resources") or []
    total = page.get("totalResults")
    if not isinstance(resources, list) or not isinstance(total, int) or isinstance(total, bool):
        raise TargetError("SCIM GET /Groups answered a page without a usable totalResults and Resources")
    return total, [_object(resource) for resource in resources]


def to_platform_group(resource: dict[str, Any]) -> PlatformGroup:
    """A Group resource as the group plan reads it; TargetError for one without an id or displayName."""
    scim_id, name = resource.get("id"), resource.get("displayName")
    if not isinstance(scim_id, str) or not scim_id or not isinstance(name, str):
        raise TargetError(f"SCIM /Groups answered a Group without a usable id and displayName (id {scim_id!r})")
    external_id = resource.get("externalId")
    members = resource.get("members") or []
    member_ids = frozenset(
        str(member["value"]) for member in members if isinstance(member, dict) and member.get("value") is not None
    )
    return PlatformGroup(
        scim_id, name, external_id if isinstance(external_id, str) and external_id else None, member_ids
    )
