"""Both sides retry the same transient failures, by one policy (reconciler/net/retries.py).

A refused connection is the case that differed: SCIM retried it, Okta failed at once. Here each side
talks to a loopback port that refuses connections (a server restarting), then starts accepting once
the reconciler has logged its second retry: the third attempt gets through, on either side.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from reconciler.errors import SourceError, TargetError
from reconciler.net.retries import TRANSIENT_RETRIES, is_transient_connection_failure, is_transient_status
from reconciler.okta.source import OktaSource
from reconciler.scim.http import ScimConnection
from reconciler.secret import Secret
from reconciler.testing.okta import OktaEmulator
from tests.conftest import FAST_RETRIES, OKTA_RETRIES, OKTA_TOKEN, SCIM_TOKEN
from tests.support.fault_proxy import FaultProxy
from tests.support.late_listener import LateListener, late_listener

OKTA_LOGGER = "reconciler.okta.connection"
SCIM_LOGGER = "reconciler.scim.http"


class RetryLog(logging.Handler):
    """The "retrying" warnings a side logs; the listener starts accepting after the ``open_after``-th."""

    def __init__(self, listener: LateListener | None, open_after: int) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._listener, self._open_after = listener, open_after

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying in" not in record.getMessage():
            return
        self.messages.append(record.getMessage())
        if self._listener is not None and len(self.messages) == self._open_after:
            self._listener.listen()


@contextmanager
def retries_logged(logger: str, listener: LateListener | None, open_after: int = 2) -> Iterator[RetryLog]:
    handler = RetryLog(listener, open_after)
    logging.getLogger(logger).addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger(logger).removeHandler(handler)


@pytest.fixture(autouse=True)
def fast_okta_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OKTA_RETRIES, FAST_RETRIES)


def okta_source(url: str, app_id: str) -> OktaSource:
    return OktaSource(org_url=url, app_id=app_id, auth="api_token", token=Secret(OKTA_TOKEN), timeout_s=5.0)


def scim_connection(url: str) -> ScimConnection:
    return ScimConnection(url, Secret(SCIM_TOKEN), 5.0, retry=FAST_RETRIES)


def assert_two_refusals_then_through(log: RetryLog, attempts: int) -> None:
    assert len(log.messages) == 2, log.messages
    assert all("refused" in message.lower() for message in log.messages), log.messages
    assert [message.rsplit("(", 1)[1] for message in log.messages] == [
        f"attempt 1 of {attempts})",
        f"attempt 2 of {attempts})",
    ]


async def test_a_refused_okta_connection_is_retried_until_okta_accepts() -> None:
    emulator = OktaEmulator(seed=5, api_tokens=[OKTA_TOKEN])
    app = emulator.create_app()
    emulator.add_assigned_users(app.id, 3)
    async with late_listener(emulator.make_app()) as listener:
        with retries_logged(OKTA_LOGGER, listener) as log:
            async with okta_source(listener.url, app.id) as source:
                assignments = await source.list_assignments()

    assert len(assignments) == 3
    assert_two_refusals_then_through(log, FAST_RETRIES.attempts)
    assert emulator.request_count() == 1, "the refused attempts never reached Okta; the third did, once"


async def test_a_refused_scim_connection_is_retried_until_the_platform_accepts(scim_url: str) -> None:
    proxy = FaultProxy(scim_url)
    async with late_listener(proxy.make_app()) as listener:
        with retries_logged(SCIM_LOGGER, listener) as log:
            async with scim_connection(listener.url + proxy.base_path) as connection:
                answer = await connection.send("GET", "/Users", params={"count": 1})

    assert answer.status_code == 200
    assert_two_refusals_then_through(log, FAST_RETRIES.attempts)
    assert [request.method for request in proxy.requests] == ["GET"]
    assert connection.request_counts["GET"] == 3


async def test_both_sides_give_up_on_a_port_that_keeps_refusing_after_the_same_attempts() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: every connect is refused
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with retries_logged(OKTA_LOGGER, None) as okta_log, pytest.raises(SourceError) as okta_failure:
            async with okta_source(url, "0oaAPP") as source:
                await source.list_assignments()
        with retries_logged(SCIM_LOGGER, None) as scim_log, pytest.raises(TargetError) as scim_failure:
            async with scim_connection(url + "/scim/v2") as connection:
                await connection.send("GET", "/Users")

    attempts = FAST_RETRIES.attempts
    assert len(okta_log.messages) == len(scim_log.messages) == attempts - 1
    assert f"gave up after {attempts} attempts" in str(okta_failure.value)
    assert f"gave up after {attempts} attempts" in str(scim_failure.value)


def test_the_policy_says_which_failures_may_pass() -> None:
    assert TRANSIENT_RETRIES.attempts == 5
    assert [status for status in (500, 501, 502, 503, 504, 505, 429, 404) if is_transient_status(status)] == [
        500,
        502,
        503,
        504,
    ]
    for error in (
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
        TimeoutError(),
        OSError(errno.EHOSTUNREACH, "No route to host"),
        socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
    ):
        assert is_transient_connection_failure(error), error
    for error in (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), OSError(errno.EACCES, "denied")):
        assert not is_transient_connection_failure(error), error
    wrapped = OSError("All connection attempts failed")
    wrapped.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert is_transient_connection_failure(wrapped), "read down the chain to the socket's error"
