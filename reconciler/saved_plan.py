"""Saved plans, as in Terraform: ``--dry-run --save-plan FILE``, then ``apply FILE``.

A person reviews the plan a dry-run wrote, and ``reconcile apply`` sends
*exactly* that plan, never a newer one computed behind their back. Live state is
re-read first: each action carries a digest of its subject's state at plan time
(the Okta assignment and the platform user it is about), and an action whose
subject changed since is skipped and reported as stale, never applied blindly.

The file (JSON, mode 0600, written atomically) holds no secret. It records the
configuration's fingerprint, so a plan made for another app or endpoint is
refused, and an HMAC over its content, so that an edited file is refused too
(see :func:`signing_key` for why the key is derived from the credentials).

Format, version 1::

    {
      "format": "okta-reconciler saved plan",
      "version": 1,
      "created_at": "2025-01-31T09:00:00Z",
      "fingerprint": "<config fingerprint>",
      "target": {"okta_org_url": ..., "okta_app_id": ..., "scim_base_url": ...},
      "run_id": 12,                      # the dry-run that made the plan
      "summary": {"create": 3, ..., "in_sync": 80},
      "gate": {"blocked": false, "stop_all": false, "trips": [{"kind": ..., "reason": ...}]},
      "actions": [{<Action.to_json()>, "subject_digest": "<sha256 hex>"}, ...],
      "groups": {...},                   # with [groups] only: see reconciler.saved_group_plan
      "signature": {"algorithm": "HMAC-SHA256", "value": "<hex>"}
    }

The signature covers the canonical JSON (sorted keys, no whitespace) of every
member but ``signature``, so re-indenting the file does not break it; changing
any value does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console
from rich.markup import escape

from reconciler.alerts import alert_after_run
from reconciler.apply import ApplyResult
from reconciler.config import Config, fingerprint
from reconciler.digest import canonical_json, digest_of
from reconciler.errors import ReconcileError
from reconciler.gate import GateDecision, GroupPopulations, Populations, Trip, evaluate
from reconciler.group_plan import GroupAction
from reconciler.okta_source import OktaSource
from reconciler.plan import group_member_links, plan
from reconciler.progress import NO_PROGRESS, ProgressListener
from reconciler.reconcile import (
    RunOutcome,
    applier_for,
    failures_recorded,
    group_applier_for,
    okta_source,
    read_both_sides,
    read_groups,
    scim_reader,
)
from reconciler.records import Action, ActionKind, Change, OktaAssignment, Plan, PlatformUser
from reconciler.saved_group_plan import (
    GroupLiveState,
    SavedGroups,
    StaleGroupAction,
    group_action_json,
    groups_document,
    parse_groups,
    split_stale_groups,
)
from reconciler.scim_target import ScimReader
from reconciler.store import RunMode, RunStatus, Store

log = logging.getLogger(__name__)

FORMAT: Final = "okta-reconciler saved plan"
VERSION: Final = 1
SIGNATURE_ALGORITHM: Final = "HMAC-SHA256"
_KEY_LABEL: Final = "okta-reconciler saved-plan signing key, v1"
"""Domain separation: this key signs saved plans and nothing else."""

Confirm = Callable[[str], bool]
"""Asked, with the reason, whether a plan above the thresholds may be applied."""


class SavedPlanError(ReconcileError):
    """A plan file that cannot be used: unreadable, not a plan, edited, or for another target."""


# --- canonical JSON and digests ---------------------------------------------------------------


def _plain(value: Any) -> Any:
    """``value`` with every Mapping a dict and every tuple a list, as JSON would read it back."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def assignment_state(assignment: OktaAssignment | None) -> dict[str, Any] | None:
    """Every field of the assignment, as plain JSON."""
    if assignment is None:
        return None
    return {name: _plain(getattr(assignment, name)) for name in assignment.__struct_fields__}


def resource_state(user: PlatformUser | None) -> dict[str, Any] | None:
    """The SCIM resource without ``meta``: a server may bump lastModified without a change."""
    if user is None:
        return None
    return {key: _plain(value) for key, value in user.resource.items() if key != "meta"}


