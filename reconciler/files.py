"""Files the tool writes for people (saved plans, reports): whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, mode 0600: a temporary file beside it, then a rename.

    A reader sees the old file or the whole new one, never a part; plans and reports list user names and
    e-mail addresses, hence 0600.
    """
    write_private_stream(path, lambda file: file.write(text))


def write_private_stream(path: Path, produce: Callable[[TextIO], object]) -> None:
    """As :func:`write_private_file`, with ``produce`` writing the text to the file bit by bit: a large export
    never needs to be held in memory whole. Whatever ``produce`` raises, the temporary file is removed."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            produce(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
