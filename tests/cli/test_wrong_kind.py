"""okta.org_url or scim.base_url pointing at a server of the wrong kind is diagnosed as such.

Real HTTP servers on 127.0.0.1 answer the way wrong servers do (a web page, a 404 everywhere, a 200 of
plain text, JSON of another API), and the two sides' URLs are swapped: ``check`` and a run both say
"this is not an Okta org" / "this is not a SCIM endpoint", name the setting to check, never blame
okta.app_id, and quote no HTML.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta
from tests.support.cli_runner import reconcile

ANSWERS = {
    "html-page": (
        200,
        "text/html; charset=utf-8",
        b"<!DOCTYPE html><html><head><title>Intranet</title></head>"
        b"<body><h1>Welcome</h1><script>var x = 1;</script></body></html>",
    ),
    "404-everywhere": (404, "text/html", b"<html><body><h1>404 Not Found</h1><hr>nginx</body></html>"),
    "non-json-200": (200, "text/plain", b"OK\n"),
    "json-of-another-api": (200, "application/json", json.dumps({"status": "healthy", "version": "4.2"}).encode()),
}
KIND_WORDS = {
    "html-page": "an HTML page titled 'Intranet'",
    "404-everywhere": "HTTP 404 and an HTML page",
    "non-json-200": "a text/plain answer",
    "json-of-another-api": "a JSON object with keys status, version",
}


@pytest.fixture(scope="module")
def wrong_servers() -> Iterator[dict[str, str]]:
    """One real HTTP server per wrong kind, on loopback, answering every path and method the same way."""
    servers: dict[str, str] = {}
    running = []
    for name, (status, content_type, body) in ANSWERS.items():

        class Handler(http.server.BaseHTTPRequestHandler):
            answer = (status, content_type, body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                code, kind, payload = self.answer
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running.append(server)
        servers[name] = f"http://127.0.0.1:{server.server_address[1]}"
    yield servers
    for server in running:
        server.shutdown()
        server.server_close()


def _config(tmp_path: Path, org_url: str, scim_url: str, app_id: str = "0oa1a2b3c4d5e6f7g8h9") -> Path:
    return write_local_config(tmp_path / "state", org_url, app_id, scim_url, OKTA_TOKEN, SCIM_TOKEN)


def _assert_names_the_fix(message: str, side: str, kind: str) -> None:
    if side == "okta":
        assert "this is not an Okta org" in message and "check okta.org_url" in message, message
        assert "okta.app_id" not in message
    else:
        assert "this is not a SCIM endpoint" in message and "check scim.base_url" in message, message
    assert kind in message, message
    assert "<html" not in message.lower() and "<body" not in message.lower() and "ScimCapabilities(" not in message


@pytest.mark.parametrize("kind", sorted(ANSWERS))
def test_check_says_which_url_points_at_the_wrong_kind_of_server(
    kind: str, wrong_servers: dict[str, str], okta: Okta, scim_url: str, tmp_path: Path
) -> None:
    wrong = wrong_servers[kind]
    okta_wrong = reconcile(
        "check", "--config", _config(tmp_path / "o", wrong, scim_url, okta.app_id), "--output", "json"
    )
    assert okta_wrong.code == 1
    document = okta_wrong.json()
    _assert_names_the_fix(document["okta"]["error"], "okta", KIND_WORDS[kind])
    assert document["scim"]["error"] is None  # the right side is not blamed
    scim_wrong = reconcile("check", "--config", _config(tmp_path / "s", okta.org_url, f"{wrong}/scim/v2", okta.app_id))
    assert scim_wrong.code == 1
    _assert_names_the_fix(" ".join(scim_wrong.stdout.split()), "scim", KIND_WORDS[kind])
    assert "<html" not in scim_wrong.stderr.lower() and "ScimCapabilities(" not in scim_wrong.stderr


@pytest.mark.parametrize("kind", ["html-page", "404-everywhere"])
def test_a_run_says_the_same_and_records_it(
    kind: str, wrong_servers: dict[str, str], okta: Okta, scim_url: str, tmp_path: Path
) -> None:
    config = _config(tmp_path, wrong_servers[kind], scim_url, okta.app_id)
    run = reconcile("--config", config, "--dry-run", "--output", "json")
    assert run.code == 1
    _assert_names_the_fix(run.json()["error"], "okta", KIND_WORDS[kind])
    scim_side = _config(tmp_path / "s", okta.org_url, f"{wrong_servers[kind]}/scim/v2", okta.app_id)
    okta.emulator.add_assigned_users(okta.app_id, 1)
    run = reconcile("--config", scim_side, "--dry-run", "--output", "json")
    assert run.code == 1
    _assert_names_the_fix(run.json()["error"], "scim", KIND_WORDS[kind])


def test_the_two_urls_swapped(okta: Okta, scim_url: str, tmp_path: Path) -> None:
    """okta.org_url at the SCIM server and scim.base_url at the Okta org: each side says which URL is wrong."""
    scim_server = urlsplit(scim_url)._replace(path="").geturl()  # an org URL is bare: the SCIM server's root
    swapped = _config(tmp_path, scim_server, okta.org_url, okta.app_id)
    document = reconcile("check", "--config", swapped, "--output", "json").json()
    assert "this is not an Okta org" in document["okta"]["error"] and "okta.app_id" not in document["okta"]["error"]
    assert "this is not a SCIM endpoint" in document["scim"]["error"]
    assert "check scim.base_url" in document["scim"]["error"]


def test_a_missing_app_on_a_real_okta_org_still_names_the_app_id(okta: Okta, scim_url: str, tmp_path: Path) -> None:
    document = reconcile(
        "check", "--config", _config(tmp_path, okta.org_url, scim_url, "0oanosuchapp00000000"), "--output", "json"
    ).json()
    assert "check okta.app_id" in document["okta"]["error"]
    assert "not an Okta org" not in document["okta"]["error"]
