"""Writes onto a userName the platform already holds: held back as conflicts before anything is sent.

SCIM keeps ``userName`` unique on a server and compares it case-insensitively
(RFC 7643 §4.1.1, ``caseExact: false``). A write that sets a name another
platform user holds is refused: with a 409 by a careful server, with a 500 by
others (a unique index raising inside the request). Either way the write is
wasted and, on a 500, counted as a failure that can stop the run. The plan
therefore sends no such write; each becomes a CONFLICT that names both users:

- a rename (an update, a link, or a reactivation that renames) or a create onto
  a name another platform user holds now, whatever that user's state: an
  inactive user keeps its name on every server we know;
- two or more writes onto the same new name: every one of them, since none can
  be preferred without a guess;
- a chain (A onto B's name while B is renamed away) and a swap (A onto B's name,
  B onto A's): held too. The writes of one phase go out together, so no order
  between them can be promised. A chain untangles by itself: B moves this run,
  A follows on the next. A swap never does: a person frees one of the names.

The rest of the plan proceeds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from reconciler.models.records import Action, ActionKind, Change, PlatformUser


def hold_taken_user_names(actions: Sequence[Action], actual: Sequence[PlatformUser]) -> list[Action]:
    """``actions`` with every write onto a taken or contended userName turned into a CONFLICT, in place."""
    claimants: dict[str, list[Action]] = defaultdict(list)
    renamed_to: dict[str, str] = {}
    """SCIM id → the name this plan gives it (to explain a chain or a swap)."""
    for action in actions:
        new_name = new_user_name(action)
        if new_name is not None:
            claimants[new_name.casefold()].append(action)
            if action.scim_id is not None:
                renamed_to[action.scim_id] = new_name
    if not claimants:
        return list(actions)
    holders: dict[str, list[PlatformUser]] = defaultdict(list)
    for user in actual:  # only the names some write would set: a plan's few, not the population's
        name = user.user_name.casefold()
        if name in claimants:
            holders[name].append(user)
    held: dict[int, Action] = {}
    for name, wanting in claimants.items():
        for action in wanting:
            reason = _why_held(action, wanting, holders.get(name, []), renamed_to)
            if reason is not None:
                held[id(action)] = _as_conflict(action, reason)
    return [held.get(id(action), action) for action in actions]


def new_user_name(action: Action) -> str | None:
    """The userName a write would set, or None when it leaves the name as it is."""
    if not action.writes:
        return None
    change = action.changes.get("userName")
    if change is not None and isinstance(change.after, str):
        return change.after
    return action.user_name if action.kind is ActionKind.CREATE else None


def _why_held(
    action: Action, wanting: Sequence[Action], holders: Sequence[PlatformUser], renamed_to: dict[str, str]
) -> str | None:
    new_name = new_user_name(action)
    subject = _subject(action)
    others = [user for user in holders if user.scim_id != action.scim_id]
    if others:
        holder = others[0]
        why = (
            f"{subject} would take userName {new_name!r}, held by platform user {holder.scim_id} "
            f"({holder.user_name!r}{_okta_of(holder)}); the server would refuse the write"
        )
        moving = renamed_to.get(holder.scim_id)
        if moving is None or moving.casefold() == holder.user_name.casefold():
            return f"{why}: free the name on the platform, or correct the login in Okta"
        if action.scim_id is not None and moving.casefold() == action.user_name.casefold():
            return f"{why}: a swap of two names, free one of them on the platform or in Okta"
        return f"{why}: that user is renamed to {moving!r} by this plan, the next run retries"
    if len(wanting) > 1:
        rivals = ", ".join(sorted(_subject(other) for other in wanting if other is not action))
        return (
            f"{subject} would take userName {new_name!r}, which this plan also gives to {rivals}; "
            "the server would refuse all but one: correct the logins in Okta"
        )
    return None


def _subject(action: Action) -> str:
    if action.scim_id is not None:
        return f"platform user {action.scim_id} (Okta user {action.okta_user_id})"
    return f"Okta user {action.okta_user_id}"


def _okta_of(user: PlatformUser) -> str:
    return f", Okta user {user.external_id}" if user.external_id else ""


def _as_conflict(action: Action, reason: str) -> Action:
    """The held write as a CONFLICT: only the rename it would have made is kept, for the report."""
    change = action.changes.get("userName") or Change(None, action.user_name)
    changes = {"userName": change}
    return Action(ActionKind.CONFLICT, action.user_name, action.okta_user_id, action.scim_id, reason, changes)
