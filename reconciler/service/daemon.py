"""The life cycle every ``reconcile serve`` shares, for one target or as a replica of a fleet.

:class:`Daemon` is written once here; :class:`reconciler.service.single.Service`
and :class:`reconciler.service.fleet.Replica` only say what differs: what their
scheduler runs, which runs are in flight, how they describe themselves, and how
they take a new configuration. In order, a daemon:

1. serves ``/metrics`` and ``/healthz`` (a taken ``metrics.listen``: it ends with 1
   before telling systemd it is ready) and counts HTTP requests while it serves;
2. starts its APScheduler, tells systemd READY (and STATUS), keeps the watchdog fed;
3. on the first stop request (SIGTERM, SIGINT) pauses the scheduler, tells
   STOPPING, gives the runs in flight ``stop_timeout`` to finish, then cancels
   them (recorded interrupted) and gives their recording ``CANCEL_GRACE_S``; a
   second request cancels them at once;
4. on SIGHUP re-reads its file: a bad one is rejected (a log line per reason, the
   running configuration kept); a good one is adopted. Either way READY ends the
   RELOADING, with the reason in STATUS.

Signals are wired by :func:`reconciler.service.process.serve_until_stopped`, not
here, so that tests can drive a daemon in their own event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Generic, Protocol, TypedDict, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from reconciler.config.service_model import MetricsConfig
from reconciler.errors import ConfigError
from reconciler.hooks import http_observer, rate_limit_observer
from reconciler.service.endpoint import HealthCheck, MetricsServer, Rendered
from reconciler.service.notify import Notifier, start_watchdog
from reconciler.store import Store

CANCEL_GRACE_S: Final = 5.0
"""After cancelling a run at the stop deadline, how long its recording (run and actions interrupted) may take."""


class ServedConfig(Protocol):
    """What the life cycle reads of a configuration: where its metrics listen, and the file it came from."""

    @property
    def metrics(self) -> MetricsConfig: ...
    @property
    def source_path(self) -> Path | None: ...


ConfigT = TypeVar("ConfigT", bound=ServedConfig)


class ServedMetrics(Rendered, Protocol):
    """Metrics that count HTTP requests through :func:`reconciler.hooks.http_observer`, show Okta's rate-limit
    windows through :func:`reconciler.hooks.rate_limit_observer`, and render for /metrics."""

    def observe_http(self, service: str, status: int | None, elapsed_s: float | None = None) -> None: ...
    def observe_rate_limit(self, org: str, family: str, limit: int, remaining: int) -> None: ...


@dataclass(frozen=True)
class StopWords:
    """How a stop names, in the log, the runs it waits for: one target's run, or a replica's runs."""

    in_flight: str
    """What a second stop request cancels at once."""
    letting: str
    """What the stop waits for; ``{count}`` runs."""
    cancelling: str
    """The runs that outlived ``stop_timeout``, cancelled; ``{count}`` runs, ``{timeout:g}`` seconds."""
    idle: str | None = None
    """Said when no run was in flight; None: nothing is said."""


class DaemonOptions(TypedDict, Generic[ConfigT], total=False):
    """What a daemon may be given besides its configuration and store; tests give their own."""

    notifier: Notifier | None
    """systemd's notify socket; by default the one ``$NOTIFY_SOCKET`` names, if any."""
    environ: Mapping[str, str]
    """Where ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and the configuration's ``*_env`` come from."""
    clock: Callable[[], float]
    on_reload: Callable[[ConfigT], None] | None
    """Called with each configuration a reload adopts (``reconcile serve`` masks its secrets in the log)."""


