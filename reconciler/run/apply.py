"""The apply stage: send a plan's writes to the platform, recording each one.

Every action is recorded as an intent before its request and as an outcome
after it, so a crash loses at most the actions in flight, and those show as
``pending`` (then ``interrupted``) in the store. One failure does not stop the
rest. Nothing here decides *what* to write: that is the plan's job; the next
plan is computed from live state, so whatever a crash leaves half-done converges
on the next run without duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any, Protocol

from reconciler.errors import TargetConflict, TargetError, TargetNotFound
from reconciler.hooks import NO_PROGRESS, ProgressListener
from reconciler.models.records import Action, ActionKind, Change, PlatformUser, looks_like_okta_user_id
from reconciler.models.scim_path import build_resource, parse_target_path, read_attribute, set_value
from reconciler.net.pacing import AdaptiveLimit

log = logging.getLogger(__name__)

PHASES: tuple[frozenset[ActionKind], ...] = (
    frozenset({ActionKind.LINK, ActionKind.UPDATE, ActionKind.REACTIVATE}),
    frozenset({ActionKind.CREATE}),
    frozenset({ActionKind.DEACTIVATE}),
)
"""Renames go first so that a CREATE taking a released userName does not meet a 409,
and deactivations go last so that an error earlier stops nothing a person needs."""

DEFAULT_WRITE_CONCURRENCY = 4
BREAKER_MIN_ATTEMPTS = 10
"""The error-rate breaker judges a ratio only once this many writes were attempted."""


class Writer(Protocol):
    async def create_user(self, resource: Mapping[str, Any]) -> PlatformUser: ...

    async def patch_user(self, user: PlatformUser, operations: Sequence[Mapping[str, Any]]) -> PlatformUser | None: ...

    async def find_by_user_name(self, user_name: str) -> list[PlatformUser]: ...


class Journal(Protocol):
    """Where intents and outcomes go: the store."""

    def record_intent(self, run_id: int, action: Action) -> int: ...

    def record_outcome(
        self, action_id: int, succeeded: bool, error: str | None = None, scim_id: str | None = None
    ) -> None: ...

    def record_skipped(self, run_id: int, actions: Iterable[Action], why: str | None = None) -> None: ...


@dataclass
class ApplyResult:
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    """Writes not sent because the error-rate breaker tripped."""
    errors: list[str] = field(default_factory=list)
    """One line per failed action: who, what, why."""
    breaker: str | None = None
    """Why sending stopped early (the error-rate breaker, or the platform refusing the token); None if it did not."""
    created: dict[str, str] = field(default_factory=dict)
    """Okta user id → SCIM id of each user this run created (or found already there and linked)."""

    @property
    def attempted(self) -> int:
        return self.succeeded + self.failed

    def stop_sending(self, why: str) -> None:
        """Send no more writes in this run (those in flight finish): every next one would fail the same way."""
        if self.breaker is None:
            self.breaker = why
            log.error("%s; sending no more writes in this run", why)

    def check_error_ratio(self, max_error_ratio: float) -> None:
        """Stop sending once too large a share of the writes failed (after their retries)."""
        if self.breaker is None and self.attempted >= BREAKER_MIN_ATTEMPTS:
            if self.failed / self.attempted > max_error_ratio:
                self.stop_sending(
                    f"error-rate breaker: {self.failed} of {self.attempted} writes failed, "
                    f"above max_error_ratio = {max_error_ratio:g}"
                )

    def failed_on(self, error: TargetError) -> None:
        """A 401 stops sending: every next write would meet it too."""
        if error.status == HTTPStatus.UNAUTHORIZED:
            self.stop_sending(f"sending stopped at the first 401 (every next write would meet it too): {error}")


def patch_operations(resource: Mapping[str, Any], changes: Mapping[str, Change]) -> list[dict[str, Any]]:
    """SCIM PATCH operations for ``changes`` on ``resource``.

    A change of one entry of a multi-valued attribute (``emails[type eq "work"].value``)
    replaces the whole attribute with its other entries kept: filtered paths are
    the part of RFC 7644 PATCH that servers support least.
    """
    operations: list[dict[str, Any]] = []
    multi_valued: dict[str, dict[str, Any]] = {}
    for text, change in changes.items():
        if text in ("active", "externalId"):
            operations.append({"op": "replace", "path": text, "value": change.after})
            continue
        path = parse_target_path(text)
        if path.entry_type is not None:
            attribute_path = text.partition("[")[0]
            scratch = multi_valued.setdefault(attribute_path, {path.attribute: read_attribute(resource, path)})
            set_value(scratch, replace(path, schema=None), change.after)
        elif change.after is None:
            operations.append({"op": "remove", "path": text})
        else:
            operations.append({"op": "replace", "path": text, "value": change.after})
    for attribute_path, scratch in multi_valued.items():
        (entries,) = scratch.values()
        operations.append({"op": "replace", "path": attribute_path, "value": entries})
    return operations


def _describe(action: Action) -> str:
    return f"{action.kind.value} {action.user_name}"


class Applier:
    """Sends one plan's writes with bounded concurrency."""

    def __init__(
        self,
        writer: Writer,
        journal: Journal,
        run_id: int,
        actual: Sequence[PlatformUser],
        concurrency: int = DEFAULT_WRITE_CONCURRENCY,
        max_error_ratio: float = 1.0,
        *,
        limit: AdaptiveLimit | None = None,
        progress: ProgressListener = NO_PROGRESS,
    ) -> None:
        """``limit`` caps the writes in flight; give the one the writer reports 429s to, so it adapts."""
        self._max_error_ratio = max_error_ratio
        self._writer = writer
        self._journal = journal
        self._run_id = run_id
        self._users = {u.scim_id: u for u in actual}
        self._limit = limit or AdaptiveLimit(concurrency)
        self._progress = progress
        self.result = ApplyResult()

    async def apply(self, actions: Iterable[Action]) -> ApplyResult:
        writes = [a for a in actions if a.writes]
        self._progress.apply_started(len(writes))
        for phase in PHASES:
            await asyncio.gather(*(self._apply_one(a) for a in writes if a.kind in phase))
        return self.result

    async def _apply_one(self, action: Action) -> None:
        async with self._limit:
            await self._apply_within_limit(action)

    async def _apply_within_limit(self, action: Action) -> None:
        if self.result.breaker is not None:
            self._journal.record_skipped(self._run_id, [action], f"not sent: {self.result.breaker}")
            self.result.skipped += 1
            return
        action_id = self._journal.record_intent(self._run_id, action)
        try:
            scim_id = await self._send(action)
        except TargetError as error:
            self._fail(action_id, action, str(error))
            self.result.failed_on(error)
        except Exception as error:  # a bug must not stop the other actions; it is recorded
            log.exception("unexpected error applying %s", _describe(action))
            self._fail(action_id, action, f"{type(error).__name__}: {error}")
        else:
            self._journal.record_outcome(action_id, True, None, scim_id)
            if action.kind is ActionKind.CREATE and action.okta_user_id and scim_id:
                self.result.created[action.okta_user_id] = scim_id
            self.result.succeeded += 1
            self._limit.succeeded()
            self._progress.write_done(True)

    def _fail(self, action_id: int, action: Action, error: str) -> None:
        self._journal.record_outcome(action_id, False, error)
        self._progress.write_done(False)
        self.result.failed += 1
        self.result.errors.append(f"{_describe(action)}: {error}")
        fields = {"action": action.kind.value, "user_name": action.user_name, "error": error}
        log.warning("failed to %s: %s", _describe(action), error, extra=fields)
        self.result.check_error_ratio(self._max_error_ratio)

    async def _send(self, action: Action) -> str | None:
        if action.kind is ActionKind.CREATE:
            return await self._create(action)
        assert action.scim_id is not None, "only a CREATE has no platform user"
        user = self._users[action.scim_id]
        await self._patch(user, action)
        return user.scim_id

    async def _patch(self, user: PlatformUser, action: Action) -> None:
        """PATCH ``action``'s changes onto ``user``; a 404 says the user was deleted on the platform meanwhile.

        Nothing is recreated in this run: the next plan, made from what the
        platform then holds, decides (a user Okta still wants is created again).
        """
        try:
            await self._writer.patch_user(user, patch_operations(user.resource, action.changes))
        except TargetNotFound as error:
            raise TargetError(
                f"platform user {user.scim_id} was deleted on the platform after this run read it ({error}); "
                "the next run plans from what the platform then holds",
                error.status,
                error.scim_type,
            ) from error

    async def _create(self, action: Action) -> str:
        resource = build_resource({path: change.after for path, change in action.changes.items()})
        try:
            created = await self._writer.create_user(resource)
        except TargetConflict as conflict:
            return await self._link_existing(action, conflict)
        return created.scim_id

    async def _link_existing(self, action: Action, conflict: TargetConflict) -> str:
        """A 409 on create means the user is already there: find it and link it.

        It may have been created since the plan was made (by Okta's own push, or a
        run that crashed after its POST). It is linked only when nothing says it
        belongs to another Okta user.
        """
        found = [
            u
            for u in await self._writer.find_by_user_name(action.user_name)
            if u.user_name.casefold() == action.user_name.casefold()
        ]
        if not found:
            raise TargetError(
                f"{conflict}; but no platform user with userName {action.user_name!r} was found to link: "
                "the conflict is on another attribute, or with a user the platform does not list",
                conflict.status,
                conflict.scim_type,
            )
        if len(found) > 1:
            raise TargetError(f"409 on create, and {len(found)} platform users have userName {action.user_name!r}")
        user = found[0]
        if looks_like_okta_user_id(user.external_id) and user.external_id != action.okta_user_id:
            raise TargetError(
                f"409 on create: userName {action.user_name!r} is held by platform user {user.scim_id}, "
                f"linked to another Okta user {user.external_id}"
            )
        await self._patch(user, action)
        log.info("%s already existed as %s: linked it", action.user_name, user.scim_id)
        return user.scim_id
