"""Logging set-up: one line per event on stderr, with credentials scrubbed.

The okta SDK logs whole request dicts, Authorization header included, at
DEBUG (``okta/http_client.py``). So its logger is held at WARNING, and every
record, whoever emits it, passes through :class:`RedactingFilter`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from reconciler.secret import Secret

OKTA_SDK_LOGGER = "okta-sdk-python"
_CREDENTIAL_PATTERNS = re.compile(
    r"(?i)\b(SSWS|Bearer|DPoP)\s+[A-Za-z0-9._~+/=-]{8,}|(client_assertion=)[A-Za-z0-9._-]+"
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and credential-looking header value masked."""
    for value in secrets:
        if value:
            text = text.replace(value, "********")
    return _CREDENTIAL_PATTERNS.sub(lambda m: f"{m.group(1) or m.group(2)} ********".replace("= ", "="), text)


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


def setup_logging(level: str = "WARNING", secrets: Iterable[Secret] = ()) -> None:
    """Log to stderr at ``level``; the okta SDK never below WARNING."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger(OKTA_SDK_LOGGER).setLevel(max(logging.WARNING, root.level))
    for noisy in ("httpx", "httpcore", "aiohttp.access", "apprise", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
