"""The progress display: shown on a terminal only, never on stdout, cleared at the end, never raising."""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from reconciler.cli import main
from reconciler.cli.parser import build_parser
from reconciler.cli.progress_display import TerminalProgress, progress_for
from reconciler.hooks import NO_PROGRESS, ProgressListener
from tests.conftest import Okta
from tests.support.cli_runner import reconcile


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal and keeps what was drawn on it."""

    def isatty(self) -> bool:
        if self.closed:
            raise ValueError("I/O operation on closed file")  # as a real closed stream does
        return True


class BrokenTerminal(FakeTerminal):
    """A terminal that fails every write once ``broken`` is set."""

    broken = False

    def write(self, text: str) -> int:
        if self.broken:
            raise OSError("the terminal went away")
        return super().write(text)


@pytest.fixture(autouse=True)
def _capable_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")


def _console(stream: io.StringIO) -> Console:
    return Console(file=stream, force_terminal=True, width=120, color_system=None)


@pytest.fixture
def screen() -> FakeTerminal:
    return FakeTerminal()


@pytest.fixture
def display(screen: FakeTerminal) -> Iterator[TerminalProgress]:
    progress = TerminalProgress(_console(screen), auto_refresh=False)
    try:
        yield progress
    finally:
        progress.finished()


def _run_events(progress: ProgressListener) -> None:
    progress.okta_page(250)
    progress.okta_page(250)
    progress.scim_page(300, 480)
    progress.scim_page(180, 480)
    progress.planned(520)
    progress.apply_started(3)
    progress.write_done(True)
    progress.write_done(False)


# --- which listener a run gets -----------------------------------------------------------------------


def test_quiet_gets_no_display_even_on_a_terminal() -> None:
    assert progress_for(FakeTerminal(), quiet=True) is NO_PROGRESS


def test_a_stream_that_is_not_a_terminal_gets_no_display() -> None:
    assert progress_for(io.StringIO(), quiet=False) is NO_PROGRESS


def test_a_closed_stream_gets_no_display() -> None:
    stream = FakeTerminal()
    stream.close()
    assert progress_for(stream, quiet=False) is NO_PROGRESS


def test_a_dumb_terminal_gets_no_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    assert progress_for(FakeTerminal(), quiet=False) is NO_PROGRESS


def test_a_terminal_gets_the_display_and_it_stops() -> None:
    progress = progress_for(FakeTerminal(), quiet=False)
    try:
        assert isinstance(progress, TerminalProgress)
        assert progress.showing
    finally:
        progress.finished()
    assert isinstance(progress, TerminalProgress) and not progress.showing


def test_the_no_op_listener_takes_every_event() -> None:
    _run_events(NO_PROGRESS)
    NO_PROGRESS.finished()


# --- what the display shows ---------------------------------------------------------------------------


def test_the_display_shows_what_a_user_reads(display: TerminalProgress, screen: FakeTerminal) -> None:
    _run_events(display)
    display.finished()  # the last frame is drawn, then cleared
    drawn = screen.getvalue()
    assert "2 pages, 500 users read" in drawn  # Okta
    assert "2 pages, 480/480 users read" in drawn  # SCIM, out of totalResults
    assert "━" in drawn  # the bars
    assert "520 users planned" in drawn
    assert "2/3 writes, 1 failed" in drawn


def test_large_counts_are_grouped(display: TerminalProgress, screen: FakeTerminal) -> None:
    for _ in range(200):
        display.okta_page(500)
    display.scim_page(1000, 100_000)
    display.finished()
    assert "200 pages, 100,000 users read" in screen.getvalue()
    assert "1 page, 1,000/100,000 users read" in screen.getvalue()


def test_scim_without_a_total_shows_the_count_alone(display: TerminalProgress, screen: FakeTerminal) -> None:
    display.scim_page(50, None)
    display.finished()
    assert "1 page, 50 users read" in screen.getvalue()


def test_no_write_row_for_a_dry_run(display: TerminalProgress, screen: FakeTerminal) -> None:
    display.okta_page(3)
    display.scim_page(3, 3)
    display.planned(3)
    display.finished()
    assert "writes" not in screen.getvalue()


def test_finished_clears_the_display_and_stops_it(display: TerminalProgress, screen: FakeTerminal) -> None:
    _run_events(display)
    assert display.showing
    display.finished()
    assert not display.showing and display.stopped
    drawn = screen.getvalue()
    assert drawn.endswith("\x1b[1A\x1b[2K")  # transient: the cursor goes back up over the rows, erasing them
    assert "\x1b[?25h" in drawn  # and the cursor is shown again


def test_events_after_finished_are_ignored(display: TerminalProgress, screen: FakeTerminal) -> None:
    display.finished()
    drawn = screen.getvalue()
    _run_events(display)
    display.finished()
    assert screen.getvalue() == drawn


def test_a_failing_terminal_never_raises_into_the_run() -> None:
    screen = BrokenTerminal()
    progress = TerminalProgress(_console(screen), auto_refresh=True, refresh_per_second=50)
    screen.broken = True
    _run_events(progress)
    progress.finished()  # its last frame fails to draw: swallowed
    assert not progress.showing
    assert not type(sys.stderr).__name__ == "FileProxy"  # stderr is given back


def test_stderr_is_given_back_after_the_display(display: TerminalProgress) -> None:
    display.finished()
    assert type(sys.stderr).__name__ != "FileProxy"
    assert type(sys.stdout).__name__ != "FileProxy"


def test_stdout_is_never_redirected_while_showing(display: TerminalProgress) -> None:
    assert type(sys.stdout).__name__ != "FileProxy"


def test_log_lines_go_above_the_display_and_the_handler_is_restored(screen: FakeTerminal) -> None:
    handler = logging.StreamHandler(screen)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        progress = TerminalProgress(_console(screen), auto_refresh=False)
        assert handler.stream is not screen  # routed through the display while it shows
        logging.getLogger("reconciler.test").warning("a retried 429")
        progress.finished()
        assert handler.stream is screen
        assert "a retried 429" in screen.getvalue()
    finally:
        root.removeHandler(handler)


def test_the_display_is_a_context_manager(screen: FakeTerminal) -> None:
    with pytest.raises(RuntimeError), TerminalProgress(_console(screen), auto_refresh=False) as progress:
        progress.okta_page(7)
        raise RuntimeError("the run failed")
    assert not progress.showing
    assert "1 page, 7 users read" in screen.getvalue()


# --- the command ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "quiet"),
    [
        (["--dry-run"], False),
        (["--quiet", "--dry-run"], True),
        (["-q"], True),
        (["--dry-run", "-q"], True),
    ],
)
def test_quiet_parses_before_and_after_the_run_options(argv: list[str], quiet: bool) -> None:
    assert build_parser().parse_args(argv).quiet is quiet


def test_help_mentions_quiet() -> None:
    result = reconcile("--help")
    assert result.code == 0
    assert "--quiet" in result.stdout and "-q" in result.stdout
    assert "no progress display" in result.stdout


def _reconcile_takes_progress() -> bool:
    from reconciler.run.reconcile import reconcile as run

    return "progress" in inspect.signature(run).parameters


def _run_with_terminal_stderr(*args: str | Path) -> tuple[int, str, str]:
    """The command with stdout a pipe and stderr a terminal, as in ``reconcile ... | jq``."""
    stdout, stderr = io.StringIO(), FakeTerminal()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(a) for a in args])
    return code, stdout.getvalue(), stderr.getvalue()


def test_json_stays_clean_with_the_display_on_a_terminal(okta: Okta, config_file: Path) -> None:
    if not _reconcile_takes_progress():
        pytest.skip("reconcile() takes no progress listener yet")
    okta.emulator.add_assigned_users(okta.app_id, 3)
    code, stdout, stderr = _run_with_terminal_stderr("--config", config_file, "--dry-run", "--output", "json")
    assert code == 2, stderr
    assert json.loads(stdout)["summary"]["create"] == 3  # nothing of the display on stdout
    assert "3 users read" in stderr and "users planned" in stderr  # the display, on the terminal
    assert stderr.rstrip("\n").endswith("\x1b[2K")  # and cleared before the command ended
    quiet_code, quiet_stdout, quiet_stderr = _run_with_terminal_stderr(
        "--config", config_file, "--dry-run", "--output", "json", "--quiet"
    )
    assert quiet_code == 2 and json.loads(quiet_stdout)["summary"]["create"] == 3
    assert "users read" not in quiet_stderr
