"""One road for inbound SMS: the same STOP through Twilio's webhook and through the modem goes
through the one inbound entry and leaves the same records; only the answer's carrier differs.

A real daemon (another process) with the modem simulator on a pty and a Twilio auth token for
the webhook's signature; the database is read after the daemon stopped.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from tests.daemon.conftest import DaemonProcess
from tests.daemon.test_modem_e2e import SimThread
from tests.helpers import free_port, wait_until

AUTH_TOKEN = "twilio-auth-token-for-the-webhook-0001"
BY_TWILIO = "+33612345001"
BY_MODEM = "+33612345002"
# What a STOP leaves, whoever carried it (ids, times and the carrier's own fields, such as
# Twilio's To number, aside).
COMPARED = ("body", "keyword", "handled", "has_subscriber", "opted_out")


def stored(db_path: Path, sender: str) -> dict[str, Any]:
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        inbound = db.execute("SELECT * FROM inbound_messages WHERE sender = ?", [sender]).fetchall()
        subscriber = db.execute(
            "SELECT opted_out_at FROM subscribers WHERE phone = ?", [sender]
        ).fetchone()
        replies = db.execute(
            "SELECT body FROM messages WHERE recipient = ? AND kind = 'reply'", [sender]
        ).fetchall()
    assert len(inbound) == 1, inbound
    row = dict(inbound[0])
    return {
        "source": row["source"],
        "body": row["body"],
        "keyword": row["keyword"],
        "handled": row["handled_at"] is not None,
        "has_subscriber": row["subscriber_id"] is not None,
        "opted_out": subscriber is not None and subscriber["opted_out_at"] is not None,
        "replies": [r["body"] for r in replies],
    }


def test_the_same_stop_by_twilio_and_by_modem_takes_the_one_entry(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    sim = SimThread(link=tmp_path / "modem", send_latency=0.02, report_delay=0.05)
    port = free_port()
    config = write_config(
        f"[api]\nport = {port}\n"
        '[sms]\nchain = ["modem"]\n'
        f'[modem]\nport = "{sim.path}"\nsegments_per_minute = 600.0\n'
        f'[twilio]\nauth_token = "{AUTH_TOKEN}"\n'
    )
    daemon = spawn("--config", str(config), "run")
    try:
        daemon.wait_ready(port)
        url = f"http://127.0.0.1:{port}/sms"
        form = {
            "From": BY_TWILIO,
            "To": "+15005550006",
            "Body": "STOP",
            "MessageSid": "SM" + "1" * 32,
        }
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        answer = httpx.post(url, data=form, headers={"X-Twilio-Signature": signature})
        sim.call(lambda: sim.sim.receive(BY_MODEM, "STOP"))

        wait_until(
            lambda: f"inbound: SMS from {BY_MODEM} via modem (stop)" in daemon.output, "modem"
        )
        confirmations = wait_until(
            lambda: [
                s for s in sim.call(lambda: list(sim.sim.sent)) if s.submit.number == BY_MODEM
            ],
            "the modem sender's confirmation",
        )
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
        sim.close()

    # Both came in through the one entry, which logs each as it hands it on.
    assert f"inbound: SMS from {BY_TWILIO} via twilio (stop)" in daemon.output
    assert answer.status_code == 200
    assert "<Message>" not in answer.text  # Twilio sends its own STOP confirmation
    db_path = tmp_path / "data" / "shopbell.db"
    twilio, modem = stored(db_path, BY_TWILIO), stored(db_path, BY_MODEM)
    assert (twilio["source"], modem["source"]) == ("twilio", "modem")
    assert {k: twilio[k] for k in COMPARED} == {k: modem[k] for k in COMPARED}
    assert twilio["opted_out"]
    assert twilio["keyword"] == "STOP" and twilio["handled"]
    # The answer's carrier is the one difference: Twilio confirms STOP itself (nothing of
    # ours goes to that sender); the modem's sender gets our confirmation through the outbox.
    assert twilio["replies"] == []
    assert len(modem["replies"]) == 1 and "START" in modem["replies"][0]
    assert "START" in confirmations[0].submit.text
