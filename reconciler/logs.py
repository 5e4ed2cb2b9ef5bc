"""Logging set-up: one line per event on stderr, with credentials scrubbed.

The okta SDK logs whole request dicts, Authorization header included, at
DEBUG (``okta/http_client.py``). So its logger is held at WARNING, and every
record, whoever emits it, passes through :class:`RedactingFilter`.

Two formats: ``text`` (``time level logger: message``; the time is left out
when stderr is the journal, which stamps each line itself) and ``json``, one
JSON object per line (``time``, ``level``, ``logger``, ``message``, and ``exc``
with the traceback) for log shippers. The filter runs before either formatter,
so both print the scrubbed record.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Final, Literal

from reconciler.secret import Secret, redact

OKTA_SDK_LOGGER = "okta-sdk-python"


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's final message (arguments included)."""

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        super().__init__()
        self._values = [s.reveal() for s in secrets]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self._values)
        if record.exc_info and record.exc_info[1] is not None:
            cleaned_exc = redact(logging.Formatter().formatException(record.exc_info), self._values)
            record.exc_info = None
            record.exc_text = cleaned_exc
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


LogFormat = Literal["text", "json"]
LOG_FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_TEXT_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (UTC, ISO 8601), level, logger, message, exc."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exc"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def stderr_is_journal(environ: Mapping[str, str] = os.environ) -> bool:
    """True when systemd connected stderr to the journal (``$JOURNAL_STREAM`` names its device:inode)."""
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        stat = os.fstat(sys.stderr.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):
        return False


def _formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format != "text":
        raise ValueError(f"log format must be one of {LOG_FORMATS}, not {log_format!r}")
    return logging.Formatter(JOURNAL_TEXT_FORMAT if stderr_is_journal() else TEXT_FORMAT)


def setup_logging(level: str = "WARNING", secrets: Iterable[Secret] = (), log_format: LogFormat = "text") -> None:
    """Log to stderr at ``level`` in ``log_format``; the okta SDK never below WARNING."""
    handler = logging.StreamHandler()
    handler.setFormatter(_formatter(log_format))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger(OKTA_SDK_LOGGER).setLevel(max(logging.WARNING, root.level))
    for noisy in ("httpx", "httpcore", "aiohttp.access", "apprise", "urllib3", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
