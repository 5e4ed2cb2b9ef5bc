"""The ``reconcile`` command's exit codes (the table is in :mod:`reconciler.cli.main`'s docstring)."""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_DRIFT: Final = 2
EXIT_BLOCKED: Final = 3
EXIT_DECLINED: Final = 4
"""A live run whose plan the operator declined at the confirmation (no, end of input, Ctrl-C): nothing written."""
EXIT_BUSY: Final = 75
EXIT_USAGE: Final = 64
EXIT_CONFIG: Final = 78
