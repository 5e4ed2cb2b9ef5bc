"""Logging set-up: one line per event on stderr, with credentials scrubbed.

The okta SDK logs whole request dicts, Authorization header included, at
DEBUG (``okta/http_client.py``). So its logger is held at WARNING, and every
record, whoever emits it, passes through :class:`RedactingFilter`.

Two formats: ``text`` (``time level logger: message``; the time is left out
when stderr is the journal, which stamps each line itself) and ``json``, one
JSON object per line (``time``, ``level``, ``logger``, ``message``, ``exc``
with the traceback, and every field a log call passed with ``extra=``: run id,
tenant, counts) for log shippers. The filter runs before either formatter,
so both print the scrubbed record.

What the command itself tells a person on stderr (a run that failed, a store
it cannot open) goes through :func:`tell`: as it is with text logs, and as a
JSON record with json logs, so that every line of stderr parses.

Libraries log their chatter at INFO (alembic's "Context impl SQLiteImpl" at
every start of ``serve``): their loggers are held at WARNING at least.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Final, Literal

from reconciler.run.log_fields import CURRENT_RUN_FIELDS
from reconciler.secret import Secret, redact

OKTA_SDK_LOGGER = "okta-sdk-python"
CHATTY_LIBRARIES: Final = ("httpx", "httpcore", "aiohttp.access", "apprise", "urllib3", "apscheduler", "alembic")
"""Libraries whose INFO lines say nothing an operator needs: held at WARNING at least."""
COMMAND_LOGGER: Final = "reconciler.cli"

_RECORD_ATTRIBUTES: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def record_fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields a log call added with ``extra=`` (run_id, tenant, counts...), by name."""
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES}


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
        for key, value in record_fields(record).items():
            if isinstance(value, str):
                setattr(record, key, redact(value, self._values))
        return True


class RunFieldsFilter(logging.Filter):
    """Stamps the current run's fields (run id, tenant) on each record made while the run goes on."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in CURRENT_RUN_FIELDS.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


LogFormat = Literal["text", "json"]
LOG_FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_TEXT_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (UTC, ISO 8601), level, logger, message, the fields
    given with ``extra=``, exc."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(record_fields(record))
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
    handler.addFilter(RunFieldsFilter())
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger(OKTA_SDK_LOGGER).setLevel(max(logging.WARNING, root.level))
    for noisy in CHATTY_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def json_logs_active() -> bool:
    """Whether stderr's log lines are JSON (``--log-format json``)."""
    return any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers)


def tell(text: str, level: int = logging.ERROR, **fields: object) -> None:
    """A line for the person running the command, on stderr: as is, or a JSON record when logs are JSON."""
    if json_logs_active():
        logging.getLogger(COMMAND_LOGGER).log(level, "%s", text, extra=fields)
    else:
        print(text, file=sys.stderr)
