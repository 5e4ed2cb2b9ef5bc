"""Runs the real `scim2-server` on a free loopback port, for the demo and the tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

import httpx


@dataclass(frozen=True)
class RunningScimServer:
    base_url: str
    """The SCIM base URL, ending in ``/v2``."""
    token: str
    process: subprocess.Popen[bytes]


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scim2_server_command() -> list[str]:
    beside_python = os.path.join(os.path.dirname(sys.executable), "scim2-server")
    if os.path.exists(beside_python):
        return [beside_python]
    on_path = shutil.which("scim2-server")
    if on_path:
        return [on_path]
    return [sys.executable, "-c", "from scim2_server.testserver.cli import main; main()"]


PORT_ATTEMPTS = 5
"""Ports tried at most: a free port is chosen, released, then bound by the server, and in between another
process (a parallel test worker) may take it."""


class _PortTaken(Exception):
    """The chosen port was bound by another process before the server could bind it."""


def _wait_until_serving(server: RunningScimServer, deadline_s: float, stderr: IO[bytes]) -> None:
    deadline = time.monotonic() + deadline_s
    headers = {"Authorization": f"Bearer {server.token}"}
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            stderr.seek(0)
            said = stderr.read().decode(errors="replace")
            if "Address already in use" in said:
                raise _PortTaken(server.base_url)
            last = said.strip().splitlines()[-1:] or ["(nothing on stderr)"]
            raise RuntimeError(f"scim2-server exited with code {server.process.returncode} at start-up: {last[0]}")
        with contextlib.suppress(httpx.TransportError):
            # Any HTTP answer means it serves (with tenants, /v2 itself answers 404).
            httpx.get(f"{server.base_url}/ServiceProviderConfig", headers=headers, timeout=1)
            return
        time.sleep(0.05)
    raise RuntimeError(f"scim2-server did not answer on {server.base_url} within {deadline_s:.0f}s")


@contextlib.contextmanager
def run_scim2_server(
    token: str, extra_args: Sequence[str] = (), start_timeout_s: float = 20.0
) -> Iterator[RunningScimServer]:
    """Start `scim2-server --bearer-token=TOKEN [extra_args]` on 127.0.0.1 and stop it on exit."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        with tempfile.TemporaryFile() as stderr:
            server = _start(token, extra_args, stderr)
            try:
                _wait_until_serving(server, start_timeout_s, stderr)
            except _PortTaken:
                _stop(server.process)
                if attempt == PORT_ATTEMPTS:
                    raise RuntimeError(f"scim2-server found its port taken {attempt} times in a row") from None
                continue
            except BaseException:
                _stop(server.process)
                raise
            try:
                yield server
            finally:
                _stop(server.process)
            return


def _start(token: str, extra_args: Sequence[str], stderr: IO[bytes]) -> RunningScimServer:
    port = free_loopback_port()
    # --bearer-token=TOKEN in one argument: a random token may start with "-", which argparse would read as
    # another option (secrets.token_urlsafe draws from an alphabet with "-" in it)
    command = [*_scim2_server_command(), "--hostname", "127.0.0.1", "--port", str(port), f"--bearer-token={token}"]
    process = subprocess.Popen([*command, *extra_args], stdout=subprocess.DEVNULL, stderr=stderr)
    return RunningScimServer(base_url=f"http://127.0.0.1:{port}/v2", token=token, process=process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
