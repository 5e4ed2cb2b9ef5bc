"""How to call this command again, for the commands its hints print.

A hint ("Inspect with: ...", "apply it with: ...") is meant to be pasted. So it names the
command as the user invoked it: ``reconcile`` when that is what ``PATH`` finds,
``.venv/bin/reconcile`` when it was run by that path, ``python -m reconciler`` when run so;
and it carries the ``--config`` (and ``--tenant``) the run used, quoted for a POSIX shell.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from reconciler.config.model import Config

DEFAULT_COMMAND = ("reconcile",)

_invoked_as: tuple[str, ...] = DEFAULT_COMMAND


def command_from(argv0: str, executable: str = sys.executable) -> tuple[str, ...]:
    """The words that run this command again, from ``sys.argv[0]`` as the process was started."""
    path = Path(argv0)
    if path.name == "__main__.py" and path.parent.name == "reconciler":
        return (_shortest(executable), "-m", "reconciler")
    if not path.name or not path.is_file() or not os.access(path, os.X_OK):
        return DEFAULT_COMMAND  # python -c, an embedding, a test calling main(): the installed name
    return (_shortest(argv0),)


def _shortest(program: str) -> str:
    """``program``'s bare name when ``PATH`` finds that same file under it, else the path as given."""
    name = Path(program).name
    found = shutil.which(name)
    if found is not None and Path(found).resolve() == Path(program).resolve():
        return name
    return program


def remember_invocation(argv0: str | None) -> None:
    """Set from ``main()``: ``argv0`` is None when main was handed its arguments (not a process's command line)."""
    global _invoked_as
    _invoked_as = command_from(argv0) if argv0 is not None else DEFAULT_COMMAND


def again(*words: str | Path, config: Config | None = None, tenant: bool = False) -> str:
    """The command line that runs ``words`` with the file ``config`` came from (and its tenant when ``tenant``)."""
    options: list[str] = []
    if config is not None and config.source_path is not None:
        options += ["--config", str(config.source_path)]
    if tenant and config is not None and config.tenant:
        options += ["--tenant", config.tenant]
    return shlex.join([*_invoked_as, *options, *map(str, words)])
