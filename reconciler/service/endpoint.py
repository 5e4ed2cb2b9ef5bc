"""The HTTP endpoint of ``reconcile serve``: ``GET /metrics`` and ``GET /healthz``, in the service's event loop."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST


class Rendered(Protocol):
    """Metrics in Prometheus' text format."""

    def render(self) -> bytes: ...


class HealthCheck(Protocol):
    """``/healthz``: (healthy, one line saying why)."""

    def check(self) -> tuple[bool, str]: ...


class MetricsServer:
    """``GET /metrics`` (Prometheus text format) and ``GET /healthz`` on exactly ``host:port``."""

    def __init__(self, metrics: Rendered, health: HealthCheck, host: str, port: int) -> None:
        self.metrics, self.health = metrics, health
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen; raises OSError when the address cannot be bound (in use, not local)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port, reuse_address=True).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [tuple(a[:2]) for a in self._runner.addresses] if self._runner else []  # type: ignore[misc]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        healthy, why = self.health.check()
        return web.Response(status=200 if healthy else 503, text=why + "\n")
