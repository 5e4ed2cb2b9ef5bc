"""Sending a run's message through apprise, to every channel at once, and keeping its URLs out of the log.

One message per run gathers its notifications and goes to every apprise URL of
``[alerts] urls`` at once; it counts as told when at least one channel took it.
A message no channel took is not recorded as told, so the next run tells it
again (at least once, never silently lost).

apprise URLs embed tokens and passwords: they are revealed to apprise only and
never logged; a channel is named by its position in the configuration and its
scheme.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from reconciler.alerts.message import Message
from reconciler.secret import Secret

if TYPE_CHECKING:
    import apprise

log = logging.getLogger(__name__)


SEND_TIMEOUT_S: Final = 30.0


@functools.cache
def _apprise_asset() -> apprise.AppriseAsset:
    import apprise

    return apprise.AppriseAsset(app_id="okta-reconciler", app_desc="okta-reconciler alerts")


async def send(message: Message, urls: Sequence[Secret], timeout_s: float = SEND_TIMEOUT_S) -> bool:
    """Send to every channel at once; True when at least one took the message.

    A failing channel is logged, by position and scheme, and never raises.
    """
    if not urls:
        log.info("alert not sent, no channel: %s (see [alerts] urls)", message.title)
        return False
    _keep_urls_out_of_logs()
    sent = await asyncio.gather(*(_send_one(message, url, position, timeout_s) for position, url in enumerate(urls, 1)))
    return any(sent)


async def _send_one(message: Message, url: Secret, position: int, timeout_s: float) -> bool:
    # Imported here, when a message goes out: apprise and its plugins take a tenth of a second to import,
    # and most runs alert nothing.
    import apprise

    scheme = url.reveal().partition("://")[0]
    channel = apprise.Apprise(asset=_apprise_asset())
    if not channel.add(url.reveal()):
        log.warning("alert channel %d (%s://): apprise cannot use this URL, check its syntax", position, scheme)
        return False
    try:
        async with asyncio.timeout(timeout_s):
            result = await channel.async_notify(
                body=message.body,
                title=message.title,
                notify_type=message.notify_type,
                body_format=apprise.NotifyFormat.TEXT,
            )
    except TimeoutError:
        log.warning("alert channel %d (%s://): no answer within %g s", position, scheme, timeout_s)
        return False
    except Exception as error:  # a plugin's bug; its message may quote the URL, so only its type is logged
        log.warning("alert channel %d (%s://) failed: %s", position, scheme, type(error).__name__)
        return False
    if not result:
        log.warning("alert channel %d (%s://) did not take the alert", position, scheme)
    return bool(result)


class _NoUrlRecords(logging.Filter):
    """Drops apprise's and urllib3's records that may hold an alert URL, and with it a token.

    Below WARNING they log the URLs and request lines they send and socket
    errors that quote them; above, apprise names an unusable URL, half masked.
    What is left (a status code, a host name) still says what went wrong.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and "://" not in record.getMessage()


_URL_GUARD: Final = _NoUrlRecords()


_SENDING_LOGGERS: Final = ("apprise", "urllib3.connectionpool")


def _keep_urls_out_of_logs() -> None:
    for name in _SENDING_LOGGERS:
        logger = logging.getLogger(name)
        if _URL_GUARD not in logger.filters:
            logger.addFilter(_URL_GUARD)
