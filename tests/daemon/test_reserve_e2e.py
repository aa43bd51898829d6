"""Reserve by reply, end to end: a real daemon (another process) with the fake TGTG, the modem
simulator on a pty (the alerts and the modem's answers go out through it) and a Twilio auth
token for the signed webhook. "R" by Twilio and "R" by the modem reserve on the subscriber's
own TGTG account and answer alike; a second "R" does not reserve again; "C" cancels; an "R"
after the pick-up window, from someone who did not opt in, or with the feature off, reserves
nothing.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from daemon.services.tgtg.rule import RESERVE_OFFER
from tests.daemon.conftest import DaemonProcess
from tests.daemon.test_modem_e2e import SimThread
from tests.helpers import daemon_client, free_port, wait_until
from tests.peers.tgtg import PIN, TgtgPeer

AUTH_TOKEN = "twilio-auth-token-for-the-webhook-0001"
ITEM = "774625"
LATE_ITEM = "774699"


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    phone: str


ANA = Person("Ana", "ana@example.com", "+33612345001")  # opted in, answers by Twilio
CARL = Person("Carl", "carl@example.com", "+33612345002")  # opted in, answers by the modem
BOB = Person("Bob", "bob@example.com", "+33612345003")  # did not opt in, by Twilio
DAN = Person("Dan", "dan@example.com", "+33612345004")  # opted in, answers too late, modem


def utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class World:
    daemon: DaemonProcess
    api: httpx.Client
    sim: SimThread
    tgtg: TgtgPeer
    port: int
    sids: int = 0

    def twilio(self, who: Person, body: str) -> str:
        """A signed inbound webhook; returns the TwiML message text ("" for none)."""
        self.sids += 1
        url = f"http://127.0.0.1:{self.port}/sms"
        form = {
            "From": who.phone,
            "To": "+15005550006",
            "Body": body,
            "MessageSid": f"SM{self.sids:032d}",
        }
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        answer = httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=30)
        assert answer.status_code == 200, answer.text
        found = re.search(r"<Message>(.*)</Message>", answer.text, re.S)
        return found.group(1) if found else ""

    def sent_to(self, who: Person) -> list[str]:
        return [
            s.submit.text
            for s in self.sim.call(lambda: list(self.sim.sim.sent))
            if s.submit.number == who.phone
        ]

    def modem(self, who: Person, body: str) -> str:
        """An SMS to the modem; returns the answer the daemon sent back through it."""
        before = len(self.sent_to(who))
        self.sim.call(lambda: self.sim.sim.receive(who.phone, body))
        return wait_until(lambda: self.sent_to(who)[before:], f"the modem's answer to {who.name}")[
            0
        ]


def start(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    tmp_path: Path,
    tgtg: TgtgPeer,
    *,
    reserve: bool,
) -> World:
    sim = SimThread(link=tmp_path / "modem", send_latency=0.02, report_delay=0.05)
    port = free_port()
    config = write_config(
        f"[api]\nport = {port}\n"
        '[sms]\nchain = ["modem"]\n'
        f'[modem]\nport = "{sim.path}"\nsegments_per_minute = 600.0\n'
        f'[twilio]\nauth_token = "{AUTH_TOKEN}"\n'
        f'[tgtg]\nbase_url = "{tgtg.base_url}"\npoll_seconds = 1.0\ntick_seconds = 0.2\n'
        "requests_per_minute = 600\ntimeout_seconds = 5.0\n"
        f"reserve_by_reply = {'true' if reserve else 'false'}\nreserve_per_day = 2\n"
    )
    daemon = spawn("--config", str(config), "run")
    daemon.wait_ready(port)
    api = daemon_client(tmp_path / "data", port)
    return World(daemon, api, sim, tgtg, port)


def subscribe(world: World, who: Person, *, opted_in: bool) -> int:
    world.tgtg.add_account(who.email)
    created = world.api.post(
        "/api/v1/subscribers",
        json={
            "name": who.name,
            "email": who.email,
            "phone": who.phone,
            "reserve_by_reply": opted_in,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["subscriber"]["reserve_by_reply"] is opted_in
    sid = int(created.json()["subscriber"]["id"])
    login = world.api.post(f"/api/v1/subscribers/{sid}/tgtg/login", json={"email": who.email})
    assert login.status_code == 202, login.text
    pin = world.api.post(f"/api/v1/subscribers/{sid}/tgtg/pin", json={"pin": PIN})
    assert pin.status_code == 200, pin.text
    return sid


def watched(world: World, sid: int) -> list[dict[str, object]]:
    answer = world.api.get("/api/v1/tgtg/favorites", params={"subscriber_id": sid})
    return answer.json()["favorites"]


def stop(world: World) -> None:
    world.api.close()
    world.daemon.signal(signal.SIGTERM)
    assert world.daemon.wait() == 0


@pytest.fixture
def tgtg() -> Iterator[TgtgPeer]:
    with TgtgPeer() as peer:
        yield peer


def test_reserve_by_reply_over_twilio_and_the_modem(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    tmp_path: Path,
    tgtg: TgtgPeer,
) -> None:
    now = datetime.now(UTC)
    tgtg.add_item(ITEM, store="Bakery Blue", count=0)
    tgtg.set_pickup(ITEM, utc(now + timedelta(hours=1)), utc(now + timedelta(hours=2)))
    tgtg.add_item(LATE_ITEM, store="Late Deli", count=0)
    # Its pick-up time ends a few seconds from now: the alert offers R, Dan's R comes after.
    late_end = now + timedelta(seconds=12)
    tgtg.set_pickup(LATE_ITEM, utc(now - timedelta(hours=1)), utc(late_end))
    world = start(spawn, write_config, tmp_path, tgtg, reserve=True)
    try:
        ids = {}
        for who, opted_in, item in (
            (ANA, True, ITEM),
            (CARL, True, ITEM),
            (BOB, False, ITEM),
            (DAN, True, LATE_ITEM),
        ):
            tgtg.favorite(who.email, item)
            ids[who] = subscribe(world, who, opted_in=opted_in)
        for who in ids:
            wait_until(lambda who=who: watched(world, ids[who]), f"{who.name}'s first poll")
        tgtg.set_count(ITEM, 5)
        tgtg.set_count(LATE_ITEM, 2)
        alerts = {
            who: wait_until(lambda who=who: world.sent_to(who), f"{who.name}'s alert")
            for who in ids
        }

        # The offer goes only to those who opted in, and the alert stays one SMS.
        for who in (ANA, CARL, DAN):
            assert len(alerts[who]) == 1 and alerts[who][0].endswith(RESERVE_OFFER)
        assert "Reply R" not in alerts[BOB][0] and "Bakery Blue" in alerts[BOB][0]

        # Ana, by Twilio: reserved on her own account, the answer inline in the TwiML.
        answer = world.twilio(ANA, " r. ")
        [order] = tgtg.orders_of(ANA.email)
        assert order.item_id == ITEM and order.count == 1 and order.state == "RESERVED"
        # Made with Ana's own access token, not another subscriber's account.
        [create] = tgtg.requests_to("order/v8/create/")
        bearer = create.headers["authorization"].removeprefix("Bearer ")
        assert bearer in tgtg.accounts[ANA.email].access
        assert create.path == f"/api/order/v8/create/{ITEM}" and create.body == {"item_count": 1}
        assert f"order {order.order_id}" in answer
        assert "unpaid 5 min: pay in the TGTG app by" in answer and "Reply C" in answer
        # A second R for the same alert names the order and never reaches TGTG.
        creates = len(tgtg.requests_to("order/v8/create/"))
        again = world.twilio(ANA, "R")
        assert again == f"Already reserved from that alert: order {order.order_id}."
        assert len(tgtg.requests_to("order/v8/create/")) == creates
        # C gives it up at TGTG.
        cancelled = world.twilio(ANA, "c")
        assert cancelled == f"Cancelled order {order.order_id} (Bakery Blue (Magic Bag))."
        assert tgtg.orders_of(ANA.email)[0].state == "CANCELLED"
        [abort] = tgtg.requests_to("/abort")
        assert abort.path == f"/api/order/v8/{order.order_id}/abort"

        # Carl, by the modem: the same road, the answer through the outbox and the modem.
        reply = world.modem(CARL, "R!")
        [carl_order] = tgtg.orders_of(CARL.email)
        assert f"order {carl_order.order_id}" in reply and "pay in the TGTG app" in reply
        assert world.modem(CARL, "r") == (
            f"Already reserved from that alert: order {carl_order.order_id}."
        )
        assert len(tgtg.orders_of(CARL.email)) == 1

        # Bob never opted in: R is an ordinary message, nothing is reserved or answered.
        assert world.twilio(BOB, "R") == ""
        assert tgtg.orders_of(BOB.email) == []

        # Dan answers after the pick-up time is over.
        wait_until(lambda: datetime.now(UTC) > late_end, "the late item's pick-up end", timeout=30)
        assert (
            world.modem(DAN, "R")
            == "Too late to reserve Late Deli (Magic Bag): its pick-up time is over."
        )
        assert tgtg.orders_of(DAN.email) == []
        # Every order call went with the caller's own access token (the fake files each
        # order under the account whose token came).
        assert len(tgtg.requests_to("order/v8/create/")) == 2
        stop(world)
    finally:
        world.daemon.kill()
        world.sim.close()
    assert "inbound: SMS from +33612345001 via twilio (reserve)" in world.daemon.output
    assert "inbound: SMS from +33612345002 via modem (reserve)" in world.daemon.output
    assert "inbound: SMS from +33612345003 via twilio (message)" in world.daemon.output


def test_with_the_feature_off_r_is_an_ordinary_message(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    tmp_path: Path,
    tgtg: TgtgPeer,
) -> None:
    now = datetime.now(UTC)
    tgtg.add_item(ITEM, store="Bakery Blue", count=0)
    tgtg.set_pickup(ITEM, utc(now + timedelta(hours=1)), utc(now + timedelta(hours=2)))
    world = start(spawn, write_config, tmp_path, tgtg, reserve=False)
    try:
        tgtg.favorite(ANA.email, ITEM)
        sid = subscribe(world, ANA, opted_in=True)
        wait_until(lambda: watched(world, sid), "the first poll")
        tgtg.set_count(ITEM, 5)
        [alert] = wait_until(lambda: world.sent_to(ANA), "the alert")
        assert "Reply R" not in alert
        assert world.twilio(ANA, "R") == ""
        assert world.twilio(ANA, "C") == ""
        assert tgtg.requests_to("order/v8/") == []
        stop(world)
    finally:
        world.daemon.kill()
        world.sim.close()
    assert "inbound: SMS from +33612345001 via twilio (message)" in world.daemon.output
