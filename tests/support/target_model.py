"""An in-memory model of a SCIM target: applies a plan's writes as a server would."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from reconciler.models.records import Action, ActionKind, PlatformUser
from reconciler.models.scim_path import build_resource

APPLY_ORDER = (ActionKind.LINK, ActionKind.UPDATE, ActionKind.REACTIVATE, ActionKind.CREATE, ActionKind.DEACTIVATE)


class UserNameTaken(Exception):
    pass


def _as_user(resource: dict) -> PlatformUser:
    return PlatformUser(
        resource["id"], resource["userName"], resource.get("externalId"), bool(resource.get("active", True)), resource
    )


def apply_to_model(users: Sequence[PlatformUser], actions: Iterable[Action]) -> list[PlatformUser]:
    """The platform after ``actions``; a write onto a userName another user holds raises, like a 409."""
    by_id = {u.scim_id: u for u in users}
    new_ids = (f"created-{n}" for n in itertools.count(1) if f"created-{n}" not in by_id)  # ids a server never reuses
    writes = sorted((a for a in actions if a.writes), key=lambda a: APPLY_ORDER.index(a.kind))
    for action in writes:
        after = {path: change.after for path, change in action.changes.items()}
        if action.kind is ActionKind.CREATE:
            taken = {u.user_name.casefold() for u in by_id.values()}
            if action.user_name.casefold() in taken:
                raise UserNameTaken(action.user_name)
            resource = build_resource(after)
            resource["id"] = next(new_ids)
        else:
            assert action.scim_id is not None
            new_name = after.get("userName")
            held_by = {u.scim_id for u in by_id.values() if isinstance(new_name, str) and _same(u.user_name, new_name)}
            if held_by - {action.scim_id}:
                raise UserNameTaken(new_name)
            resource = build_resource(after, base=by_id[action.scim_id].resource)
        by_id[resource["id"]] = _as_user(resource)
    return list(by_id.values())


def _same(name: str, other: str) -> bool:
    """userName equality as SCIM has it: case-insensitive."""
    return name.casefold() == other.casefold()
