"""/api/docs and /api/redoc work with no internet: a real daemon, a real headless Chromium.

The pages' JavaScript builds the list of operations from /api/openapi.json; the served HTML
names none of them. So an operation path in Chromium's rendered DOM proves the script was
loaded from the daemon and ran. Chromium comes from Debian's `chromium` package (.ci/run
installs it); without it these tests skip, except under CI=true where they fail, so CI cannot
pass by skipping them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.daemon.conftest import DaemonProcess
from tests.helpers import free_port

CHROMIUM = Path("/usr/bin/chromium")
# Generous: a cold Chromium on a busy 2-core CI machine; a warm run takes ~3 s.
CHROMIUM_TIMEOUT_SECONDS = 90
PAGES = ("/api/docs", "/api/redoc")
# Routes every daemon has, on defaults: the seed SMS route and health.
EXPECTED_PATHS = ("/smss", "/api/health")


def _chromium_or_skip() -> Path:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = f"{CHROMIUM} not found: apt-get install -y chromium chromium-driver"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: this test must run, not skip)")
    pytest.skip(message)


@pytest.fixture
def base_url(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path]
) -> Iterator[str]:
    """A real daemon on defaults, on a free port; its base URL."""
    port = free_port()
    config = write_config(f"[api]\nport = {port}\n")
    daemon = spawn("--config", str(config), "run")
    daemon.wait_ready(port)
    yield f"http://127.0.0.1:{port}"
    daemon.signal(signal.SIGTERM)
    daemon.wait()


def render(chromium: Path, url: str, profile: Path) -> str:
    """The DOM of `url` after Chromium ran its scripts (10 s of virtual time)."""
    command = [
        str(chromium),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
    ]
    # A session of its own, so a hung browser is ended with its renderer children.
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as browser:
        try:
            out, err = browser.communicate(timeout=CHROMIUM_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.communicate()
            pytest.fail(f"chromium did not finish {url} within {CHROMIUM_TIMEOUT_SECONDS}s")
    assert browser.returncode == 0, f"chromium exited {browser.returncode}: {err[-2000:]}"
    return out


def test_swagger_ui_renders_the_operations_offline(base_url: str, tmp_path: Path) -> None:
    chromium = _chromium_or_skip()

    dom = render(chromium, base_url + "/api/docs", tmp_path / "profile")

    # Swagger UI's operation rows: <span class="opblock-summary-path" data-path="/smss">.
    rendered = set(re.findall(r'class="opblock-summary-path"[^>]*data-path="([^"]+)"', dom))
    assert set(EXPECTED_PATHS) <= rendered, dom[-3000:]
    assert "Failed to load API definition" not in dom


def test_redoc_renders_the_operations_offline(base_url: str, tmp_path: Path) -> None:
    chromium = _chromium_or_skip()

    dom = render(chromium, base_url + "/api/redoc", tmp_path / "profile")

    # ReDoc shows each operation's URL as <span>{server}</span>{path}; the schema names no
    # server, so it is the page's own origin.
    rendered = set(re.findall(rf"<span>{re.escape(base_url)}</span>([^<]+)<", dom))
    assert set(EXPECTED_PATHS) <= rendered, dom[-3000:]
    assert "Send one SMS" in dom  # an operation's summary, in the side menu


class _References(HTMLParser):
    """Every src= and href= in a page, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls.extend(v for k, v in attrs if k in ("src", "href", "spec-url") and v)


def _content_type_for(path: str) -> str:
    if path.endswith(".js"):
        return "javascript"  # text/javascript or application/javascript, by mime table
    if path.endswith(".css"):
        return "text/css"
    if path.endswith(".png"):
        return "image/png"
    if path.endswith(".json"):
        return "application/json"
    raise AssertionError(f"unexpected asset {path}")


def test_pages_reference_only_the_daemon_and_every_asset_answers(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        for page in (*PAGES, "/api/docs/oauth2-redirect"):
            response = http.get(page)  # no token: the docs are public
            assert response.status_code == 200, (page, response.text)
            assert response.headers["content-type"].startswith("text/html")
            html = response.text

            # No absolute URL at all: everything is relative to this daemon.
            outside = [
                url
                for url in re.findall(r"""(?:https?:)?//[^\s"'<>()]+""", html)
                if urlsplit(urljoin(base_url, url)).netloc != urlsplit(base_url).netloc
            ]
            assert outside == [], (page, outside)

            parser = _References()
            parser.feed(html)
            # Swagger UI's schema URL is in its inline script, not an attribute.
            referenced = parser.urls + re.findall(r"url: '([^']+)'", html)
            if page != "/api/docs/oauth2-redirect":
                assert any(u.endswith(".js") for u in referenced), (page, referenced)
                assert "/api/openapi.json" in referenced, (page, referenced)
            for url in referenced:
                asset = http.get(urljoin(base_url + page, url))
                assert asset.status_code == 200, (page, url, asset.status_code)
                expected = _content_type_for(urlsplit(url).path)
                assert expected in asset.headers["content-type"], (url, asset.headers)
                assert asset.content, url
