"""The ``reconcile`` command: arguments, commands, rendering and exit codes."""

from reconciler.cli.main import main

__all__ = ["main"]
