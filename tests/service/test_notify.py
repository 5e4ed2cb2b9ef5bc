"""systemd's notify protocol, received on a real unix datagram socket given as NOTIFY_SOCKET."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.service.notify import MAX_STATUS_CHARS, Notifier, socket_address, watchdog_interval_s
from reconciler.service.single import Service
from reconciler.store import Store
from tests.conftest import Okta
from tests.service.test_service import eventually, notify_listener, running, service_config, short_socket_path


def test_messages_reach_a_socket_given_by_path() -> None:
    path = short_socket_path()
    with notify_listener(path) as received:
        notifier = Notifier({"NOTIFY_SOCKET": path})
        assert notifier.ready("first line\nsecond   line")
        assert notifier.status("x" * 1000)
        assert notifier.watchdog() and notifier.stopping()
        notifier.close()
        ready, status, watchdog, stopping = received()
    assert ready == "READY=1\nSTATUS=first line second line"
    assert status.startswith("STATUS=xxx") and len(status) == len("STATUS=") + MAX_STATUS_CHARS
    assert (watchdog, stopping) == ("WATCHDOG=1", "STOPPING=1")


def test_messages_reach_an_abstract_socket() -> None:
    name = f"okta-reconciler-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(b"\0" + name.encode())
        listener.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": f"@{name}"})
        assert notifier.reloading()
        message = listener.recv(4096).decode()
        notifier.close()
    reloading, monotonic = message.split("\n")
    assert reloading == "RELOADING=1"
    assert monotonic.startswith("MONOTONIC_USEC=") and int(monotonic.partition("=")[2]) > 0


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.watchdog()
    assert socket_address("vsock:2:1234") is None


def test_a_vanished_socket_is_logged_once_and_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    path = short_socket_path()  # nobody listens there
    notifier = Notifier({"NOTIFY_SOCKET": path})
    with caplog.at_level(logging.WARNING, "reconciler.service.notify"):
        assert not notifier.ready()
        assert not notifier.status("still fine")
    notifier.close()
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "reconciler.service.notify"]
    assert warning.startswith(f"cannot notify systemd at {path}: ")


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "120000000"}) == 60
    assert watchdog_interval_s({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": str(os.getpid())}) == 60
    assert watchdog_interval_s({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None


async def test_the_service_notifies_ready_status_watchdog_and_stopping(
    tmp_path: Path, okta: Okta, scim_url: str
) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 2)
    path = short_socket_path()
    environ = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000"}  # WATCHDOG=1 every 0.15 s
    config = load_config(service_config(tmp_path, okta, scim_url, interval="1h"))
    with notify_listener(path) as received, Store(config.store.url) as store:
        service = Service(config, store, environ=environ)
        async with running(service):
            await eventually(lambda: any("run 1 succeeded" in m for m in received()), 15, "STATUS of run 1")
            await eventually(lambda: received().count("WATCHDOG=1") >= 3, 5, "three WATCHDOG=1")
        messages = received()
    assert "READY=1" in messages
    ready = messages.index("READY=1")
    statuses = [m for m in messages if m.startswith("STATUS=")]
    assert statuses[0] == "STATUS=no run yet; next run " + statuses[0].rpartition("next run ")[2]
    assert any(m.startswith("STATUS=run in progress since ") for m in messages[ready:])
    (done,) = [m for m in statuses if "run 1 succeeded" in m]
    assert "drift create 2; applied 2, failed 0" in done and "next run " in done
    assert "\n" not in done
    stopping = messages[-1]
    assert stopping.startswith("STOPPING=1\nSTATUS=stopping (test over); last: run 1 succeeded"), messages[-3:]