class Daemon(ABC, Generic[ConfigT]):
    """A service's life cycle (see the module's docstring): :meth:`run` serves until :meth:`request_stop`."""

    stop_words: ClassVar[StopWords]
    metrics: ServedMetrics
    health: HealthCheck

    def __init__(
        self,
        store: Store,
        *,
        notifier: Notifier | None = None,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
        on_reload: Callable[[ConfigT], None] | None = None,
    ) -> None:
        self.log = logging.getLogger(type(self).__module__)
        """The subclass's module's logger: its lines keep the name they always had."""
        self.store = store
        self.notifier = notifier or Notifier(environ)
        self.environ = environ
        self.clock = clock
        self.scheduler: AsyncIOScheduler | None = None
        self.metrics_server: MetricsServer | None = None
        self._on_reload = on_reload
        self._stop = asyncio.Event()
        self._stop_reason = ""

    # --- what differs ----------------------------------------------------------------------------

    @property
    @abstractmethod
    def served(self) -> ConfigT:
        """The configuration in force."""

    @abstractmethod
    def read_file(self, path: Path) -> ConfigT:
        """Load a configuration file of the served kind (raises ConfigError)."""

    @abstractmethod
    def adopt(self, new: ConfigT) -> None:
        """Take a good configuration, re-read on SIGHUP, from the next run on."""

    @abstractmethod
    def start_jobs(self, scheduler: AsyncIOScheduler) -> None:
        """Add the jobs that start runs to the started scheduler."""

    @abstractmethod
    def in_flight(self) -> Sequence[asyncio.Task[Any]]:
        """The runs going on now, which a stop waits for."""

    @abstractmethod
    def stop_timeout_s(self) -> float:
        """How long a stop waits for the runs in flight before it cancels them."""

    @abstractmethod
    def describe_serving(self) -> str:
        """The log line once serving."""

    @abstractmethod
    def describe_reload(self) -> str:
        """What a reloaded configuration serves, after ``config reloaded from <file>: ``."""

    @abstractmethod
    def describe_status(self) -> str:
        """systemd's STATUS line now."""

    def prepare(self) -> None:
        """What to learn before serving (from the store, say); nothing by default."""

    def announce_ready(self) -> None:
        """Tell systemd READY, with the STATUS line."""
        self.notifier.ready(self.describe_status())

    # --- life cycle ------------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """A stop was requested: nothing new starts."""
        return self._stop.is_set()

    async def run(self) -> int:
        """Serve until :meth:`request_stop`; 0 after a clean stop, 1 if it cannot start."""
        self.prepare()
        if not await self._start_endpoint(self.served.metrics):
            return 1
        try:
            with http_observer(self.metrics.observe_http), rate_limit_observer(self.metrics.observe_rate_limit):
                return await self._serve()
        finally:
            if self.metrics_server is not None:
                await self.metrics_server.stop()
            self.notifier.close()

    async def _start_endpoint(self, config: MetricsConfig) -> bool:
        """Serve /metrics and /healthz where ``metrics.listen`` says (if anywhere); False if that cannot be."""
        if config.address is None:
            return True
        server = MetricsServer(self.metrics, self.health, *config.address)
        try:
            await server.start()
        except OSError as error:
            self.log.error("cannot serve metrics on %s (metrics.listen): %s", config.listen, error)
            return False
        self.metrics_server = server
        return True

    async def _serve(self) -> int:
        self.scheduler = AsyncIOScheduler()
        self.scheduler.start()
        self.start_jobs(self.scheduler)
        self.log.info("%s", self.describe_serving())
        self.announce_ready()
        watchdog = start_watchdog(self.notifier, self.environ, self.scheduling)
        try:
            await self._stop.wait()
            await self._wind_down()
        finally:
            if watchdog is not None:
                watchdog.cancel()
        self.log.info("stopped")
        return 0

    def scheduling(self) -> bool:
        """The scheduler runs: what the watchdog checks before it tells systemd all is well."""
        return self.scheduler is not None and self.scheduler.running

    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop scheduling and end the service (SIGTERM, SIGINT); a second request cancels the runs at once."""
        if self._stop.is_set():
            unfinished = self._unfinished()
            if unfinished:
                self.log.warning("%s again: cancelling %s now", reason, self.stop_words.in_flight)
                for task in unfinished:
                    task.cancel()
            return
        self._stop_reason = reason
        if self.scheduling():
            self.scheduler.pause()  # type: ignore[union-attr]
        self._stop.set()

    def _unfinished(self) -> list[asyncio.Task[Any]]:
        return [task for task in self.in_flight() if not task.done()]

    async def _wind_down(self) -> None:
        self.notifier.stopping(f"stopping ({self._stop_reason}); {self.describe_status()}")
        unfinished = self._unfinished()
        if unfinished:
            await self._drain(unfinished, self.stop_timeout_s())
        elif self.stop_words.idle is not None:
            self.log.info("%s: %s", self._stop_reason, self.stop_words.idle)
        if self.scheduling():
            self.scheduler.shutdown(wait=False)  # type: ignore[union-attr]
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback

    async def _drain(self, runs: list[asyncio.Task[Any]], timeout_s: float) -> None:
        """Let ``runs`` finish for ``timeout_s``, then cancel the rest: they record themselves interrupted."""
        words = self.stop_words
        letting = words.letting.format(count=len(runs))
        self.log.info("%s: %s (up to %g s, schedule.stop_timeout)", self._stop_reason, letting, timeout_s)
        _, pending = await asyncio.wait(runs, timeout=timeout_s)
        if pending:
            self.log.warning("%s", words.cancelling.format(count=len(pending), timeout=timeout_s))
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=CANCEL_GRACE_S)

    # --- reload ----------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the configuration file (SIGHUP); a bad one is rejected and the running one kept."""
        if self.stopping:
            return False
        self.notifier.reloading()
        new = self._reread(self.served.source_path)
        if new is None:
            return False
        self.adopt(new)
        if self._on_reload is not None:
            self._on_reload(new)
        self.log.info("config reloaded from %s: %s", new.source_path, self.describe_reload())
        self.notifier.ready(f"config reloaded; {self.describe_status()}")
        return True

    def _reread(self, path: Path | None) -> ConfigT | None:
        """The file read again, or None when it is rejected (said in the log and in READY's STATUS)."""
        try:
            if path is None:
                raise ConfigError(["the running configuration has no file to re-read"])
            return self.read_file(path)
        except ConfigError as error:
            for problem in error.problems:
                self.log.error("config reload rejected, keeping the running configuration: %s", problem)
            self.notifier.ready(f"config reload rejected ({len(error.problems)} problem(s)); {self.describe_status()}")
        except Exception as error:  # a signal handler must not take the service down
            self.log.exception("config reload rejected, keeping the running configuration: %s", error)
            self.notifier.ready(f"config reload rejected; {self.describe_status()}")
        return None
