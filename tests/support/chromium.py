"""Headless Chromium for the tests: a page's DOM, a screenshot, a PDF, and every network request the page makes.

The real browser (Debian's ``chromium``, which ``make test`` installs when missing) runs once per call as a
subprocess with ``--headless``; no driver (Playwright, Selenium) and nothing downloaded. Each call is bounded by
a timeout: a hung browser fails the test with a message naming the page and the step, and its whole process
group is killed.

The flags keep the browser to the page: no first-run, sync, component-update or other background traffic, and no
name resolution at all (``--host-resolver-rules``), so a test run never reaches the network. ``requests_made``
sends every request through a recording proxy on 127.0.0.1 (loopback included): what the proxy saw is what the
page asked for, each answered 502 so nothing loads. A page with nothing remote gives an empty list.

Without a Chromium binary the tests that use one are skipped with the reason, except under ``CI``, where they
fail: a CI run cannot pass without the browser. ``$RECONCILER_TEST_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

TIMEOUT_S = 30.0
"""Bound on one browser run; a run takes about a second, so only a hung browser gets near it."""

QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    "--disable-dev-shm-usage",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
"""Chromium with as little of its own to fetch as flags allow; ``~NOTFOUND`` fails every name lookup but the
recording proxy's, so nothing reaches the network even without a proxy."""

BROWSER_SERVICE_HOSTS = frozenset({"accounts.google.com", "update.googleapis.com", "clients2.google.com"})
"""Where Chromium 156 itself connects at startup whatever the flags: Gaia's ListAccounts, the component updater's
on-demand check for the Optimization Guide model manifest (ceofaddefefcbblgcgnibnonglccbfja), network time. A page
loading from one of these exact hosts would be counted as the browser's (no report page has reason to)."""


class ChromiumUnavailable(RuntimeError):
    """No Chromium binary on this machine."""


def find_chromium() -> Path:
    """The browser: ``$RECONCILER_TEST_CHROMIUM``, else ``/usr/bin/chromium``, else ``chromium`` on PATH."""
    given = os.environ.get("RECONCILER_TEST_CHROMIUM")
    if given:
        if not os.access(given, os.X_OK):
            raise ChromiumUnavailable(f"RECONCILER_TEST_CHROMIUM={given} is not an executable file")
        return Path(given)
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ChromiumUnavailable("no chromium binary (make test installs it: apt-get install chromium)")


@dataclass(frozen=True)
class Chromium:
    """One binary and one profile directory (fresh per test); every method runs the browser once."""

    binary: Path
    profile_dir: Path
    timeout_s: float = TIMEOUT_S

    def dump_dom(self, html_path: Path) -> str:
        """The page's DOM after it loaded (scripts run), serialised as HTML."""
        return self._run(html_path, "dump the DOM of", ["--dump-dom"]).stdout

    def screenshot(self, html_path: Path, png_path: Path, width: int, height: int) -> Path:
        """A PNG of the page's first ``width`` × ``height`` pixels, written to ``png_path``."""
        self._run(
            html_path,
            "screenshot",
            [f"--screenshot={png_path}", f"--window-size={width},{height}", "--hide-scrollbars"],
        )
        return _written(png_path, html_path, "screenshot")

    def print_to_pdf(self, html_path: Path, pdf_path: Path) -> Path:
        """The page printed to ``pdf_path`` as the print dialog would, without the date/URL header and footer."""
        self._run(html_path, "print", [f"--print-to-pdf={pdf_path}", "--no-pdf-header-footer"])
        return _written(pdf_path, html_path, "PDF")

    def requests_made(self, html_path: Path) -> list[str]:
        """Every request the page made while it loaded, as ``METHOD URL`` (``CONNECT host:port`` for HTTPS)."""
        return self.traffic(html_path).page

    def traffic(self, html_path: Path) -> Traffic:
        """What went out while the page loaded, split into the page's requests and the browser's own.

        All traffic, loopback too (``<-loopback>``), goes through a recording proxy that answers 502. Virtual
        time lets the page's timers run for a few seconds, so a script that fetches later is caught too.
        """
        with recording_proxy() as proxy:
            flags = [
                f"--proxy-server=http://127.0.0.1:{proxy.port}",
                "--proxy-bypass-list=<-loopback>",
                "--virtual-time-budget=5000",
                "--dump-dom",
            ]
            self._run(html_path, "load", flags)
            seen = proxy.requests()
        browser = [request for request in seen if _host(request) in BROWSER_SERVICE_HOSTS]
        return Traffic(page=[request for request in seen if request not in browser], browser=browser)

    def _run(self, html_path: Path, step: str, flags: list[str]) -> subprocess.CompletedProcess[str]:
        command = [
            str(self.binary),
            *QUIET_FLAGS,
            f"--user-data-dir={self.profile_dir}",
            *flags,
            Path(html_path).resolve().as_uri(),
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            stdout, stderr = process.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            pytest.fail(f"Chromium did not {step} {html_path} within {self.timeout_s:g} s (killed)", pytrace=False)
        finally:
            _kill_group(process)  # the renderer and other children outlive a browser that exited
        if process.returncode != 0:
            pytest.fail(f"Chromium could not {step} {html_path}: exit {process.returncode}\n{stderr[-2000:]}")
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@dataclass(frozen=True)
class Traffic:
    """The requests the recording proxy saw, as ``METHOD URL``: the page's, and Chromium's own service calls."""

    page: list[str]
    browser: list[str]


def _host(request: str) -> str:
    """``accounts.google.com`` of ``CONNECT accounts.google.com:443`` or ``GET http://accounts.google.com/x``."""
    target = request.split(" ", 1)[1]
    authority = target.split("://", 1)[1].split("/", 1)[0] if "://" in target else target
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def _kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait()


def _written(path: Path, html_path: Path, what: str) -> Path:
    if not path.is_file() or path.stat().st_size == 0:
        pytest.fail(f"Chromium wrote no {what} of {html_path} to {path}", pytrace=False)
    return path


class _RecordingHandler(BaseHTTPRequestHandler):
    """Records the request line and refuses it: the page's request is seen, never served."""

    server: _RecordingServer

    def _record(self) -> None:
        with self.server.lock:
            self.server.seen.append(f"{self.command} {self.path}")
        self.send_response(502, "recorded by the test proxy, not forwarded")
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_CONNECT = _record

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Quiet: the requests are the result, not log lines."""


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.lock = threading.Lock()
        self.seen: list[str] = []


@dataclass(frozen=True)
class RecordingProxy:
    """The proxy's port and what it has seen so far."""

    port: int
    _server: _RecordingServer

    def requests(self) -> list[str]:
        with self._server.lock:
            return list(self._server.seen)


@contextmanager
def recording_proxy() -> Iterator[RecordingProxy]:
    """An HTTP/CONNECT proxy on 127.0.0.1 that records every request and forwards none."""
    server = _RecordingServer()
    thread = threading.Thread(target=server.serve_forever, name="recording-proxy", daemon=True)
    thread.start()
    try:
        yield RecordingProxy(server.server_address[1], server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def chromium_for_test(tmp_path: Path) -> Chromium:
    """The body of the ``chromium`` fixture: the browser with a fresh profile, skipped (failed in CI) without one."""
    try:
        binary = find_chromium()
    except ChromiumUnavailable as error:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"CI must run the browser tests: {error}", pytrace=False)
        pytest.skip(f"browser tests need Chromium: {error}")
    return Chromium(binary, Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)))
