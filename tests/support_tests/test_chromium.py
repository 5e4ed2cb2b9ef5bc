"""The headless Chromium harness (tests/support/chromium.py) on the real browser: DOM, PNG, PDF, network."""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path

import pytest

from tests.support.chromium import Chromium

REMOTE_PAGE = """<!doctype html>
<link rel="stylesheet" href="http://styles.example.invalid/report.css">
<style>@font-face { font-family: F; src: url(http://fonts.example.invalid/f.woff2) } body { font-family: F }</style>
<p>text in the remote font</p>
<img src="http://images.example.invalid/x.png" alt="">
<img src="http://127.0.0.1:8123/local.png" alt="">
<script src="https://cdn.example.invalid/chart.js"></script>
<script>setTimeout(() => fetch("http://api.example.invalid/later"), 1000)</script>
"""

INLINE_PAGE = """<!doctype html>
<style>body { font-family: sans-serif } .bar { fill: #36c }</style>
<h1>Drift</h1>
<svg width="120" height="40"><rect class="bar" x="0" y="10" width="30" height="30"/></svg>
<p>Only inline CSS and SVG.</p>
"""


def page(tmp_path: Path, name: str, html: str) -> Path:
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    return path


def test_dump_dom_shows_what_the_scripts_built(tmp_path: Path, chromium: Chromium) -> None:
    script = "for (let i = 0; i < 7; i++) l.append(document.createElement('li'))"
    html = f"<!doctype html><ul id=l></ul><script>{script}</script>"
    dom = chromium.dump_dom(page(tmp_path, "list.html", html))
    assert len(re.findall(r"<li>", dom)) == 7


def test_a_screenshot_is_a_png_of_the_window_size(tmp_path: Path, chromium: Chromium) -> None:
    png = chromium.screenshot(page(tmp_path, "p.html", INLINE_PAGE), tmp_path / "shot.png", 640, 360)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (640, 360)


def test_print_to_pdf_writes_a_pdf_with_a_page(tmp_path: Path, chromium: Chromium) -> None:
    pdf = chromium.print_to_pdf(page(tmp_path, "p.html", INLINE_PAGE), tmp_path / "out.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert re.search(rb"/Type\s*/Page\b", pdf)
    assert b"%%EOF" in pdf[-64:]


def test_every_remote_request_of_a_page_is_caught(tmp_path: Path, chromium: Chromium) -> None:
    made = chromium.requests_made(page(tmp_path, "remote.html", REMOTE_PAGE))
    assert sorted(made) == [
        "CONNECT cdn.example.invalid:443",
        "GET http://127.0.0.1:8123/local.png",
        "GET http://api.example.invalid/later",
        "GET http://fonts.example.invalid/f.woff2",
        "GET http://images.example.invalid/x.png",
        "GET http://styles.example.invalid/report.css",
    ]


def test_a_self_contained_page_and_an_empty_one_make_no_request(tmp_path: Path, chromium: Chromium) -> None:
    assert chromium.requests_made(page(tmp_path, "inline.html", INLINE_PAGE)) == []
    traffic = chromium.traffic(page(tmp_path, "empty.html", "<!doctype html><title>empty</title>"))
    assert traffic.page == []


def test_a_browser_that_does_not_finish_fails_the_test_and_is_killed(tmp_path: Path, chromium: Chromium) -> None:
    impatient = dataclasses.replace(chromium, timeout_s=0.05)
    with pytest.raises(pytest.fail.Exception, match=r"Chromium did not dump the DOM of .*slow.html within 0.05 s"):
        impatient.dump_dom(page(tmp_path, "slow.html", INLINE_PAGE))
    assert not any(str(impatient.profile_dir) in command for command in running_commands())


def running_commands() -> list[str]:
    """The command lines of this machine's processes (a killed browser's children must not be among them)."""
    commands = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            commands.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return commands
