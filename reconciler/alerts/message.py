"""The message that tells a run's notifications: its title, a section each, the run and how to inspect it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from reconciler.alerts.conditions import BLOCKED, CONSECUTIVE_FAILURES, DRIFT, FAILED, FOLLOWER_OFF, QUARANTINED, family
from reconciler.alerts.transitions import Event, Notification
from reconciler.config.model import Config
from reconciler.secret import redact

if TYPE_CHECKING:
    import apprise


@dataclass(frozen=True, slots=True)
class Message:
    """One run's alert, as apprise sends it."""

    title: str
    body: str
    """Plain text: apprise turns it into what each channel wants."""
    notify_type: apprise.NotifyType


def compose(notifications: Sequence[Notification], config: Config, run_id: int) -> Message:
    """One message for a run's notifications: title, sections, then the run and how to inspect it.

    Known secrets are masked as a last line of defence: no part of it should
    hold one, but a server's error text quoted in a run's error might.
    """
    notifications = sorted(notifications, key=_importance)
    first = notifications[0]
    more = f" (+{len(notifications) - 1} more)" if len(notifications) > 1 else ""
    tenant = f" [{config.tenant}]" if config.tenant else ""
    title = f"okta-reconciler{tenant}: {_headline(first)}{more}"
    run = f"Tenant {config.tenant}, run {run_id}" if config.tenant else f"Run {run_id}"
    footer = (
        f"{run}: Okta app {config.okta.app_id} ({_public_url(config.okta.org_url)}) "
        f"-> SCIM {_public_url(config.scim.base_url)}\n"
        f"Inspect: {show_command(config, run_id)}"
    )
    body = "\n\n".join([*(_section(n) for n in notifications), footer])
    secrets = _secret_values(config)
    return Message(redact(title, secrets), redact(body, secrets), _notify_type(notifications))


def show_command(config: Config, run_id: int) -> str:
    if config.source_path is None:
        return f"reconcile show {run_id}"
    return f"reconcile --config {shlex.quote(str(config.source_path))} show {run_id}"


_EVENT_ORDER: Final = (Event.STARTED, Event.STILL_ACTIVE, Event.RESOLVED)


_FAMILY_ORDER: Final = (QUARANTINED, FAILED, CONSECUTIVE_FAILURES, BLOCKED, FOLLOWER_OFF, DRIFT)


def _importance(notification: Notification) -> tuple[int, int, str]:
    """News first, then failures before a blocked run before drift; the first one titles the message."""
    return (
        _EVENT_ORDER.index(notification.event),
        _FAMILY_ORDER.index(family(notification.key)),
        notification.key,
    )


def _headline(notification: Notification) -> str:
    if notification.event is Event.STARTED:
        return notification.title
    return f"{notification.event.value.capitalize()}: {notification.title}"


def _section(notification: Notification) -> str:
    lines = [_headline(notification)]
    if notification.event is not Event.STARTED:
        lines.append(f"  Active since {notification.active_since:%Y-%m-%d %H:%M} UTC")
    condition = notification.condition
    if condition is not None:
        if condition.counts:
            lines.append("  Counts: " + ", ".join(f"{kind} {count}" for kind, count in condition.counts.items()))
        if condition.examples:
            total = sum(condition.counts.values())
            shown = f"{len(condition.examples)} of {total}" if total > len(condition.examples) else "all"
            lines.append(f"  Users ({shown}): " + ", ".join(condition.examples))
        lines += [f"  {detail}" for detail in condition.details if detail]
    return "\n".join(lines)


def _notify_type(notifications: Sequence[Notification]) -> apprise.NotifyType:
    """Failure for an active failed/blocked condition, warning for active drift, success when all cleared."""
    import apprise  # here, once there is something to tell: a run that alerts nothing does not import it

    active = {family(n.key) for n in notifications if n.event is not Event.RESOLVED}
    if active - {DRIFT}:
        return apprise.NotifyType.FAILURE
    return apprise.NotifyType.WARNING if active else apprise.NotifyType.SUCCESS


def _public_url(url: str) -> str:
    """Host, port and path: no user info, query or fragment, whatever the configuration holds."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.hostname}{port}{parts.path}"


def _secret_values(config: Config) -> list[str]:
    return [secret.reveal() for secret in config.secrets()]
