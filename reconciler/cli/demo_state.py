"""What the demo leaves behind, read by the other commands: is a config the demo's, and are its servers up?

``reconcile demo`` writes ``demo.json`` beside the config it writes, naming the servers it started. A plain
demo stops them when it ends, so a later ``--dry-run`` pointed at ``demo-state/config.toml`` would only meet a
refused connection: :func:`demo_servers_gone` says instead what happened and how to get them back. Imports no
test double (only ``reconciler.cli.demo`` may).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.cli.invocation import again
from reconciler.config.model import Config

DEMO_MARKER = "demo.json"
PROBE_TIMEOUT_S = 1.0


def write_demo_marker(state: Path, org_url: str, scim_url: str, *, keep_running: bool) -> None:
    """Record, beside the demo's config, which servers it serves and whether they outlive the demo."""
    marker = {"org_url": org_url, "scim_url": scim_url, "keep_running": keep_running, "pid": os.getpid()}
    (state / DEMO_MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def demo_servers_gone(config: Config) -> str | None:
    """A message when ``config`` is a demo's and one of its servers no longer answers; None otherwise."""
    if config.source_path is None:
        return None
    marker_path = config.source_path.parent / DEMO_MARKER
    try:
        marker = json.loads(marker_path.read_text())
    except (OSError, ValueError):
        return None
    ours = marker.get("org_url") == config.okta.org_url and marker.get("scim_url") == config.scim.base_url
    if not ours or (_answers(config.okta.org_url) and _answers(config.scim.base_url)):
        return None
    ended = "was stopped" if marker.get("keep_running") else "stopped them when it ended"
    return (
        f"reconcile: {config.source_path} is the state of a `reconcile demo` run whose Okta emulator and SCIM "
        f"server are gone (the demo {ended}). Start them again, with a fresh demo-state, and keep them up "
        f"until Ctrl-C: `{again('demo', '--keep-running')}` (or `make demo-live`)."
    )


def _answers(url: str) -> bool:
    """Whether something accepts a TCP connection at the URL's host and port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False
