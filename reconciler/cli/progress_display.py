"""The progress display of a run on a terminal: pages read, users planned, writes done.

:func:`progress_for` picks the listener for a run: :class:`TerminalProgress`
when stderr is a terminal, :data:`~reconciler.hooks.NO_PROGRESS` with
``--quiet``, off a terminal (pipes, files, the journal) or with ``TERM=dumb``.

The display is drawn with ``rich.progress`` on stderr, never stdout (so
``--output json`` stays clean), refreshed by rich's own thread a few times a
second, and cleared when the run is over. Its event methods are called from
the run's event loop: they only update counters and return at once, and they
never raise into the run. A display that fails turns itself off.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any, Self

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import BarColumn, Progress, SpinnerColumn, Task, TaskID, TextColumn
from rich.text import Text

from reconciler.hooks import NO_PROGRESS, ProgressListener

log = logging.getLogger(__name__)

REFRESH_PER_SECOND = 8


def progress_for(stream: IO[str], quiet: bool) -> ProgressListener:
    """The listener for a run whose display would go to ``stream`` (the command passes ``sys.stderr``)."""
    if quiet or os.environ.get("TERM") == "dumb" or not _is_terminal(stream):
        return NO_PROGRESS
    try:
        console = Console(stderr=True) if stream is sys.stderr else Console(file=stream)
        return TerminalProgress(console)
    except Exception:  # a display is a nicety: never the reason a run does not happen
        log.debug("no progress display", exc_info=True)
        return NO_PROGRESS


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _never_raises(method: Callable[..., None]) -> Callable[..., None]:
    """An event of a stopped display is ignored; a display that fails is turned off, not raised."""

    @functools.wraps(method)
    def guarded(self: TerminalProgress, *args: Any, **kwargs: Any) -> None:
        if self.stopped:
            return
        try:
            method(self, *args, **kwargs)
        except Exception:
            log.debug("progress display failed; turning it off", exc_info=True)
            self.finished()

    return guarded


class _BarOnceTotalKnown(BarColumn):
    """A bar on the rows that have one (field ``bar``), once their total is known; blank otherwise, not a pulse."""

    def render(self, task: Task) -> Any:
        if not task.fields.get("bar") or task.total is None:
            return Text(" " * (self.bar_width or 0))
        return super().render(task)


class TerminalProgress:
    """A :class:`~reconciler.hooks.ProgressListener` drawn with rich on a terminal.

    It is shown from construction (or ``with``) until :meth:`finished`, which
    clears it; call that in a ``finally``. Four rows, the last two once they
    have something to say::

        ⠋ Okta   12 pages, 6,000 users read
        ⠋ SCIM   ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  3 pages, 1,500/100,000 users read
        ✓ Plan                                   101,234 users planned
        ⠋ Write  ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  2/3 writes, 1 failed

    ``console`` is where it draws (default: stderr); ``auto_refresh=False``
    draws only on start and stop (for tests).
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        refresh_per_second: float = REFRESH_PER_SECOND,
        auto_refresh: bool = True,
    ) -> None:
        self.console = console if console is not None else Console(stderr=True)
        self.stopped = False
        self._okta_pages = self._okta_users = 0
        self._scim_pages = self._scim_users = 0
        self._scim_total: int | None = None
        self._writes: int | None = None
        self._written = self._failed = 0
        self._log_streams: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("[bold]{task.description:<5}"),
            _BarOnceTotalKnown(bar_width=30),
            TextColumn("{task.fields[detail]}"),
            console=self.console,
            auto_refresh=auto_refresh,
            refresh_per_second=refresh_per_second,
            transient=True,
            redirect_stdout=False,  # stdout is the report's (and --output json's); the display never touches it
            redirect_stderr=True,  # a stray print to stderr goes above the display instead of through it
        )
        self._okta = self._progress.add_task("Okta", total=None, detail="reading", bar=False)
        self._scim = self._progress.add_task("SCIM", total=None, detail="reading", bar=False)
        self._plan = self._progress.add_task("Plan", total=None, detail="", bar=False, visible=False)
        self._write = self._progress.add_task("Write", total=None, detail="", bar=True, visible=False)
        self._start()

    @property
    def showing(self) -> bool:
        """True while the display is on the terminal."""
        return self._progress.live.is_started

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.finished()

    def _start(self) -> None:
        try:
            self._progress.start()
            self._route_logs_above_display()
        except Exception:
            log.debug("progress display could not start", exc_info=True)
            self.finished()

    def _route_logs_above_display(self) -> None:
        """Log lines to the display's terminal are printed above it, not through it (which garbles both)."""
        terminal = getattr(self.console.file, "rich_proxied_file", self.console.file)
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and handler.stream in (terminal, self.console.file):
                original = handler.stream
                proxy = FileProxy(self.console, terminal)
                handler.setStream(proxy)
                self._log_streams.append((handler, (original, proxy)))

    def _restore_logs(self) -> None:
        for handler, (original, proxy) in self._log_streams:
            if handler.stream is proxy:
                proxy.flush()
                handler.setStream(original)
        self._log_streams.clear()

    # --- the ProgressListener events ---------------------------------------------------------------------

    @_never_raises
    def okta_page(self, users: int) -> None:
        self._okta_pages += 1
        self._okta_users += users
        self._update(self._okta, completed=self._okta_users, detail=self._okta_detail())

    @_never_raises
    def scim_page(self, users: int, total: int | None) -> None:
        self._scim_pages += 1
        self._scim_users += users
        if total is not None:
            self._scim_total = total
        self._update(
            self._scim,
            completed=self._scim_users,
            total=self._scim_total,
            bar=self._scim_total is not None,
            detail=self._scim_detail(),
        )

    @_never_raises
    def planned(self, users: int) -> None:
        # Planning needs both sides whole: both reads are over.
        self._update(self._okta, total=self._okta_users, completed=self._okta_users, detail=self._okta_detail())
        self._update(self._scim, total=self._scim_users, completed=self._scim_users, detail=self._scim_detail())
        self._update(self._plan, total=1, completed=1, visible=True, detail=f"{users:,} users planned")

    @_never_raises
    def apply_started(self, writes: int) -> None:
        self._writes = writes
        if writes:
            self._update(self._write, total=writes, completed=self._written, visible=True, detail=self._write_detail())

    @_never_raises
    def write_done(self, succeeded: bool) -> None:
        self._written += 1
        if not succeeded:
            self._failed += 1
        total = max(self._writes or 0, self._written)
        self._update(self._write, total=total, completed=self._written, visible=True, detail=self._write_detail())

    def finished(self) -> None:
        """Clear the display and stop its thread; safe to call twice, and after a failure."""
        if self.stopped:
            return
        self.stopped = True
        try:
            self._restore_logs()
        except Exception:
            log.debug("progress display: restoring log streams failed", exc_info=True)
        try:
            self._progress.stop()
        except Exception:
            log.debug("progress display: stopping failed", exc_info=True)

    # --- rendering ---------------------------------------------------------------------------------------

    def _update(self, task: TaskID, **changes: Any) -> None:
        self._progress.update(task, **changes)

    def _okta_detail(self) -> str:
        return f"{_count(self._okta_pages, 'page')}, {self._okta_users:,} users read"

    def _scim_detail(self) -> str:
        users = f"{self._scim_users:,}" if self._scim_total is None else f"{self._scim_users:,}/{self._scim_total:,}"
        return f"{_count(self._scim_pages, 'page')}, {users} users read"

    def _write_detail(self) -> str:
        total = max(self._writes or 0, self._written)
        detail = f"{self._written:,}/{total:,} writes"
        return detail + (f", [red]{self._failed:,} failed[/]" if self._failed else "")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
