"""The wall clock steps (a Pi without a real-time clock, NTP answering late): +3 days, -1 hour.

Real SQLite, the real services, the real modem simulator on a pty; the clock is injected and
steps without the monotonic clock moving, as NTP steps a machine's clock (docs/clock.md).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apscheduler.executors.base
import apscheduler.schedulers.base
import httpx
import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from daemon.app.lifecycle import Daemon
from daemon.config import load_config
from daemon.runtime.clock import ManualClock, SystemClock, utc_iso
from daemon.runtime.scheduler import JobSpec, Scheduler
from daemon.services.care.clock import ClockCheck
from daemon.services.care.retention import Retention
from daemon.services.otp.policy import OtpPolicy
from daemon.services.otp.service import OtpError, OtpService, VerifyFailed
from daemon.services.outbox.breaker import CircuitBreaker
from daemon.services.outbox.dispatcher import Dispatcher
from daemon.services.outbox.limits import TokenBucket
from daemon.services.outbox.policy import RetryPolicy
from daemon.services.outbox.router import Router, Slot
from daemon.services.outbox.service import EnqueueRequest, Outbox
from providers.modem.provider import ModemProvider
from providers.modem.simulator import ModemSimulator
from providers.twilio.provider import TwilioProvider
from storage.database import Database
from storage.messages import get_events, get_message
from tests.daemon.otp.support import KEY, PHONE, code_in_message
from tests.helpers import free_port, wait_until_async
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, Fault, TwilioPeer
from tests.providers.modem.configs import fast_config
from tests.storage import factories as f

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = 86_400.0
FORWARD = 3 * DAY
BACK = -3600.0


# -- retention ---------------------------------------------------------------------------------


async def _seed_messages(db: Database, ages_in_days: dict[str, float]) -> dict[str, int]:
    """One sent message per name, created (and last changed) that many days before T0."""

    def seed(conn: Any) -> dict[str, int]:
        ids = {}
        for name, age in ages_in_days.items():
            at = utc_iso(T0 - timedelta(days=age))
            row = f.message(status="sent", created_at=at, due_at=at, updated_at=at, kind="manual")
            ids[name] = f.insert(conn, "messages", row)
        return ids

    return await db.write(seed)


async def _left(db: Database, ids: dict[str, int]) -> set[str]:
    def read(conn: Any) -> set[int]:
        return {row[0] for row in conn.execute("SELECT id FROM messages").fetchall()}

    there = await db.execute(read)
    return {name for name, message_id in ids.items() if message_id in there}


async def test_retention_deletes_nothing_early_across_a_jump_forward_or_back(db: Database) -> None:
    clock = ManualClock(T0)
    retention = Retention(db, clock, days=180)
    ids = await _seed_messages(db, {"181 days": 181, "179 days": 179, "177.5 days": 177.5})

    assert "1 messages" in await retention.run()
    assert await _left(db, ids) == {"179 days", "177.5 days"}

    # NTP steps the clock 3 days forward while no time passes: by the wall clock the
    # 179-day-old message is now 182 days old, but it is not: nothing more goes.
    clock.jump(FORWARD)
    detail = await retention.run()
    assert detail.startswith("deleted nothing"), detail
    assert "forward by 3 days" in detail and "kept that much longer" in detail
    assert await _left(db, ids) == {"179 days", "177.5 days"}

    # Two real days later the 179-day-old one is 181 days old and goes; the other, 179.5
    # days old, stays.
    clock.advance(2 * DAY)
    await retention.run()
    assert await _left(db, ids) == {"177.5 days"}

    # A step back only moves the cut-off back: nothing goes that should stay.
    clock.jump(BACK)
    assert (await retention.run()).startswith("deleted nothing")
    assert await _left(db, ids) == {"177.5 days"}


# -- one-time codes ----------------------------------------------------------------------------


@pytest.fixture
def otp_clock() -> ManualClock:
    return ManualClock(T0)


def _otp(db: Database, clock: ManualClock) -> OtpService:
    # The default lifetime: 300 s; a resend waits 30 s.
    return OtpService(db, clock, Outbox(db, clock), KEY, OtpPolicy(), shop_name="Corner Shop")


async def _reason(service: OtpService, code: str) -> str | None:
    try:
        await service.verify(PHONE, code)
    except VerifyFailed as refused:
        return refused.reason
    return None


async def test_a_code_is_never_valid_longer_than_its_lifetime_after_a_step_back(
    db: Database, otp_clock: ManualClock
) -> None:
    service = _otp(db, otp_clock)
    sent = await service.send(PHONE)
    code = await code_in_message(db, sent.message_id)
    otp_clock.advance(100)
    otp_clock.jump(BACK)  # the wall clock now says the code has 1 h 3 min 20 s left
    status = await service.status(PHONE)
    assert status.pending and status.expires_in == 200, status
    otp_clock.advance(200)  # 300 s after it was sent, in real time
    assert not (await service.status(PHONE)).pending
    assert await _reason(service, code) == "expired"

    # Within its lifetime a code still works after the step.
    second = await service.send(PHONE)
    otp_clock.jump(BACK)
    otp_clock.advance(299)
    assert await _reason(service, await code_in_message(db, second.message_id)) is None


async def test_the_sweep_ends_codes_past_their_lifetime_for_the_next_run_too(
    db: Database, otp_clock: ManualClock
) -> None:
    service = _otp(db, otp_clock)
    sent = await service.send(PHONE)
    code = await code_in_message(db, sent.message_id)
    otp_clock.jump(BACK)
    otp_clock.advance(301)
    await service.sweep()
    # A restart forgets the monotonic times; the table now says the code is dead.
    assert await _reason(_otp(db, otp_clock), code) == "expired"


async def test_a_code_from_an_earlier_run_with_the_clock_before_it_was_sent_is_dead(
    db: Database, otp_clock: ManualClock
) -> None:
    sent = await _otp(db, otp_clock).send(PHONE)
    code = await code_in_message(db, sent.message_id)
    otp_clock.jump(BACK)
    # A new process: its age is unknown, and the clock says it was not even sent yet.
    assert await _reason(_otp(db, otp_clock), code) == "expired"


async def test_a_step_forward_expires_codes_sent_before_it(
    db: Database, otp_clock: ManualClock
) -> None:
    service = _otp(db, otp_clock)
    sent = await service.send(PHONE)
    otp_clock.jump(FORWARD)
    assert await _reason(service, await code_in_message(db, sent.message_id)) == "expired"
    # The send limits count real time: the wait between two codes still holds.
    with pytest.raises(OtpError) as refused:
        await service.send(PHONE)
    assert refused.value.retry_after == 30
    otp_clock.advance(30)
    assert (await service.send(PHONE)).expires_in == 300


async def test_a_step_back_does_not_stretch_the_wait_before_a_new_code(
    db: Database, otp_clock: ManualClock
) -> None:
    service = _otp(db, otp_clock)
    await service.send(PHONE)
    otp_clock.jump(BACK)
    with pytest.raises(OtpError) as refused:
        await service.send(PHONE)
    # Not 3630 s: the earlier send counts as made now, at the latest.
    assert refused.value.status == 429 and refused.value.retry_after == 30
    otp_clock.advance(30)
    assert (await service.send(PHONE)).expires_in == 300


# -- the outbox's backoff ----------------------------------------------------------------------


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    with TwilioPeer() as peer:
        yield peer


async def test_a_retry_waits_its_backoff_not_an_hour_more_after_a_step_back(
    db: Database, twilio: TwilioPeer
) -> None:
    clock = ManualClock(T0)
    provider = TwilioProvider(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number="+15005550006",
        base_url=twilio.base_url,
        timeout_seconds=5.0,
        concurrency=2,
    )
    slot = Slot(
        provider=provider,
        bucket=TokenBucket(1000, clock),
        concurrency=2,
        breaker=CircuitBreaker(provider.name, clock, 60.0),
    )
    router = Router({"sms": [slot]})
    dispatcher = Dispatcher(
        db,
        router,
        clock,
        RetryPolicy(attempts_per_provider=3, base_seconds=20.0, max_seconds=40.0),
        lease_seconds=30,
    )
    outbox = Outbox(db, clock, wake=dispatcher.wake)
    twilio.script(Fault.server_error(503), times=1)
    await dispatcher.start()
    try:
        queued = await outbox.enqueue(
            EnqueueRequest(channel="sms", recipient="+33612345678", body="Bags are in")
        )
        message_id = queued.message.id

        async def read() -> Any:
            return await db.execute(lambda conn: get_message(conn, message_id))

        async def retried() -> Any:
            message = await read()
            return message if message.status == "queued" and message.attempts == 1 else None

        message = None
        for _ in range(500):
            if message := await retried():
                break
            await asyncio.sleep(0.01)
        assert message is not None, "the first try did not fail and queue again"
        wait = (message.due_at - clock.now()).total_seconds()
        assert 10 <= wait <= 20, wait  # half the step fixed, half random (equal jitter)

        clock.jump(BACK)
        dispatcher.wake()
        await asyncio.sleep(0.2)
        message = await read()
        # Not sooner than its backoff, and not an hour later either.
        assert message.status == "queued"
        assert abs((message.due_at - clock.now()).total_seconds() - wait) < 1, message.due_at
        events = await db.execute(lambda conn: get_events(conn, message_id))
        assert "the clock stepped back" in (events[-1].detail or "")

        clock.advance(wait + 1)
        dispatcher.wake()
        for _ in range(500):
            if (message := await read()).status == "sent":
                break
            await asyncio.sleep(0.01)
        assert message.status == "sent", message
        assert len(twilio.sent) == 1
    finally:
        await dispatcher.stop(5)
        await router.close()


# -- scheduled jobs ----------------------------------------------------------------------------


class SteppedClock(SystemClock):
    """The system clock, with a wall clock that steps when told (the monotonic one never)."""

    def __init__(self, start: datetime) -> None:
        self.offset = start - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def jump(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def stepped(monkeypatch: pytest.MonkeyPatch) -> SteppedClock:
    """A clock for the scheduler that APScheduler reads too: it asks `datetime.now` itself,
    so its two modules see this machine's clock stepped like ours (a test cannot step the
    real one)."""
    # Half a second before T0: the daily jobs below are due at T0, on a whole second.
    clock = SteppedClock(T0 - timedelta(seconds=0.5))

    class _Now(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return clock.now().astimezone(tz)

    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", _Now)
    monkeypatch.setattr(apscheduler.executors.base, "datetime", _Now)
    return clock


async def _runs(db: Database) -> list[tuple[str, str, str | None]]:
    return await db.execute(
        lambda conn: conn.execute(
            "SELECT job_id, outcome, detail FROM job_runs ORDER BY id"
        ).fetchall()
    )


def _at(clock: SteppedClock, seconds: float) -> datetime:
    return clock.now() + timedelta(seconds=seconds)


async def _ran(db: Database, job_id: str) -> bool:
    return any(run[0] == job_id for run in await _runs(db))


@pytest.fixture
async def scheduler(db: Database, stepped: SteppedClock) -> AsyncIterator[Scheduler]:
    # The clock watch looks often, so the test's steps are seen within its 1 s waits.
    made = Scheduler(db, stepped, clock_watch_seconds=0.05)
    yield made
    await made.stop(timeout=2)


async def _nothing() -> str:
    return "done"


def _daily(moment: datetime) -> CronTrigger:
    return CronTrigger(hour=moment.hour, minute=moment.minute, second=moment.second, timezone=UTC)


async def test_after_a_step_back_no_job_runs_twice_and_none_stalls_for_an_hour(
    db: Database, stepped: SteppedClock, scheduler: Scheduler
) -> None:
    daily_at = T0
    sweep = IntervalTrigger(seconds=0.2, start_date=_at(stepped, 0.2))
    scheduler.add(JobSpec("sweep", _nothing, sweep))
    scheduler.add(JobSpec("backup", _nothing, _daily(daily_at), misfire_grace_seconds=3600))
    scheduler.start()
    for _ in range(300):
        if await _ran(db, "backup"):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    before = [run for run in await _runs(db) if run[0] == "sweep"]

    stepped.jump(BACK)  # the wall clock is 1 h before the daily job's time again
    await asyncio.sleep(1.0)
    runs = await _runs(db)
    after = [run for run in runs if run[0] == "sweep"]
    assert len(after) >= len(before) + 2, "the interval job kept its pace in real time"
    assert [run[:2] for run in runs if run[0] == "backup"] == [("backup", "ok")], "once"
    # Its next run is tomorrow at its time, not today's again an hour from now.
    assert scheduler.next_runs()["backup"] == daily_at + timedelta(days=1)


async def test_after_a_step_forward_daily_jobs_run_once_or_say_they_were_skipped(
    db: Database, stepped: SteppedClock, scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    report_at = T0
    backup_at = report_at - timedelta(hours=7)
    sweep = IntervalTrigger(seconds=0.2, start_date=_at(stepped, 0.2))
    scheduler.add(JobSpec("sweep", _nothing, sweep))
    scheduler.add(JobSpec("report", _nothing, _daily(report_at), misfire_grace_seconds=3600))
    scheduler.add(JobSpec("backup", _nothing, _daily(backup_at), misfire_grace_seconds=6 * 3600))
    caplog.set_level(logging.WARNING)
    scheduler.start()
    for _ in range(300):
        if await _ran(db, "report"):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    sweeps_before = sum(1 for run in await _runs(db) if run[0] == "sweep")

    stepped.jump(FORWARD)  # three report days and three backup nights fell due at once
    await asyncio.sleep(1.0)
    runs = await _runs(db)
    # Before the step, T0's report; after it, the one of three days later, once, not three
    # times.
    assert [run[1] for run in runs if run[0] == "report"] == ["ok", "ok"]
    # The backup's time is 7 h gone, more than its 6 h grace: skipped, and job_runs says so.
    [(_, outcome, detail)] = [run for run in runs if run[0] == "backup"]
    assert outcome == "skipped"
    missed = (backup_at + timedelta(days=3)).strftime("%Y-%m-%d %H:%M")
    assert detail and f"missed its run at {missed} UTC" in detail and "the clock jumped" in detail
    # The interval job neither bursts nor stops.
    sweeps = sum(1 for run in runs if run[0] == "sweep") - sweeps_before
    assert 2 <= sweeps <= 7, sweeps
    assert "the clock stepped forward by 3 days" in caplog.text


# -- the start-up check ------------------------------------------------------------------------


async def test_a_clock_behind_the_database_warns_in_plain_words_and_clears_when_right(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await db.write(
        lambda conn: f.insert(
            conn, "job_runs", f.job_run(started_at=utc_iso(T0), finished_at=utc_iso(T0))
        )
    )
    clock = ManualClock(T0 - timedelta(days=2))
    check = ClockCheck(db, clock)
    caplog.set_level(logging.WARNING)
    behind = await check.at_start()
    assert behind is not None and behind.seconds == 2 * DAY
    assert (
        "this machine's clock says 2026-03-08 12:00:00 UTC, but the database holds a row "
        "from 2026-03-10 12:00:00 UTC" in caplog.text
    )
    assert "shopbell goes on" in caplog.text and "timedatectl set-ntp true" in caplog.text
    health = await check.health()
    assert health["state"] == "degraded" and "probably behind" in str(health["detail"])

    clock.jump(2 * DAY)  # NTP answered
    assert (await check.health())["state"] == "ok"


async def test_the_daemon_starts_with_a_clock_behind_its_database_and_health_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    seeded = Database(data / "shopbell.db")
    await seeded.open()
    ahead = utc_iso(datetime.now(UTC) + timedelta(days=2))
    await seeded.write(
        lambda conn: f.insert(conn, "job_runs", f.job_run(started_at=ahead, finished_at=ahead))
    )
    await seeded.close()
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{data}"\n\n[api]\nport = {port}\n', encoding="utf-8")

    caplog.set_level(logging.WARNING)
    daemon = Daemon(loaded=load_config(config))
    running = asyncio.create_task(daemon.run())
    try:
        await wait_until_async(lambda: daemon.scheduler is not None, "the daemon to start")
        token = (data / "api_token").read_text().strip()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
        ) as client:
            body = (await client.get("/api/health")).json()
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(running, 30) == 0
    clock = body["components"]["clock"]
    assert clock["state"] == "degraded", clock
    assert "probably behind" in clock["detail"] and "timedatectl" in clock["detail"]
    assert "the clock is probably 2 days 0 h behind" in caplog.text


# -- the mobile network's time ----------------------------------------------------------------


@pytest.fixture
async def modem_rig(
    tmp_path: Path, db: Database
) -> AsyncIterator[tuple[ModemSimulator, ModemProvider, ClockCheck]]:
    link = tmp_path / "modem"
    sim = ModemSimulator(link=link)
    provider = ModemProvider(fast_config(str(link)))
    check = ClockCheck(db, SystemClock())
    provider.on_network_time = functools.partial(check.network_time, provider.name)
    yield sim, provider, check
    await provider.close()
    await sim.stop()


async def test_a_network_time_ahead_of_the_machine_is_logged_and_shown(
    modem_rig: tuple[ModemSimulator, ModemProvider, ClockCheck], caplog: pytest.LogCaptureFixture
) -> None:
    sim, provider, check = modem_rig
    sim.network_time_offset = timedelta(days=3)  # this machine is 3 days behind the network
    caplog.set_level(logging.WARNING)
    await sim.start()
    await provider.start()
    await wait_until_async(lambda: check.network is not None, "the modem's network time")
    assert "AT+CTZU=1" in sim.commands and "AT+CCLK?" in sim.commands
    assert (await provider.health()).state == "ok"
    health = await check.health()
    assert health["state"] == "degraded"
    assert "this machine's clock is 3 days 0 h behind" in str(health["detail"])
    assert "sudo timedatectl set-time" in str(health["detail"])
    assert abs(float(health["network_offset_seconds"]) - FORWARD) < 5  # type: ignore[arg-type]
    assert "shopbell does not set the clock" in caplog.text


@pytest.mark.parametrize("answer", ["its own start date", "ERROR"])
async def test_a_modem_without_the_network_time_is_ready_and_says_nothing(
    modem_rig: tuple[ModemSimulator, ModemProvider, ClockCheck], answer: str
) -> None:
    sim, provider, check = modem_rig
    if answer == "ERROR":
        sim.fail_next("AT+CCLK", "ERROR")
    else:
        sim.network_time_offset = None  # answers 04/01/01: not the network's time
    await sim.start()
    await provider.start()
    await wait_until_async(
        lambda: "AT+CCLK?" in sim.commands and provider.driver.state == "ready", "ready"
    )
    assert check.network is None
    assert (await check.health())["state"] == "ok"