class LiveState:
    """Both sides as read, indexed to find each action's subject."""

    def __init__(self, desired: Sequence[OktaAssignment], actual: Sequence[PlatformUser]) -> None:
        self.desired = list(desired)
        self.actual = list(actual)
        self._assignments = {a.okta_user_id: a for a in desired}
        self._users = {u.scim_id: u for u in actual}

    def platform_user(self, scim_id: str) -> PlatformUser | None:
        return self._users.get(scim_id)

    def claimants(self, action: Action) -> list[PlatformUser]:
        """Platform users a CREATE would collide with: same userName, or linked to the same Okta user."""
        folded = action.user_name.casefold()
        found = [
            u
            for u in self.actual
            if u.user_name.casefold() == folded
            or (action.okta_user_id is not None and u.external_id == action.okta_user_id)
        ]
        return sorted(found, key=lambda u: u.scim_id)

    def subject_state(self, action: Action) -> dict[str, Any]:
        """What the action is about: its Okta assignment and its platform user, whichever exist.

        A CREATE has no platform user yet; its subject includes the platform
        users that would claim it, so a plan applied twice (or after Okta's own
        push) finds its creates stale instead of making duplicates.
        """
        assignment = self._assignments.get(action.okta_user_id) if action.okta_user_id else None
        state: dict[str, Any] = {"okta_assignment": assignment_state(assignment)}
        if action.scim_id is not None:
            state["platform_user"] = resource_state(self.platform_user(action.scim_id))
        else:
            state["platform_claimants"] = [resource_state(u) for u in self.claimants(action)]
        return state

    def subject_digest(self, action: Action) -> str:
        return digest_of(self.subject_state(action))


# --- signing ----------------------------------------------------------------------------------


def signing_key(config: Config) -> bytes:
    """The HMAC key: a sha256 of a label, the SCIM token and the Okta token or private key.

    Why a key derived from the credentials, rather than a key of its own:

    - anyone able to forge a signature already holds the SCIM token (and the
      Okta credential), which write to the platform directly: the signature
      cannot be bypassed by anyone it is meant to stop, and a separate key
      would be one more secret to deploy, protect and rotate;
    - the file carries no secret, only a MAC that reveals nothing about the key;
    - rotating either credential invalidates every plan signed before, which is
      what a rotation after a leak should do; the message then says
      "signed with other credentials: make a new plan".
    """
    okta_secret = config.okta.token or config.okta.private_key
    material = [_KEY_LABEL, config.scim.token.reveal(), okta_secret.reveal() if okta_secret else ""]
    return hashlib.sha256(canonical_json(material)).digest()


def signature_of(document: Mapping[str, Any], key: bytes) -> str:
    """HMAC-SHA256 over the canonical JSON of every member but ``signature``."""
    signed = {name: value for name, value in document.items() if name != "signature"}
    return hmac.new(key, canonical_json(signed), hashlib.sha256).hexdigest()


# --- writing ----------------------------------------------------------------------------------


