"""The group apply stage: send a group plan's writes after the users' writes, recording each one.

It runs once the user actions are done, so that a member whose user this run
created can be named by the SCIM id the create returned. Each group action is
recorded as an intent before its requests and as an outcome after them, like
a user action; a crash between the two leaves the group half-changed, which
the next plan (made from the platform's groups as they then are) completes:
members are added and removed by name, never by replacing the whole list.

Order: a group is created, linked or renamed before memberships change, and
removals go before additions, so that a member moved between groups in one
run never is in neither; deletions (``delete_unpushed``) go last.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

from reconciler.errors import TargetError
from reconciler.models.groups import GroupAction, GroupActionKind
from reconciler.net.pacing import AdaptiveLimit
from reconciler.run.apply import ApplyResult
from reconciler.scim.groups import ScimGroups

log = logging.getLogger(__name__)

GROUP_PHASES: tuple[frozenset[GroupActionKind], ...] = (
    frozenset({GroupActionKind.CREATE_GROUP, GroupActionKind.LINK_GROUP, GroupActionKind.RENAME_GROUP}),
    frozenset({GroupActionKind.REMOVE_MEMBERS}),
    frozenset({GroupActionKind.ADD_MEMBERS}),
    frozenset({GroupActionKind.DELETE_GROUP}),
)


class GroupJournal(Protocol):
    """Where group intents and outcomes go: the store."""

    def record_group_intent(self, run_id: int, action: GroupAction) -> int: ...

    def record_group_outcome(
        self, action_id: int, succeeded: bool, error: str | None = None, scim_id: str | None = None
    ) -> None: ...

    def record_group_skipped(self, run_id: int, actions: Iterable[GroupAction], why: str | None = None) -> None: ...


class MembersLeftOut(TargetError):
    """Some members could not be named: their users have no platform user (a create failed or was held back)."""

    def __init__(self, left_out: list[str], scim_id: str | None) -> None:
        shown = ", ".join(left_out[:5]) + (f" and {len(left_out) - 5} more" if len(left_out) > 5 else "")
        super().__init__(
            f"{len(left_out)} member(s) not added, their platform users were not created in this run ({shown}); "
            "the next run adds them once the users exist"
        )
        self.scim_id = scim_id


class GroupApplier:
    """Sends one group plan's writes; a failed action does not stop the others."""

    def __init__(
        self,
        groups: ScimGroups,
        journal: GroupJournal,
        run_id: int,
        user_links: Mapping[str, str],
        *,
        limit: AdaptiveLimit,
        result: ApplyResult,
        max_error_ratio: float = 1.0,
    ) -> None:
        """``user_links``: Okta user id → SCIM id, including the users this run created.

        ``result`` is the run's: group writes count with the user writes, and
        stop when the users' writes already tripped the error-rate breaker.
        """
        self._groups = groups
        self._journal = journal
        self._run_id = run_id
        self._links = user_links
        self._limit = limit
        self._max_error_ratio = max_error_ratio
        self.result = result

    async def apply(self, actions: Iterable[GroupAction]) -> ApplyResult:
        writes = [a for a in actions if a.writes]
        for phase in GROUP_PHASES:
            await asyncio.gather(*(self._apply_one(a) for a in writes if a.kind in phase))
        return self.result

    async def _apply_one(self, action: GroupAction) -> None:
        async with self._limit:
            if self.result.breaker is not None:
                self._journal.record_group_skipped(self._run_id, [action], f"not sent: {self.result.breaker}")
                self.result.skipped += 1
                return
            action_id = self._journal.record_group_intent(self._run_id, action)
            try:
                scim_id = await self._send(action)
            except MembersLeftOut as error:
                self._fail(action_id, action, str(error), error.scim_id)
            except TargetError as error:
                self._fail(action_id, action, str(error))
                self.result.failed_on(error)
            except Exception as error:  # a bug must not stop the other actions; it is recorded
                log.exception("unexpected error applying %s %s", action.kind.value, action.name)
                self._fail(action_id, action, f"{type(error).__name__}: {error}")
            else:
                self._journal.record_group_outcome(action_id, True, None, scim_id)
                self.result.succeeded += 1
                self._limit.succeeded()

    def _fail(self, action_id: int, action: GroupAction, error: str, scim_id: str | None = None) -> None:
        self._journal.record_group_outcome(action_id, False, error, scim_id)
        self.result.failed += 1
        self.result.errors.append(f"{action.kind.value} {action.name}: {error}")
        fields = {"action": action.kind.value, "group": action.name, "error": error}
        log.warning("failed to %s %s: %s", action.kind.value, action.name, error, extra=fields)
        self.result.check_error_ratio(self._max_error_ratio)

    async def _send(self, action: GroupAction) -> str | None:
        match action.kind:
            case GroupActionKind.CREATE_GROUP:
                return await self._create(action)
            case GroupActionKind.LINK_GROUP:
                await self._groups.link_group(_scim_id(action), _okta_group_id(action))
            case GroupActionKind.RENAME_GROUP:
                await self._groups.rename_group(_scim_id(action), action.name)
            case GroupActionKind.ADD_MEMBERS:
                members, left_out = self._resolve(action.members)
                await self._groups.add_members(_scim_id(action), members)
                if left_out:
                    raise MembersLeftOut(left_out, action.scim_id)
            case GroupActionKind.REMOVE_MEMBERS:
                await self._groups.remove_members(_scim_id(action), action.members)
            case GroupActionKind.DELETE_GROUP:
                await self._groups.delete_group(_scim_id(action))
            case _:
                raise AssertionError(f"{action.kind} is not a write")
        return action.scim_id

    async def _create(self, action: GroupAction) -> str:
        members, left_out = self._resolve(action.members)
        created = await self._groups.create_group(action.name, _okta_group_id(action), members)
        if left_out:
            raise MembersLeftOut(left_out, created.scim_id)
        return created.scim_id

    def _resolve(self, okta_user_ids: Iterable[str]) -> tuple[list[str], list[str]]:
        """(the members' SCIM ids, the Okta ids of members with no platform user)."""
        found, left_out = [], []
        for okta_user_id in okta_user_ids:
            scim_id = self._links.get(okta_user_id)
            if scim_id is None:
                left_out.append(okta_user_id)
            else:
                found.append(scim_id)
        return found, left_out


def _scim_id(action: GroupAction) -> str:
    assert action.scim_id is not None, f"a {action.kind.value} names its platform group"
    return action.scim_id


def _okta_group_id(action: GroupAction) -> str:
    assert action.okta_group_id is not None, f"a {action.kind.value} names its Okta group"
    return action.okta_group_id
