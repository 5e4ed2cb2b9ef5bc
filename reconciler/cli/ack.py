"""``reconcile ack``: acknowledge a finding someone reviewed (a conflict, an unmanaged user), list, revoke.

Like midPoint's reviewed situations or an Entra provisioning skip: an acknowledged finding is still shown,
marked, in text and JSON, but a conflict so acknowledged no longer makes a dry-run exit 2. It is taken from
the target's latest plan in the store and holds for the finding as it is there: if the finding changes
(another user in the conflict, another reason), it is a new finding and counts again. Who (``--by``, or the
OS user), when and why are kept in the store; a revoked acknowledgement stays, marked revoked.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.markup import escape

from reconciler.cli.consoles import console_for
from reconciler.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from reconciler.config.model import FleetConfig, fingerprint
from reconciler.models.records import Action
from reconciler.models.runs import RunStatus
from reconciler.plan.findings import ACKNOWLEDGEABLE, action_digest, finding_digest, names
from reconciler.run.outcome import RunOutcome
from reconciler.store import Acknowledgement, ActionRecord, Run, Store
from reconciler.store.store import operating_user

ACK_KINDS = tuple(kind.value for kind in ACKNOWLEDGEABLE)
RUNS_LOOKED_AT = 50


class AckRefused(Exception):
    """The acknowledgement asked for cannot be made; the message says why and what to do."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def who(by: str | None) -> str:
    """``--by``, else the OS user (the one who ran sudo, under sudo)."""
    return by or operating_user()


def run_ack_command(args: argparse.Namespace, fleet: FleetConfig, store: Store, json_output: bool) -> int:
    try:
        if len(fleet.tenants) != 1:
            raise AckRefused("ack: this file has several [[tenants]]: pass --tenant NAME", EXIT_USAGE)
        target = fingerprint(fleet.tenants[0])
        if args.what == "list":
            return _list(store.acknowledgements(target, revoked=args.all), json_output)
        if args.what == "revoke":
            return _revoke(store, target, args, json_output)
        return _acknowledge(store, target, args, json_output)
    except AckRefused as refused:
        print(f"reconcile: {refused}", file=sys.stderr)
        return refused.code


def _acknowledge(store: Store, target: str, args: argparse.Namespace, json_output: bool) -> int:
    if not args.subject:
        raise AckRefused(f"ack {args.what}: name the user: its userName, Okta user id or SCIM id", EXIT_USAGE)
    if not (args.reason or "").strip():
        raise AckRefused(
            f'ack {args.what}: say why with --reason "..." (it is kept with the acknowledgement)', EXIT_USAGE
        )
    run, record = _finding_of(store, target, args.what, args.subject)
    digest = finding_digest(record.kind.value, record.user_name, record.okta_user_id, record.scim_id, record.reason)
    held = next((a for a in store.acknowledgements(target) if a.finding_digest == digest), None)
    if held is None:
        held = store.acknowledge(
            Acknowledgement(
                config_fingerprint=target,
                kind=record.kind.value,
                user_name=record.user_name,
                okta_user_id=record.okta_user_id,
                scim_id=record.scim_id,
                finding=record.reason,
                finding_digest=digest,
                reason=args.reason.strip(),
                acknowledged_by=who(args.by),
                run_id=run.id,
            )
        )
        said = f"acknowledged #{held.id}"
    else:
        said = f"already acknowledged (#{held.id} by {held.acknowledged_by})"
    if json_output:
        _print_json(ack_document(held))
    else:
        console_for().print(f"{escape(said)}: {record.kind.value} {escape(record.user_name)} — {escape(record.reason)}")
    return EXIT_OK


