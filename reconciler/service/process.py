"""The process around a daemon: its event loop, its signals, and the secrets its log masks across reloads."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from reconciler.logs import LogFormat, setup_logging
from reconciler.secret import Secret
from reconciler.service.daemon import ConfigT, Daemon


class MaskedSecrets:
    """The secrets the log masks: those of every configuration served so far.

    Values of an old configuration may still be in flight after a reload (a run
    started with it, an error text quoting it): they stay masked too.
    """

    def __init__(self, secrets: list[Secret], log_level: str, log_format: LogFormat) -> None:
        self.secrets = list(secrets)
        self.log_level, self.log_format = log_level, log_format

    def add(self, secrets: list[Secret]) -> None:
        """Mask ``secrets`` as well, from the next log line on."""
        known = {secret.reveal() for secret in self.secrets}
        self.secrets.extend(secret for secret in secrets if secret.reveal() not in known)
        setup_logging(self.log_level, self.secrets, self.log_format)


def serve_until_stopped(
    daemon: Callable[[Callable[[ConfigT], None]], Daemon[ConfigT]],
    secrets_of: Callable[[ConfigT], list[Secret]],
    config: ConfigT,
    log_level: str,
    log_format: LogFormat,
) -> int:
    """Run ``daemon(on_reload)`` in a new event loop until SIGTERM or SIGINT; its exit code.

    ``secrets_of`` names the secrets of each configuration it serves, ``config`` first.
    """

    async def main() -> int:
        masked = MaskedSecrets(secrets_of(config), log_level, log_format)
        served = daemon(lambda new: masked.add(secrets_of(new)))
        with signals_wired(served.request_stop, served.reload):
            return await served.run()

    return asyncio.run(main())


@contextmanager
def signals_wired(stop: Callable[[str], None], reload: Callable[[], object]) -> Iterator[None]:
    """SIGTERM and SIGINT call ``stop(name)``, SIGHUP ``reload()``, in the running loop, for the block."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum.name)
    loop.add_signal_handler(signal.SIGHUP, reload)
    try:
        yield
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
