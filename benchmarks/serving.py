"""Plumbing shared by the benchmark's server processes and the bench that starts them.

A server process (``python -m benchmarks.okta_server``, ``python -m benchmarks.scim_page_server``)
serves its aiohttp applications on free 127.0.0.1 ports, prints one JSON line on stdout
naming their URLs, and serves until its stdin closes (so it never outlives the bench) or it
is sent SIGTERM/SIGINT. :class:`ServerProcess` is the bench's side of that handshake.

Each server's control port also tells, in its ``GET /stats``, ``first_request_at``: the wall-clock
time (``time.time()``) at which the first request since the last ``POST /reset`` reached it
(:class:`FirstRequestClock`), or null. The servers and the bench run on one machine, so the bench
can compare it with its own ``time.time()`` taken before it started a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 120.0


class FirstRequestClock:
    """When the first request since the last reset reached this server: an aiohttp middleware to put first,
    so that it stamps the arrival before any injected latency."""

    def __init__(self) -> None:
        self.at: float | None = None

    def reset(self) -> None:
        self.at = None

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self.at is None:
            self.at = time.time()
        return await handler(request)


def control(server: ServerProcess, route: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """POST (with a body) or GET a control route of a bench server."""
    url = f"{server.urls['control']}{route}"
    with httpx.Client(timeout=600) as client:
        response = client.post(url, json=body) if body is not None else client.get(url)
    response.raise_for_status()
    return dict(response.json())


async def serve_until_stopped(apps: Mapping[str, web.Application], extra: Mapping[str, Any] | None = None) -> None:
    """Serve each app on its own free loopback port; print ``{name: url, ...}``; wait for the stop signal."""
    runners = []
    ready: dict[str, Any] = dict(extra or {})
    for name, app in apps.items():
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        host, port = runner.addresses[0][:2]
        ready[name] = f"http://{host}:{port}"
        runners.append(runner)
    stop = asyncio.Event()
    _stop_on_signal_or_eof(stop)
    print(json.dumps(ready), flush=True)
    try:
        await stop.wait()
    finally:
        for runner in runners:
            await runner.cleanup()


def _stop_on_signal_or_eof(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def wait_for_eof() -> None:
        # os.read, not sys.stdin: a daemon thread blocked in a buffered read aborts interpreter shutdown.
        with contextlib.suppress(OSError):
            while os.read(sys.stdin.fileno(), 4096):
                pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_eof, name="stdin-eof", daemon=True).start()


class ServerProcess:
    """``python -m MODULE ARGS`` as a context manager; ``urls`` holds what it printed once serving."""

    def __init__(self, module: str, args: Sequence[str] = (), env: Mapping[str, str] | None = None) -> None:
        self.module = module
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.urls: dict[str, Any] = {}

    def start(self) -> Self:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
            cwd=REPO_ROOT,
        )
        assert self.process.stdout is not None
        line = _read_line(self.process.stdout, READY_TIMEOUT_S)
        if not line:
            code = self.process.wait()
            raise RuntimeError(f"{self.module} exited with code {code} before serving")
        self.urls = json.loads(line)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # EOF: the server stops by itself
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        self.stop()


def _read_line(stream: Any, timeout_s: float) -> bytes:
    """One line from a pipe, or b"" if none came within ``timeout_s``."""
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    return result[0] if result else b""
