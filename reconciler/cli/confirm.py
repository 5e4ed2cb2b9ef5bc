"""Plan, confirm, apply: a live run on a terminal shows its plan and asks before its first write, as
``terraform apply`` does.

Asked only when both stdin and stdout are terminals and ``--yes`` (``--auto-approve``) was not given:
a service, a timer, a script or a pipe applies without asking, as it always has. Only ``yes`` approves;
anything else, the end of input (Ctrl-D) or Ctrl-C declines, and nothing is written. The question is
asked with the plan the run then applies: nothing is read again between the answer and the writes.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.markup import escape

from reconciler.cli.ack import acknowledged_note
from reconciler.cli.render import render_group_plan, render_plan
from reconciler.config.model import Config
from reconciler.hooks import ProgressListener
from reconciler.run.outcome import RunOutcome, allowed_writes

APPROVAL = "yes"

NO_COMMAND_HELP = """\
With no COMMAND, reconcile runs once: it reads Okta and the platform, plans the drift, and applies
what the safety gate allows. On a terminal it shows the plan first and asks before the first write
(only 'yes' approves; --yes or --auto-approve skips the question); without a terminal (a service,
a timer, a script, a pipe) it applies without asking. With --dry-run it plans and writes nothing.
A declined plan writes nothing and exits 4; see docs/commands.md for every exit code."""


def is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def interactive(stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> bool:
    """Whether a person is there to answer: stdin and stdout both terminals."""
    return is_terminal(stdin or sys.stdin) and is_terminal(stdout or sys.stdout)


class PlanConfirmation:
    """The question a live run asks on a terminal (:data:`reconciler.run.outcome.ConfirmPlan`).

    ``shown`` tells the caller the plan was printed already, so that the report after the run does not
    print it twice.
    """

    def __init__(self, config: Config, progress: ProgressListener, *, json_output: bool, stdin: IO[str]) -> None:
        self.config = config
        self.progress = progress
        # With --output json stdout carries the document: the plan and the question go to stderr.
        self.console = Console(stderr=json_output)
        self.stdin = stdin
        self.shown = False

    def __call__(self, outcome: RunOutcome) -> bool:
        assert outcome.plan is not None and outcome.gate is not None
        self.progress.finished()  # the display would draw over the question
        render_plan(self.console, outcome.plan, f"Plan (run {outcome.run_id})", acknowledged_note(outcome))
        if outcome.group_plan is not None:
            render_group_plan(self.console, outcome.group_plan)
        self.shown = True
        self._ask(outcome)
        answer = read_answer(self.stdin)
        if answer == APPROVAL:
            return True
        said = "no answer (end of input)" if answer is None else f"answer {answer!r}"
        self.console.print(f"[yellow]Apply cancelled ({escape(said)}):[/] nothing was written.", highlight=False)
        return False

    def _ask(self, outcome: RunOutcome) -> None:
        assert outcome.gate is not None
        target = f"{self.config.scim.base_url}" + (f" (tenant {self.config.tenant})" if self.config.tenant else "")
        console = self.console
        console.print()
        console.print("[bold]Do you want to perform these actions?[/]")
        console.print(f"  {allowed_writes(outcome)} write(s) will be sent to {escape(target)}.", highlight=False)
        if outcome.gate.blocked:
            console.print(f"  [yellow]The safety gate holds back the rest:[/] {escape(outcome.gate.reason)}")
        console.print(f"  Only '{APPROVAL}' will be accepted to approve.", highlight=False)
        console.print()
        console.print("  Enter a value: ", end="", highlight=False)


def read_answer(stdin: IO[str]) -> str | None:
    """One line, stripped and lower-cased; None at the end of input or on Ctrl-C."""
    try:
        with _interruptible():
            line = stdin.readline()
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return None
    return line.strip().lower() if line else None


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt while the answer is read.

    Under ``asyncio.run`` the first Ctrl-C only cancels the main task, and a blocking read would go on
    waiting for a line; Python's own handler is put back for as long as the read lasts.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
