"""A loopback port that refuses connections until it is told to listen, then serves an aiohttp app on it.

A TCP socket bound but not listening answers a connect with RST: "connection refused", as a server that
is restarting does. :meth:`LateListener.listen` starts listening at once (connections queue in the
backlog) and serves the app from the running event loop as soon as it can.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


class LateListener:
    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._runner: web.AppRunner | None = None
        self._serving: asyncio.Task[None] | None = None

    def listen(self) -> None:
        """Accept connections from now on; call from the event loop the client runs in."""
        self._socket.listen(16)
        self._serving = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    async def close(self) -> None:
        if self._serving is not None:
            await self._serving
        if self._runner is not None:
            await self._runner.cleanup()
        self._socket.close()


@asynccontextmanager
async def late_listener(app: web.Application) -> AsyncIterator[LateListener]:
    listener = LateListener(app)
    try:
        yield listener
    finally:
        await listener.close()