def _finding_of(store: Store, target: str, kind: str, subject: str) -> tuple[Run, ActionRecord]:
    """The finding ``subject`` names in the target's latest plan in the store."""
    run = next((r for r in store.recent_runs(RUNS_LOOKED_AT, [target]) if _planned(r)), None)
    if run is None or run.id is None:
        raise AckRefused("ack: no plan of this target in the store yet: run `reconcile --dry-run` first")
    found = [
        record
        for record in store.actions_of(run.id)
        if record.kind.value == kind and names((record.user_name, record.okta_user_id, record.scim_id), subject)
    ]
    if not found:
        raise AckRefused(
            f"ack: no {kind} for {subject!r} in run {run.id}, the latest plan of this target "
            f"(see `reconcile show {run.id}`; `reconcile --dry-run` shows today's findings)"
        )
    if len(found) > 1:
        raise AckRefused(f"ack: {subject!r} names {len(found)} {kind}s in run {run.id}: name it by SCIM or Okta id")
    return run, found[0]


def _planned(run: Run) -> bool:
    return run.summary is not None and run.status not in (RunStatus.RUNNING, RunStatus.FAILED)


def _revoke(store: Store, target: str, args: argparse.Namespace, json_output: bool) -> int:
    if not (args.subject or "").isdigit():
        raise AckRefused("ack revoke: give the acknowledgement's number, as `reconcile ack list` shows it", EXIT_USAGE)
    revoked = store.revoke_acknowledgement(target, int(args.subject), who(args.by))
    if revoked is None:
        raise AckRefused(f"ack revoke: no acknowledgement #{args.subject} in force for this target")
    if json_output:
        _print_json(ack_document(revoked))
    else:
        console_for().print(f"revoked #{revoked.id}: {revoked.kind} {escape(revoked.user_name)} counts again")
    return EXIT_OK


def _list(acknowledgements: list[Acknowledgement], json_output: bool) -> int:
    if json_output:
        _print_json([ack_document(a) for a in acknowledgements])
        return EXIT_OK
    console = console_for()
    if not acknowledgements:
        console.print("no acknowledgement in force (reconcile ack conflict|unmanaged ID --reason ...)")
    for ack in acknowledgements:
        when = ack.acknowledged_at.strftime("%Y-%m-%d %H:%M")
        revoked = f" [dim](revoked by {escape(ack.revoked_by or '?')})[/]" if ack.revoked_at else ""
        console.print(
            f"#{ack.id} {ack.kind} {escape(ack.user_name)} — {escape(ack.finding)}{revoked}\n"
            f"    by {escape(ack.acknowledged_by)} at {when} UTC: {escape(ack.reason)}",
            highlight=False,
        )
    return EXIT_OK


def ack_document(ack: Acknowledgement) -> dict[str, Any]:
    return {
        "id": ack.id,
        "kind": ack.kind,
        "user_name": ack.user_name,
        "okta_user_id": ack.okta_user_id,
        "scim_id": ack.scim_id,
        "finding": ack.finding,
        "reason": ack.reason,
        "by": ack.acknowledged_by,
        "at": ack.acknowledged_at.isoformat(),
        "run_id": ack.run_id,
        "revoked_at": ack.revoked_at.isoformat() if ack.revoked_at else None,
        "revoked_by": ack.revoked_by,
    }


def acknowledged_note(outcome: RunOutcome) -> Callable[[Action], str | None]:
    """What the text plan adds after an acknowledged finding."""

    def note(action: Action) -> str | None:
        ack = outcome.acknowledged.get(action_digest(action)) if action.kind in ACKNOWLEDGEABLE else None
        return None if ack is None else f"acknowledged #{ack.id} by {ack.acknowledged_by}: {ack.reason}"

    return note


def mark_acknowledged(document: dict[str, Any], outcome: RunOutcome) -> dict[str, Any]:
    """The JSON document's findings, each with its acknowledgement (or null)."""
    if outcome.plan is None:
        return document
    for action, shown in zip(outcome.plan.actions, document["actions"], strict=True):
        if action.kind in ACKNOWLEDGEABLE:
            ack = outcome.acknowledged.get(action_digest(action))
            shown["acknowledged"] = None if ack is None else ack_document(ack)
    return document


def _print_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