def public_url(url: str) -> str:
    """``url`` without any user:password part, for a file that must hold no secret."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def target_identity(config: Config) -> dict[str, str]:
    """What the fingerprint stands for, readable, for messages."""
    return {
        "okta_org_url": public_url(config.okta.org_url),
        "okta_app_id": config.okta.app_id,
        "scim_base_url": public_url(config.scim.base_url),
    }


def _gate_json(gate: GateDecision) -> dict[str, Any]:
    return {
        "blocked": gate.blocked,
        "stop_all": gate.stop_all,
        "trips": [{"kind": trip.kind, "reason": trip.reason} for trip in gate.trips],
    }


def plan_document(config: Config, outcome: RunOutcome, created_at: datetime | None = None) -> dict[str, Any]:
    """The signed document for a dry-run's plan; ``outcome`` must carry the plan, its gate and both sides."""
    if outcome.plan is None or outcome.gate is None:
        raise SavedPlanError("no plan to save: the run failed before planning")
    live = LiveState(outcome.desired, outcome.actual)
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": _utc_text(created_at or datetime.now(UTC)),
        "fingerprint": fingerprint(config),
        "target": target_identity(config),
        "run_id": outcome.run_id,
        "summary": outcome.plan.summary(),
        "gate": _gate_json(outcome.gate),
        "actions": [
            _plain(action.to_json()) | {"subject_digest": live.subject_digest(action)}
            for action in outcome.plan.actions
        ],
    }
    if outcome.group_plan is not None:
        group_live = GroupLiveState(outcome.desired_groups, outcome.actual_groups, outcome.group_links)
        document["groups"] = groups_document(outcome.group_plan, group_live)
    document["signature"] = {"algorithm": SIGNATURE_ALGORITHM, "value": signature_of(document, signing_key(config))}
    return document


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, mode 0600: a temporary file beside it, then a rename.

    A reader sees the old file or the whole new one, never a part; the plan
    lists user names and e-mail addresses, hence 0600.
    """
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def save_plan(path: Path, config: Config, outcome: RunOutcome) -> dict[str, Any]:
    """Write the dry-run's plan to ``path``; returns the document written."""
    document = plan_document(config, outcome)
    try:
        write_private_file(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    except OSError as error:
        raise SavedPlanError(f"{path}: cannot write the plan file: {error.strerror or error}") from None
    return document


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedAction:
    action: Action
    subject_digest: str


@dataclass(frozen=True)
class SavedPlan:
    path: Path
    created_at: datetime
    fingerprint: str
    target: Mapping[str, str]
    run_id: int
    in_sync: int
    actions: tuple[SavedAction, ...]
    trips: tuple[Trip, ...]
    """What the gate said when the plan was made (the reviewer saw it)."""
    groups: SavedGroups | None = None
    """The group actions, when the plan was made with ``[groups]``."""

    @property
    def plan(self) -> Plan:
        return Plan(tuple(saved.action for saved in self.actions), self.in_sync)

    @property
    def writes(self) -> list[SavedAction]:
        return [saved for saved in self.actions if saved.action.writes]

    @property
    def write_count(self) -> int:
        """User and group writes."""
        return len(self.writes) + (len(self.groups.writes) if self.groups is not None else 0)


def load_plan(path: Path, config: Config) -> SavedPlan:
    """Read, check and verify a plan file for ``config``; SavedPlanError says what is wrong with it.

    The target is checked before the signature: a plan for another app was
    signed with that app's credentials, and "made for another app" is the
    useful message then. Either check can only refuse.
    """
    document = _read_document(path)
    _check_format(path, document)
    _check_target(path, document, config)
    _check_signature(path, document, config)
    try:
        return _parse(path, document)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise SavedPlanError(f"{path}: a malformed saved plan ({type(error).__name__}: {error})") from None


def _read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SavedPlanError(f"{path}: cannot read the plan file: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise SavedPlanError(f"{path}: not a saved plan: the file is not UTF-8 text") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise SavedPlanError(
            f"{path}: not a saved plan: invalid JSON ({error.msg} at line {error.lineno}, column {error.colno}); "
            "was the file cut short or edited? Make a new plan"
        ) from None
    if not isinstance(document, dict):
        raise SavedPlanError(f"{path}: not a saved plan: expected a JSON object")
    return document


def _check_format(path: Path, document: Mapping[str, Any]) -> None:
    if document.get("format") != FORMAT:
        raise SavedPlanError(f'{path}: not a saved plan of okta-reconciler (no "format": "{FORMAT}")')
    if document.get("version") != VERSION:
        raise SavedPlanError(
            f"{path}: saved-plan format version {document.get('version')!r} is not one this reconciler reads "
            f"(version {VERSION}): make a new plan with this version"
        )


def _describe_target(target: Mapping[str, Any]) -> str:
    return (
        f"Okta app {target.get('okta_app_id')} of {target.get('okta_org_url')} "
        f"at SCIM endpoint {target.get('scim_base_url')}"
    )


def _check_target(path: Path, document: Mapping[str, Any], config: Config) -> None:
    if document.get("fingerprint") == fingerprint(config):
        return
    saved = document.get("target")
    made_for = _describe_target(saved) if isinstance(saved, Mapping) else "another app or endpoint"
    raise SavedPlanError(
        f"{path}: refusing this plan: it was made for {made_for}; "
        f"this config is {_describe_target(target_identity(config))}. Make a plan with this config"
    )


def _check_signature(path: Path, document: Mapping[str, Any], config: Config) -> None:
    signature = document.get("signature")
    if not isinstance(signature, Mapping) or signature.get("algorithm") != SIGNATURE_ALGORITHM:
        raise SavedPlanError(f"{path}: refusing this plan: it carries no {SIGNATURE_ALGORITHM} signature")
    value = signature.get("value")
    try:
        expected = signature_of(document, signing_key(config))
    except ValueError:  # NaN or Infinity: json reads them, but we never write them
        expected = ""
    if not isinstance(value, str) or not hmac.compare_digest(value.encode(), expected.encode()):
        raise SavedPlanError(
            f"{path}: refusing this plan: its signature does not match. The file was changed after it was saved, "
            "or it was signed with other credentials (a rotated token): make a new plan"
        )


def _parse(path: Path, document: Mapping[str, Any]) -> SavedPlan:
    created_at = datetime.fromisoformat(document["created_at"])
    if created_at.tzinfo is None:
        raise ValueError("created_at has no time zone")
    return SavedPlan(
        path=path,
        created_at=created_at.astimezone(UTC),
        fingerprint=str(document["fingerprint"]),
        target=dict(document["target"]),
        run_id=int(document["run_id"]),
        in_sync=int(document["summary"]["in_sync"]),
        actions=tuple(_saved_action(item) for item in document["actions"]),
        trips=tuple(Trip(str(t["kind"]), str(t["reason"])) for t in document["gate"]["trips"]),
        groups=parse_groups(document["groups"]) if "groups" in document else None,
    )


def _saved_action(item: Mapping[str, Any]) -> SavedAction:
    action = Action(
        kind=ActionKind(item["kind"]),
        user_name=str(item["user_name"]),
        okta_user_id=item["okta_user_id"],
        scim_id=item["scim_id"],
        reason=str(item["reason"]),
        changes={str(path): Change(c["before"], c["after"]) for path, c in item["changes"].items()},
    )
    digest = item["subject_digest"]
    if not isinstance(digest, str) or len(digest) != 64:
        raise ValueError(f"subject_digest of {action.user_name!r} is not a sha256")
    return SavedAction(action, digest)


# --- applying ---------------------------------------------------------------------------------


@dataclass
class StaleAction:
    action: Action
    why: str


@dataclass
class PlanApplyOutcome:
    run_id: int
    status: RunStatus
    writes: int
    """How many writes the saved plan holds."""
    applied: ApplyResult = field(default_factory=ApplyResult)
    stale: list[StaleAction] = field(default_factory=list)
    stale_groups: list[StaleGroupAction] = field(default_factory=list)
    gate: GateDecision | None = None
    confirmed: bool = True
    """False when the plan exceeded thresholds and the apply was not confirmed."""
    error: str | None = None

    @property
    def complete(self) -> bool:
        """Every write of the plan was applied."""
        return self.status is RunStatus.SUCCEEDED and self.applied.succeeded == self.writes


def stale_reason(action: Action, live: LiveState) -> str:
    """Why a stale action is skipped, naming its subject."""
    if action.scim_id is not None and live.platform_user(action.scim_id) is None:
        return f"stale: platform user {action.scim_id} is gone since the plan was made"
    parts = []
    if action.okta_user_id is not None:
        parts.append(f"Okta user {action.okta_user_id}'s assignment")
    if action.scim_id is not None:
        parts.append(f"platform user {action.scim_id}")
    else:
        parts.append(f"the platform users matching {action.user_name}")
    return f"stale: {' or '.join(parts)} changed since the plan was made"


def split_stale(saved: SavedPlan, live: LiveState) -> tuple[list[Action], list[StaleAction]]:
    """The plan's writes whose subject is as it was at plan time, and the others with why."""
    current: list[Action] = []
    stale: list[StaleAction] = []
    for entry in saved.writes:
        if live.subject_digest(entry.action) == entry.subject_digest:
            current.append(entry.action)
        else:
            stale.append(StaleAction(entry.action, stale_reason(entry.action, live)))
    return current, stale


def threshold_question(gate: GateDecision, current: int) -> str:
    return f"this plan exceeds thresholds: {gate.reason}; it was reviewed ({current} write(s) still current)"


async def apply_saved_plan(
    config: Config,
    store: Store,
    saved: SavedPlan,
    confirm: Confirm,
    *,
    progress: ProgressListener = NO_PROGRESS,
) -> PlanApplyOutcome:
    """Apply a verified plan to live state. Errors are recorded in the store and returned, not raised.

    The run is recorded like any other (mode ``apply-plan``): report-only
    actions and stale writes as skipped with why, the rest through the same
    Applier as a normal run, intent before and outcome after.
    """
    run_id = store.start_run(RunMode.APPLY_PLAN, fingerprint(config), tenant=config.tenant)
    outcome = PlanApplyOutcome(run_id, RunStatus.RUNNING, saved.write_count)
    with failures_recorded(store, run_id) as failure:
        async with okta_source(config, progress) as source, scim_reader(config, progress) as reader:
            desired, actual = await read_both_sides(source, reader)
            live = LiveState(desired, actual)
            group_live = await _group_live_state(config, saved, source, reader, live)
            current, outcome.stale = split_stale(saved, live)
            current_groups = _current_groups(saved, group_live, outcome)
            outcome.gate = _gate_for(config, store, run_id, saved, live, group_live)
            _record_unsent(store, saved, outcome)
            if outcome.gate.blocked and not confirm(threshold_question(outcome.gate, len(current))):
                _hold_unconfirmed(store, outcome, current, current_groups)
            else:
                applier = applier_for(config, store, run_id, reader, actual, progress)
                outcome.applied = await applier.apply(current)
                if group_live is not None:
                    await _apply_groups(config, store, outcome, reader, group_live, current_groups)
                outcome.status, outcome.error = _applied_status(outcome)
    if failure.error is not None:
        outcome.status, outcome.error = RunStatus.FAILED, failure.error
    store.finish_run(run_id, outcome.status, outcome.error)
    # No plan: an apply-plan run judges failures and the gate, not the drift of the whole target.
    await alert_after_run(
        store, config, RunOutcome(run_id, outcome.status, None, outcome.gate, outcome.applied, outcome.error)
    )
    return outcome


async def _group_live_state(
    config: Config, saved: SavedPlan, source: OktaSource, reader: ScimReader, live: LiveState
) -> GroupLiveState | None:
    """Both sides' groups now, and who their members resolve to now; None for a plan without groups."""
    if saved.groups is None:
        return None
    if not config.groups.enabled:
        raise SavedPlanError(
            f"{saved.path}: the plan holds group actions, but this config pushes no group: set [groups] as when "
            "the plan was made, or make a new plan"
        )
    desired_groups, actual_groups = await read_groups(config, source, reader)
    now = plan(live.desired, live.actual, config.mapping, config.policy)
    links, _created = group_member_links(now, live.desired, config.policy)
    return GroupLiveState(desired_groups, actual_groups, links)


def _current_groups(
    saved: SavedPlan, group_live: GroupLiveState | None, outcome: PlanApplyOutcome
) -> list[GroupAction]:
    if saved.groups is None or group_live is None:
        return []
    current, outcome.stale_groups = split_stale_groups(saved.groups, group_live)
    return current


def _record_unsent(store: Store, saved: SavedPlan, outcome: PlanApplyOutcome) -> None:
    """Report-only actions, and stale writes with why, as skipped."""
    store.record_skipped(outcome.run_id, [a for a in saved.plan.actions if not a.writes])
    for stale in outcome.stale:
        store.record_skipped(outcome.run_id, [stale.action], stale.why)
    if saved.groups is not None:
        store.record_group_skipped(outcome.run_id, [a for a in saved.groups.plan.actions if not a.writes])
        for stale_group in outcome.stale_groups:
            store.record_group_skipped(outcome.run_id, [stale_group.action], stale_group.why)


async def _apply_groups(
    config: Config,
    store: Store,
    outcome: PlanApplyOutcome,
    reader: ScimReader,
    group_live: GroupLiveState,
    current: list[GroupAction],
) -> None:
    """The plan's current group writes, after its user writes; members created just now resolve too.

    All of them, as for users: the plan was reviewed, and confirmed if it exceeds thresholds.
    """
    applier = group_applier_for(config, store, outcome.run_id, reader, group_live.links, outcome.applied)
    await applier.apply(current)


def _gate_for(
    config: Config,
    store: Store,
    run_id: int,
    saved: SavedPlan,
    live: LiveState,
    group_live: GroupLiveState | None = None,
) -> GateDecision:
    """The gate on the saved plan, with today's populations; a reviewed plan may still pass it only if confirmed."""
    previous = store.last_trusted_source_count(fingerprint(config), run_id)
    populations = Populations.of(live.desired, live.actual, previous)
    store.record_populations(run_id, populations.assignments, populations.managed)
    store.record_plan_counts(run_id, saved.plan.summary())
    groups = None
    if saved.groups is not None and group_live is not None:
        store.record_group_plan_counts(run_id, saved.groups.plan.summary())
        groups = (saved.groups.plan, GroupPopulations.of(group_live.desired, group_live.actual))
    return evaluate(saved.plan, populations, config.thresholds, groups)


def _hold_unconfirmed(
    store: Store, outcome: PlanApplyOutcome, current: Iterable[Action], current_groups: Iterable[GroupAction] = ()
) -> None:
    assert outcome.gate is not None
    why = "not sent: the plan exceeds thresholds and applying it was not confirmed"
    store.record_skipped(outcome.run_id, current, why)
    store.record_group_skipped(outcome.run_id, current_groups, why)
    outcome.confirmed = False
    outcome.status = RunStatus.BLOCKED
    outcome.error = f"blocked by the safety gate: {outcome.gate.reason}; the reviewed plan was not confirmed"


def _applied_status(outcome: PlanApplyOutcome) -> tuple[RunStatus, str | None]:
    result = outcome.applied
    problems = []
    if result.breaker is not None:
        problems.append(f"{result.breaker}; {result.skipped} write(s) not sent")
    elif result.failed:
        shown = "; ".join(result.errors[:5])
        more = f" (and {result.failed - 5} more)" if result.failed > 5 else ""
        problems.append(f"{result.failed} action(s) failed: {shown}{more}")
    stale = len(outcome.stale) + len(outcome.stale_groups)
    if stale:
        problems.append(f"{stale} action(s) stale: make a new plan for them")
    if result.breaker is not None:
        return RunStatus.FAILED, "; ".join(problems)
    if problems:
        return RunStatus.PARTIAL, "; ".join(problems)
    return RunStatus.SUCCEEDED, None


# --- the command line -------------------------------------------------------------------------


def terminal_confirmation(yes: bool, stdin: IO[str] | None = None, stderr: IO[str] | None = None) -> Confirm:
    """Ask on a terminal (y/N); elsewhere only ``--yes`` confirms."""

    def confirm(question: str) -> bool:
        input_, output = stdin or sys.stdin, stderr or sys.stderr
        print(question, file=output)
        if yes:
            print("--yes given: applying it.", file=output)
            return True
        if not _is_terminal(input_):
            print("not on a terminal: pass --yes to apply a plan that exceeds thresholds.", file=output)
            return False
        print("Apply it? [y/N] ", end="", file=output, flush=True)
        return input_.readline().strip().lower() in ("y", "yes")

    return confirm


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def save_after_dry_run(path: Path, config: Config, outcome: RunOutcome, console: Console) -> bool:
    """``--save-plan``: write the dry-run's plan (blocked or not: that is the review path)."""
    if outcome.plan is None:
        Console(stderr=True).print(f"[red]No plan saved to {escape(str(path))}:[/] the run failed before planning.")
        return False
    try:
        document = save_plan(path, config, outcome)
    except SavedPlanError as error:
        Console(stderr=True).print(f"[red]{escape(str(error))}[/]")
        return False
    writes = sum(1 for a in outcome.plan.actions if a.writes)
    if outcome.group_plan is not None:
        writes += len(outcome.group_plan.writes)
    config_arg = f"--config {config.source_path} " if config.source_path else ""
    console.print(f"Plan saved to {escape(str(path))} ({writes} write(s)); apply it with:")
    console.print(f"  reconcile {escape(config_arg)}apply {escape(str(path))}")
    if document["gate"]["blocked"]:
        console.print("[yellow]It exceeds thresholds:[/] apply will ask for confirmation (--yes off a terminal).")
    return True


def run_apply_command(config: Config, store: Store, path: Path, *, yes: bool, json_output: bool) -> int:
    """``reconcile apply PLAN_FILE``: exit 0 when every write was applied, 1 otherwise."""
    try:
        saved = load_plan(path, config)
    except SavedPlanError as error:
        print(f"reconcile: {error}", file=sys.stderr)
        return 1
    outcome = asyncio.run(apply_saved_plan(config, store, saved, terminal_confirmation(yes)))
    if json_output:
        sys.stdout.write(json.dumps(outcome_document(saved, outcome), ensure_ascii=False, indent=2) + "\n")
    else:
        render_apply(Console(), saved, outcome)
    return 0 if outcome.complete else 1


def outcome_document(saved: SavedPlan, outcome: PlanApplyOutcome) -> dict[str, Any]:
    return {
        "run_id": outcome.run_id,
        "plan_file": str(saved.path),
        "plan_run_id": saved.run_id,
        "status": outcome.status.value,
        "error": outcome.error,
        "confirmed": outcome.confirmed,
        "writes": outcome.writes,
        "applied": outcome.applied.succeeded,
        "failed": outcome.applied.failed,
        "stale": [stale.action.to_json() | {"why": stale.why} for stale in outcome.stale],
        "stale_groups": [group_action_json(stale.action) | {"why": stale.why} for stale in outcome.stale_groups],
    }


def render_apply(console: Console, saved: SavedPlan, outcome: PlanApplyOutcome) -> None:
    made = saved.created_at.strftime("%Y-%m-%d %H:%M:%S")
    console.rule(f"[bold]Apply saved plan {escape(str(saved.path))} (run {outcome.run_id})")
    console.print(f"Plan made {made} UTC by dry-run {saved.run_id}; {outcome.writes} write(s) in it.")
    if saved.trips:
        reasons = "; ".join(trip.reason for trip in saved.trips)
        console.print(f"[yellow]When it was made, it exceeded thresholds:[/] {escape(reasons)}")
    for stale in outcome.stale:
        action = stale.action
        console.print(f"  [yellow]skipped[/] {action.kind.value} {escape(action.user_name)} — {escape(stale.why)}")
    for stale_group in outcome.stale_groups:
        action = stale_group.action
        console.print(f"  [yellow]skipped[/] {action.kind.value} {escape(action.name)} — {escape(stale_group.why)}")
    for line in outcome.applied.errors:
        console.print(f"  [red]failed[/] {escape(line)}")
    console.print(
        f"Applied {outcome.applied.succeeded}, failed {outcome.applied.failed}, "
        f"stale {len(outcome.stale) + len(outcome.stale_groups)} "
        f"(of {outcome.writes} write(s))."
    )
    if outcome.stale or outcome.stale_groups:
        console.print("Stale actions were not applied: make a new plan for them (reconcile --dry-run --save-plan).")
    if outcome.error:
        Console(stderr=True).print(f"[red]Run {outcome.run_id} {outcome.status.value}:[/] {escape(outcome.error)}")
    console.print(f"[dim]Inspect with: reconcile show {outcome.run_id}[/]")
