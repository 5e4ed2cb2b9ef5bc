"""Saved plans, as in Terraform: ``--dry-run --save-plan FILE``, then ``apply FILE``.

A person reviews the plan a dry-run wrote, and ``reconcile apply`` sends
*exactly* that plan, never a newer one computed behind their back. Live state is
re-read first: each action carries a digest of its subject's state at plan time
(the Okta assignment and the platform user it is about), and an action whose
subject changed since is skipped and reported as stale, never applied blindly.

The file (JSON, mode 0600, written atomically) holds no secret. It records the
configuration's fingerprint, so a plan made for another app or endpoint is
refused; the settings that shaped it, so a plan made under another mapping or
policy is refused, naming what changed (:mod:`reconciler.run.saved.binding`);
and an HMAC over its content, so that an edited file is refused too (see
:func:`signing_key` for why the key is derived from the credentials).

Format, version 2::

    {
      "format": "okta-reconciler saved plan",
      "version": 2,
      "created_at": "2025-01-31T09:00:00Z",
      "fingerprint": "<config fingerprint>",
      "target": {"okta_org_url": ..., "okta_app_id": ..., "scim_base_url": ...},
      "binding": {"mapping": {...}, "policy": {...}, "groups": {...}},  # see reconciler.run.saved.binding
      "run_id": 12,                      # the dry-run that made the plan
      "summary": {"create": 3, ..., "in_sync": 80},
      "gate": {"blocked": false, "stop_all": false, "trips": [{"kind": ..., "reason": ...}]},
      "actions": [{<Action.to_json()>, "subject_digest": "<sha256 hex>"}, ...],
      "groups": {...},                   # with [groups] only: see reconciler.run.saved.groups
      "signature": {"algorithm": "HMAC-SHA256", "value": "<hex>"}
    }

The signature covers the canonical JSON (sorted keys, no whitespace) of every
member but ``signature``, so re-indenting the file does not break it; changing
any value does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from reconciler.config.identity import target_identity
from reconciler.config.model import Config, fingerprint
from reconciler.errors import ReconcileError
from reconciler.files import write_private_file
from reconciler.models.records import (
    PROJECTION_FIELDS,
    Action,
    ActionKind,
    Change,
    OktaAssignment,
    Plan,
    PlatformUser,
)
from reconciler.plan.gate import GateDecision, Trip
from reconciler.run.outcome import RunOutcome
from reconciler.run.saved.binding import binding_changes, plan_binding
from reconciler.run.saved.digest import canonical_json, digest_of, plain_json
from reconciler.run.saved.groups import GroupLiveState, SavedGroups, groups_document, parse_groups

log = logging.getLogger(__name__)

FORMAT: Final = "okta-reconciler saved plan"
VERSION: Final = 2
"""2: the plan records the settings that shaped it (``binding``); 1 did not, and is refused."""
SIGNATURE_ALGORITHM: Final = "HMAC-SHA256"
_KEY_LABEL: Final = "okta-reconciler saved-plan signing key, v1"
"""Domain separation: this key signs saved plans and nothing else."""


class SavedPlanError(ReconcileError):
    """A plan file that cannot be used: unreadable, not a plan, edited, or for another target."""


# --- canonical JSON and digests ---------------------------------------------------------------


def assignment_state(assignment: OktaAssignment | None) -> dict[str, Any] | None:
    """Every field of the assignment, as plain JSON (not the projection the run read it with: a cache)."""
    if assignment is None:
        return None
    fields = [name for name in assignment.__struct_fields__ if name not in PROJECTION_FIELDS]
    return {name: plain_json(getattr(assignment, name)) for name in fields}


def resource_state(user: PlatformUser | None) -> dict[str, Any] | None:
    """The SCIM resource without ``meta``: a server may bump lastModified without a change."""
    if user is None:
        return None
    return {key: plain_json(value) for key, value in user.resource.items() if key != "meta"}


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
        "binding": plan_binding(config),
        "run_id": outcome.run_id,
        "summary": outcome.plan.summary(),
        "gate": _gate_json(outcome.gate),
        "actions": [
            plain_json(action.to_json()) | {"subject_digest": live.subject_digest(action)}
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
    _check_binding(path, document, config)
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
    if document.get("version") == 1:
        raise SavedPlanError(
            f"{path}: refusing this plan: it was saved by an earlier version of okta-reconciler (saved-plan format 1), "
            "which did not record the mapping and policy it was made under, so it cannot be checked against this "
            "config. Make a new plan with this version (reconcile --dry-run --save-plan FILE) and review that one"
        )
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


def _check_binding(path: Path, document: Mapping[str, Any], config: Config) -> None:
    """The settings that shaped the plan are this config's (see :mod:`reconciler.run.saved.binding`)."""
    saved = document.get("binding")
    if not isinstance(saved, Mapping):
        raise SavedPlanError(f"{path}: a malformed saved plan (no binding: the settings it was made under)")
    changes = binding_changes(saved, plan_binding(config))
    if changes:
        raise SavedPlanError(
            f"{path}: refusing this plan: the saved plan is stale: the configuration changed since it was made, "
            f"so it is not the plan this config would make: {'; '.join(changes)}. Make a new plan with this config "
            "(reconcile --dry-run --save-plan FILE), or restore the settings it was made under"
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


# --- the command line -------------------------------------------------------------------------
