"""20 rounds of kill -9 while 1,000 messages flow through the fake Twilio and the modem."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable

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

MESSAGES = 1000
ROUNDS = 20
CUSTOMER = "+33612345678"
# Twilio answers 21408 (no permission for this region) for this number: the router hands its
# messages to the modem, so both providers carry traffic in every round.
ABROAD = "+447911123456"
SEED = int(os.environ.get("RELIABILITY_SEED", "0")) or random.randrange(1, 2**31)


def test_twenty_kill_9_rounds_lose_nothing(
    make_daemon: Callable[[str], Daemon], sim: SimThread
) -> None:
    print(f"kill -9 rounds: seed {SEED} (RELIABILITY_SEED={SEED} replays it)")
    rng = random.Random(SEED)
    began = time.monotonic()
    with TwilioPeer() as twilio:
        twilio.latency = 0.02  # so requests are in flight when the kills come
        twilio.script(Fault.error(21408, 400, "Permission to send to this region"), match=ABROAD)
        daemon = make_daemon(
            '[sms]\nchain = ["twilio", "modem"]\n'
            # Paced so that the 1,000 messages flow through all 20 rounds, not the first two.
            + twilio_section(twilio.base_url, rate_per_second=40.0)
            + modem_section(sim, segments_per_minute=900.0)
            + "[outbox]\nbackoff_base_seconds = 0.1\nbackoff_max_seconds = 1.0\n"
        )
        bodies = [(ABROAD if n % 4 == 0 else CUSTOMER, f"message {n}") for n in range(MESSAGES)]
        process = daemon.start()
        wait_until(daemon.modem_ready, "the modem to be ready")
        with daemon.client() as client:
            ids = enqueue(client, bodies)
        print(f"enqueued {MESSAGES} in {time.monotonic() - began:.1f}s")

        # How many kills caught each message in `sending`: written `sending` before any
        # provider sees it, so only those may have reached a provider unrecorded.
        caught: Counter[str] = Counter()
        for round_number in range(1, ROUNDS + 1):
            if round_number > 1:
                process = daemon.start(wait=rng.random() >= 0.2)  # one in five dies starting up
            time.sleep(rng.uniform(0.05, 0.8))
            process.signal(signal.SIGKILL)
            assert process.wait() == -signal.SIGKILL
            at_kill = statuses(daemon.database)
            sending = read_db(daemon.database, "SELECT body FROM messages WHERE status = 'sending'")
            caught.update(body for (body,) in sending)
            assert sum(at_kill.values()) == MESSAGES, "every enqueued message is written down"
            elapsed = time.monotonic() - began
            print(f"round {round_number} at {elapsed:.1f}s: {dict(at_kill)}")
        time.sleep(0.3)  # requests the dead daemon had sent finish at the fakes

        daemon.start()
        final = daemon.wait_all_final(MESSAGES, timeout=60)
        print(f"all final at {time.monotonic() - began:.1f}s")
        daemon.stop()

        twilio_bodies = Counter(r.form["Body"] for r in twilio.sent)
        modem_bodies = Counter(s.submit.text for s in sim.call(lambda: list(sim.sim.sent)))
    rows = read_db(
        daemon.database, "SELECT id, recipient, body, status, provider FROM messages ORDER BY id"
    )
    in_flight_at_kills = caught.total()
    print(f"final: {dict(final)}; in flight at the kills: {in_flight_at_kills}")
    assert [row[0] for row in rows] == sorted(ids), "every enqueued id is there"
    assert integrity(daemon.database) == "ok"
    # No provider refuses for good here. Twilio's messages end `sent` (the fake sends no
    # status callbacks); the modem's end `delivered` when their status report came back, or
    # `sent` when it did not (a report the simulator's 30-slot SR memory had no room for).
    ends = Counter((provider, status) for _, _, _, status, provider in rows)
    print(f"ends: {dict(ends)}")
    assert set(ends) <= {("twilio", "sent"), ("modem", "delivered"), ("modem", "sent")}, ends
    for _, recipient, body, _, provider in rows:
        assert provider == ("modem" if recipient == ABROAD else "twilio"), body
        at = twilio_bodies if provider == "twilio" else modem_bodies
        assert at[body] >= 1, f"{body!r} is {provider} but never reached it"
    received = twilio_bodies + modem_bodies
    assert set(received) == {body for _, body in bodies}, "none lost"
    assert all(twilio_bodies[body] == 0 for to, body in bodies if to == ABROAD)
    duplicates = received.total() - MESSAGES
    print(f"duplicates at the fakes: {duplicates}")
    assert duplicates <= in_flight_at_kills, (
        f"{duplicates} duplicates, {in_flight_at_kills} were in flight at the kills"
    )
    # Sharper: a message is sent again at most once per kill that caught it in flight.
    over = {body: n - 1 for body, n in received.items() if n - 1 > caught[body]}
    assert not over, f"duplicated more often than kills caught them in flight: {over}"
