"""systemd's notify protocol (sd_notify(3)), spoken without a dependency.

The protocol is one datagram of ``KEY=value`` lines sent to the AF_UNIX socket
named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace),
so it takes the twenty lines below. The packages that wrap it are either a C
extension that needs libsystemd's headers to build (``systemd-python``) or an
unmaintained module of the same twenty lines (``sdnotify``); neither is worth a
dependency. Without ``$NOTIFY_SOCKET`` (not under systemd, or
``NotifyAccess=none``) every call does nothing, so ``reconcile serve`` runs the
same anywhere.

What the service sends: ``READY=1`` once its configuration and store are good,
``STATUS=`` a one-line summary of the last run, ``WATCHDOG=1`` every half
``$WATCHDOG_USEC`` while its event loop answers, ``RELOADING=1`` then
``READY=1`` around a SIGHUP reload, and ``STOPPING=1`` on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Final

log = logging.getLogger(__name__)

NOTIFY_SOCKET_ENV: Final = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV: Final = "WATCHDOG_USEC"
WATCHDOG_PID_ENV: Final = "WATCHDOG_PID"
MAX_STATUS_CHARS: Final = 400
"""``systemctl status`` shows one line; a longer STATUS only gets cut there."""


def socket_address(value: str | None) -> str | bytes | None:
    """The address ``$NOTIFY_SOCKET`` names: a path, or ``@name`` as an abstract socket (a leading NUL)."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # systemd also allows vsock:CID:PORT (for VMs); not a place this service runs


def watchdog_interval_s(environ: Mapping[str, str] = os.environ) -> float | None:
    """How often to send WATCHDOG=1: half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled(3) advises.

    None when there is no watchdog, or when ``$WATCHDOG_PID`` names another process.
    """
    try:
        usec = int(environ.get(WATCHDOG_USEC_ENV, ""))
    except ValueError:
        return None
    pid = environ.get(WATCHDOG_PID_ENV)
    if usec <= 0 or (pid is not None and pid.strip() != str(os.getpid())):
        return None
    return usec / 2 / 1_000_000


class Notifier:
    """Sends notify messages to systemd; a no-op without ``$NOTIFY_SOCKET``. A failed send is logged once."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.name = environ.get(NOTIFY_SOCKET_ENV)
        self.address = socket_address(self.name)
        self._socket: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``fields`` (``KEY=value`` each) as one datagram; True if it went out."""
        if self.address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto("\n".join(fields).encode(), self.address)
        except OSError as error:
            if not self._warned:
                log.warning("cannot notify systemd at %s: %s", self.name, error)
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={one_line(text)}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        """Before a reload; READY=1 ends it. MONOTONIC_USEC is what Type=notify-reload asks for."""
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *([f"STATUS={one_line(status)}"] if status else []))

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def one_line(text: str) -> str:
    """``text`` on one line, cut to MAX_STATUS_CHARS."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_STATUS_CHARS else flat[: MAX_STATUS_CHARS - 1] + "…"


def start_watchdog(
    notifier: Notifier, environ: Mapping[str, str], alive: Callable[[], bool]
) -> asyncio.Task[None] | None:
    """Send WATCHDOG=1 every half ``$WATCHDOG_USEC`` while ``alive()``; None without a watchdog.

    The task runs in the service's own event loop: a loop blocked by a stuck call
    misses its turns, and systemd restarts the service.
    """
    interval = watchdog_interval_s(environ)
    if interval is None or not notifier.enabled:
        return None
    log.info("systemd watchdog: WATCHDOG=1 every %g s", interval)
    notifier.watchdog()
    return asyncio.create_task(_watchdog(notifier, interval, alive), name="watchdog")


async def _watchdog(notifier: Notifier, interval_s: float, alive: Callable[[], bool]) -> None:
    while True:
        await asyncio.sleep(interval_s)
        if alive():
            notifier.watchdog()
