"""The real daemon with the fake TGTG and the fake Twilio: log in with the CLI (the app version
looked up, DataDome's cookie fetched first), the count flips 0 -> 3 at TGTG, and the SMS
arrives at Twilio."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.daemon.conftest import REPO, DaemonProcess
from tests.helpers import free_port, wait_until
from tests.peers.tgtg import PIN, TgtgPeer
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, TwilioPeer

EMAIL = "ana@example.com"
PHONE = "+33612345678"
ITEM = "774625"


def test_bags_appear_and_the_sms_arrives(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    tmp_path: Path,
    daemon_env: dict[str, str],
) -> None:
    port = free_port()
    with TwilioPeer() as twilio, TgtgPeer() as tgtg:
        tgtg.add_account(EMAIL)
        tgtg.add_item(ITEM, store="Bakery Blue", count=0, favorite_of=EMAIL)
        config = write_config(
            f"[api]\nport = {port}\n"
            f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nfrom_number = "+15005550006"\n'
            f'base_url = "{twilio.base_url}"\n'
            f'[tgtg]\nbase_url = "{tgtg.base_url}"\npoll_seconds = 1.0\ntick_seconds = 0.2\n'
            "requests_per_minute = 600\ntimeout_seconds = 5.0\n"
            # The fake also stands in for DataDome's SDK and for the app's Google Play page.
            f'datadome_url = "{tgtg.datadome_url}"\napp_version_url = "{tgtg.play_url}"\n'
        )
        env = {**daemon_env, "SHOPBELL_TWILIO_AUTH_TOKEN": AUTH_TOKEN}
        daemon = spawn("--config", str(config), "run", env=env)
        daemon.wait_ready(port)
        assert "tgtg-poll" in daemon.wait_for_line("scheduler:")
        token = (tmp_path / "data" / "api_token").read_text().strip()
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        created = api.post(
            "/api/v1/subscribers", json={"name": "Ana", "email": EMAIL, "phone": PHONE}
        )
        assert created.status_code == 201, created.text

        def shopbell(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "daemon", "--config", str(config), *args],
                cwd=REPO,
                env=env,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        login = shopbell("tgtg", "login", EMAIL, stdin=f"{PIN}\n")
        assert login.returncode == 0, login.stdout + login.stderr
        assert "logged in to TGTG" in login.stdout
        [pin] = tgtg.requests_to("authByRequestPin")
        # The login went out as the app's current version, with a cookie from DataDome's SDK.
        assert pin.headers["user-agent"].startswith(f"TGTG/{tgtg.app_version} ")
        assert pin.cookies == {"datadome": tgtg.datadome_issued[0]}
        assert [r.path for r in tgtg.received[:3]] == [
            "/store/apps/details",
            "/sdk/",
            "/api/auth/v5/authByEmail",
        ]

        def favorites() -> list[dict[str, object]]:
            return api.get("/api/v1/tgtg/favorites").json()["favorites"]

        wait_until(favorites, "the first poll")
        assert favorites()[0]["items_available"] == 0
        assert twilio.sent == []
        tgtg.set_count(ITEM, 3)
        wait_until(lambda: twilio.sent, "the alert at the fake Twilio")
        [sms] = twilio.sent
        assert sms.form["To"] == PHONE
        assert "Bakery Blue" in sms.form["Body"] and "3 bags" in sms.form["Body"]
        assert f"/item/{ITEM}" in sms.form["Body"]
        time.sleep(1.5)  # more polls see 3 again: still one SMS
        assert len(twilio.sent) == 1
        assert tgtg.requests_to("discover/v1/bucket")[-1].body["bucket"] == {
            "filler_type": "Favorites"
        }
        listed = shopbell("tgtg", "favorites")
        assert listed.returncode == 0 and ITEM in listed.stdout and "3 bags" in listed.stdout
        tgtg_health = api.get("/api/health").json()["components"]["tgtg"]
        assert tgtg_health["state"] == "ok" and tgtg_health["accounts"] == {"active": 1}
        assert tgtg_health["budget"]["requests_per_minute"] == 600
        assert tgtg_health["budget"]["used_last_minute"] > 0
        api.close()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
