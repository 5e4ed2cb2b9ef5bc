"""Serving the emulator on 127.0.0.1: in the running event loop, or from its own loop in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from aiohttp import web

from reconciler.testing.okta.emulator import OktaEmulator


@asynccontextmanager
async def run_okta_emulator(emulator: OktaEmulator, *, port: int = 0) -> AsyncIterator[str]:
    """Serve the emulator on 127.0.0.1 in the running event loop; yields its base URL.

    ``port=0`` picks a free port. Example::

        async with run_okta_emulator(emulator) as org_url:
            ...  # org_url == "http://127.0.0.1:54321"
    """
    runner = web.AppRunner(emulator.make_app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        host, bound_port = runner.addresses[0][:2]
        yield f"http://{host}:{bound_port}"
    finally:
        await runner.cleanup()


@contextmanager
def okta_emulator_in_thread(emulator: OktaEmulator, *, port: int = 0, timeout_s: float = 10.0) -> Iterator[str]:
    """Serve the emulator from its own event loop in a daemon thread; yields its base URL.

    For sync code and for tests that run the reconciler as a subprocess.
    The emulator's Python API stays usable from the calling thread.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="okta-emulator", daemon=True)
    thread.start()
    serving = run_okta_emulator(emulator, port=port)
    try:
        base_url = asyncio.run_coroutine_threadsafe(serving.__aenter__(), loop).result(timeout_s)
        try:
            yield base_url
        finally:
            asyncio.run_coroutine_threadsafe(serving.__aexit__(None, None, None), loop).result(timeout_s)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        loop.close()
