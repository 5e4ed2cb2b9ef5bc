"""Which failures may pass, and how hard both sides try again: one policy for Okta and for SCIM.

Transient (sent again, with exponential backoff and jitter, up to :attr:`RetryPolicy.attempts` requests):

- a timeout: no connection or no answer in time;
- a connection refused, reset, aborted or dropped, a network or host unreachable for a moment, a DNS
  server that could not answer for now (not one that says the name does not exist);
- an answer broken off part-way;
- a 5xx, except 501 Not Implemented and 505 HTTP Version Not Supported, which never pass.

A 429 is not a failure but a pace: each side waits as the server says (``Retry-After``, Okta's
rate-limit reset). Everything else is final at once: other 4xx, a certificate that does not verify,
an unknown host, an answer that is not JSON. Each side maps its HTTP library's exceptions onto
these words (:mod:`reconciler.okta.answers` for aiohttp, :mod:`reconciler.scim.failures` for httpx);
docs/reliability.md states the policy for operators.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

import tenacity


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to retry a request that may succeed later."""

    attempts: int = 5
    """Requests issued at most, the first one included."""
    backoff_multiplier_s: float = 0.5
    """The first backoff; each next one doubles, up to ``max_backoff_s``."""
    max_backoff_s: float = 30.0
    jitter_s: float = 0.5
    """A random 0..jitter_s added to each backoff, so that workers do not retry in step."""
    retry_after_cap_s: float = 60.0
    """The longest ``Retry-After`` honoured; a longer one is cut to this."""

    def backoff(self) -> tenacity.wait.wait_base:
        """The wait before each next attempt: exponential, capped, with jitter."""
        return tenacity.wait_exponential_jitter(
            multiplier=self.backoff_multiplier_s, max=self.max_backoff_s, jitter=self.jitter_s
        )


TRANSIENT_RETRIES: Final = RetryPolicy()
"""The policy both sides use: 5 requests at most, waiting about 0.5, 1, 2 and 4 s between them."""

NEVER_PASSING_5XX: Final = frozenset({HTTPStatus.NOT_IMPLEMENTED, HTTPStatus.HTTP_VERSION_NOT_SUPPORTED})

TRANSIENT_ERRNOS: Final = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
    }
)
"""Socket errors of a connection refused, dropped or unreachable for a moment."""


def is_transient_status(status: int) -> bool:
    """A 5xx that may pass (429 is paced, not retried as a failure)."""
    return 500 <= status < 600 and status not in NEVER_PASSING_5XX


def is_transient_connection_failure(error: BaseException) -> bool:
    """A timeout, or a connection refused, reset, dropped or unreachable for now, anywhere in ``error``'s chain.

    An HTTP library wraps the socket's error in its own (with the OS error as its cause or its
    ``errno``); the chain is read down to it. A DNS answer that the name does not exist is final.
    """
    for link in exception_chain(error):
        if isinstance(link, socket.gaierror):
            return link.errno == socket.EAI_AGAIN
        if isinstance(link, TimeoutError | ConnectionError):
            return True
        if isinstance(link, OSError) and link.errno in TRANSIENT_ERRNOS:
            return True
    return False


def exception_chain(error: BaseException, depth: int = 6) -> Iterator[BaseException]:
    """``error``, then what caused it, and so on (``depth`` links at most)."""
    link: BaseException | None = error
    for _ in range(depth):
        if link is None:
            return
        yield link
        link = link.__cause__ or link.__context__
