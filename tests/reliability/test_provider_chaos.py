"""Provider chaos: the fake Twilio and the modem fail 30% of sends with mixed errors, and the
modem is unplugged mid-burst; every message still arrives, duplicates only where explained."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.helpers import wait_until
from tests.peers.twilio import Fault, TwilioPeer
from tests.reliability.conftest import (
    Daemon,
    SimThread,
    enqueue,
    integrity,
    modem_section,
    read_db,
    statuses,
    twilio_section,
)

CUSTOMER = "+33612345678"
ABROAD = "+447911123456"  # Twilio answers 21408 for it: the modem's share of the traffic
CHAOS_RATE = 0.3
TWILIO_TIMEOUT = 0.5
# A hang: Twilio creates the message but answers after the client has given up.
HANG = 1.5
TRANSIENT_CMS = ["+CMS ERROR: 38", "+CMS ERROR: 42", "+CMS ERROR: 47", "+CMS ERROR: 500"]


def sent_bodies(sim: SimThread) -> Counter[str]:
    return Counter(s.submit.text for s in sim.call(lambda: list(sim.sim.sent)))


def test_thirty_percent_failures_everything_arrives(
    make_daemon: Callable[[str], Daemon], sim: SimThread
) -> None:
    messages = 300
    with TwilioPeer() as twilio:
        twilio.script(Fault.error(21408, 400, "Permission to send to this region"), match=ABROAD)
        twilio.chaos(
            CHAOS_RATE,
            [
                Fault.server_error(500),
                Fault.server_error(503, retry_after="1"),
                Fault.too_many(retry_after="1"),
                Fault.slow(HANG),
                Fault.connection_reset(),
            ],
            seed=10,
        )
        sim.call(lambda: sim.sim.chaos(CHAOS_RATE, TRANSIENT_CMS, seed=10))
        daemon = make_daemon(
            '[sms]\nchain = ["twilio", "modem"]\n'
            + twilio_section(twilio.base_url, timeout_seconds=TWILIO_TIMEOUT)
            + modem_section(sim)
            # Eight tries per provider: 0.3^8 makes giving up on one practically impossible.
            + "[outbox]\nattempts_per_provider = 8\n"
            + "backoff_base_seconds = 0.05\nbackoff_max_seconds = 1.0\n"
        )
        bodies = [(ABROAD if n % 4 == 0 else CUSTOMER, f"chaos {n}") for n in range(messages)]
        daemon.start()
        wait_until(daemon.modem_ready, "the modem to be ready")
        with daemon.client() as client:
            enqueue(client, bodies)
        daemon.wait_all_final(messages, timeout=60)
        daemon.stop()
        requests = [r for r in twilio.received if r.path == twilio.messages_path]
        modem = sent_bodies(sim)
        refusals = sim.call(lambda: sim.sim.chaos_refusals)

    rows = read_db(daemon.database, "SELECT body, status, provider FROM messages")
    assert {status for _, status, _ in rows} <= {"sent", "delivered"}, statuses(daemon.database)
    assert integrity(daemon.database) == "ok"
    # The chaos really happened: every kind of failure, near 30% of Twilio's answers.
    answered = Counter(r.status for r in requests if r.form.get("To") == CUSTOMER)
    hangs = [r for r in requests if r.sid is not None and r.delay >= TWILIO_TIMEOUT]
    assert answered[500] and answered[503] and answered[429] and answered[0] and hangs
    failures = answered.total() - answered[201] + len(hangs)
    assert 0.2 < failures / answered.total() < 0.4, answered
    assert refusals > 0
    print(f"Twilio answers {dict(answered)}, {len(hangs)} hangs; modem refusals {refusals}")

    twilio_bodies = Counter(r.form["Body"] for r in requests if r.sid is not None)
    received = twilio_bodies + modem
    assert set(received) == {body for _, body in bodies}, "everything arrives"
    # The modem refuses before sending: nothing it refused went out, so nothing twice.
    assert all(n == 1 for n in modem.values()), modem
    # Twilio: a send that timed out may have created the message (the hangs do; so may a
    # plain answer on a machine slow enough to miss the 0.5 s timeout). The outbox cannot know
    # and sends it again: the only way to a duplicate. No timeout, no duplicate.
    timed_out = Counter(
        body
        for (body,) in read_db(
            daemon.database,
            "SELECT m.body FROM message_events e JOIN messages m ON m.id = e.message_id "
            "WHERE e.detail LIKE '%did not answer in time%' "
            "OR e.detail LIKE '%no answer from Twilio%'",
        )
    )
    assert timed_out.total() >= len(hangs), "every hang was a timeout"
    for body, n in twilio_bodies.items():
        assert n - 1 <= timed_out[body], f"{body!r} arrived {n} times, {timed_out[body]} timeouts"
    print(f"duplicates: {received.total() - messages}, timeouts {timed_out.total()}")


@pytest.mark.parametrize("chain", [["modem"], ["modem", "twilio"]], ids=["reconnect", "failover"])
def test_modem_unplugged_mid_burst_everything_arrives(
    make_daemon: Callable[[str], Daemon], sim: SimThread, chain: list[str]
) -> None:
    messages = 120
    with TwilioPeer() as twilio:
        daemon = make_daemon(
            f"[sms]\nchain = {chain!r}\n".replace("'", '"')
            + twilio_section(twilio.base_url)
            + modem_section(sim, segments_per_minute=1800.0)
            + "[outbox]\nbackoff_base_seconds = 0.05\nbackoff_max_seconds = 0.5\n"
            + "breaker_cooldown_seconds = 0.5\n"
        )
        daemon.start()
        wait_until(daemon.modem_ready, "the modem to be ready")
        bodies = [(CUSTOMER, f"burst {n}") for n in range(messages)]
        with daemon.client() as client:
            enqueue(client, bodies)
        wait_until(
            lambda: sent_bodies(sim).total() >= messages // 4, "the burst to start", timeout=30
        )
        sim.run(sim.sim.unplug())
        unplugged_at = sent_bodies(sim).total()
        time.sleep(1.0)
        sim.run(sim.sim.replug())
        daemon.wait_all_final(messages, timeout=60)
        if chain == ["modem"]:
            # After the reconnect the modem is back in the health report.
            wait_until(daemon.modem_ready, "the modem to be ready again")
        daemon.stop()
        modem = sent_bodies(sim)
        twilio_bodies = Counter(r.form["Body"] for r in twilio.sent)

    assert unplugged_at < messages, "the unplug came mid-burst"
    assert set(statuses(daemon.database)) <= {"sent", "delivered"}
    received = modem + twilio_bodies
    assert set(received) == {body for _, body in bodies}, "everything arrives"
    if chain == ["modem", "twilio"]:
        assert twilio_bodies, "Twilio took over while the modem was away"
    # One send at a time goes to the modem: the one whose +CMGS answer the unplug cut off is
    # the only one whose fate was unknown.
    duplicates = received.total() - messages
    assert duplicates <= 1, received.most_common(3)
    print(f"{chain}: unplugged after {unplugged_at}; twilio {twilio_bodies.total()}")
