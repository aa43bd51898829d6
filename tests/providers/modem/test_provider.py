"""ModemProvider end to end against the modem simulator: send, reports, inbound, faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from providers.base import (
    NotForThisProvider,
    Outgoing,
    ProviderDown,
    RecipientError,
    TransientError,
)
from providers.modem.driver import ModemState
from providers.modem.provider import ModemInbound, ModemProvider, ModemReport
from providers.modem.simulator import ModemSimulator
from tests.helpers import wait_until_async
from tests.providers.modem.configs import fast_config

TO = "+4915112340000"
SENDER = "+4915199999999"
LONG = "The quick brown fox jumps over the lazy dog. " * 9  # 405 chars: 3 GSM-7 segments
EMOJI = "Your order is ready 🎉 — collect it at the counter, thank you! " * 3  # UCS-2

MakeSim = Callable[..., Awaitable[ModemSimulator]]
MakeProvider = Callable[..., Awaitable[ModemProvider]]


class Inbox:
    """What the provider handed up, and a switch to make the handler fail."""

    def __init__(self, sim: ModemSimulator | None = None) -> None:
        self.messages: list[ModemInbound] = []
        self.reports: list[ModemReport] = []
        self.fail = False
        self.sim = sim
        # What the modem still held while each message was being recorded.
        self.on_modem_during: list[int] = []
        self.calls = 0

    async def inbound(self, message: ModemInbound) -> None:
        self.calls += 1
        if self.sim is not None:
            self.on_modem_during.append(len(self.sim.stored))
        if self.fail:
            raise RuntimeError("the database is locked")
        self.messages.append(message)

    async def report(self, report: ModemReport) -> None:
        if self.fail:
            raise RuntimeError("the database is locked")
        self.reports.append(report)


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "modem"


@pytest.fixture
async def make_sim(link: Path) -> AsyncIterator[MakeSim]:
    made: list[ModemSimulator] = []

    async def make(**settings: Any) -> ModemSimulator:
        sim = ModemSimulator(link=link, **settings)
        made.append(sim)
        await sim.start()
        return sim

    yield make
    for sim in made:
        await sim.stop()


@pytest.fixture
async def make_provider(link: Path) -> AsyncIterator[MakeProvider]:
    made: list[ModemProvider] = []

    async def make(
        *,
        inbox: Inbox | None = None,
        start: bool = True,
        wait: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        **settings: Any,
    ) -> ModemProvider:
        provider = ModemProvider(fast_config(str(link), **settings), monotonic=monotonic)
        made.append(provider)
        if inbox is not None:
            provider.on_inbound = inbox.inbound
            provider.on_status_report = inbox.report
        if start:
            await provider.start()
            if wait:
                await ready(provider)
        return provider

    yield make
    for provider in made:
        await provider.close()


async def ready(provider: ModemProvider) -> None:
    driver = provider.driver
    assert await driver.wait_for_state(ModemState.READY, timeout=8.0), driver.detail


def sms(body: str, *, to: str = TO, message_id: int = 1, **extra: Any) -> Outgoing:
    return Outgoing(message_id=message_id, channel="sms", recipient=to, body=body, **extra)


# -- sending ----------------------------------------------------------------------------------


async def test_send_one_segment(make_sim, make_provider) -> None:
    sim = await make_sim()
    provider = await make_provider()
    result = await provider.send(sms("Your code is 123456"))
    [sent] = sim.sent
    assert sent.submit.number == TO
    assert sent.submit.text == "Your code is 123456"
    assert sent.submit.status_report_requested
    assert result.provider_message_id == str(sent.message_reference)
    assert result.segments == 1
    assert result.parts == (str(sent.message_reference),)


@pytest.mark.parametrize("text", [LONG, EMOJI])
async def test_send_multipart(make_sim, make_provider, text) -> None:
    sim = await make_sim()
    provider = await make_provider()
    result = await provider.send(sms(text))
    assert result.segments == len(sim.sent) >= 3
    assert "".join(sent.submit.text for sent in sim.sent) == text
    concats = [sent.submit.concat for sent in sim.sent]
    assert all(c is not None for c in concats)
    assert [c.seq for c in concats if c] == list(range(1, len(concats) + 1))
    assert len({c.ref for c in concats if c}) == 1
    references = tuple(str(sent.message_reference) for sent in sim.sent)
    assert result.parts == references
    assert result.provider_message_id == references[0]


async def test_concatenation_reference_rolls_between_messages(make_sim, make_provider) -> None:
    sim = await make_sim()
    provider = await make_provider()
    await provider.send(sms(LONG, message_id=1))
    await provider.send(sms(LONG, message_id=2))
    refs = [sent.submit.concat.ref for sent in sim.sent if sent.submit.concat]
    assert len(set(refs[:3])) == 1 and len(set(refs[3:])) == 1
    assert refs[0] != refs[3]


async def test_validity_and_no_status_report(make_sim, make_provider) -> None:
    sim = await make_sim()
    provider = await make_provider(status_reports=False)
    await provider.send(sms("valid for an hour", validity_seconds=3600))
    submit = sim.sent[0].submit
    assert submit.validity_seconds is not None and submit.validity_seconds >= 3600
    assert not submit.status_report_requested


async def test_not_sms_and_not_a_number(make_sim, make_provider) -> None:
    await make_sim()
    provider = await make_provider()
    with pytest.raises(NotForThisProvider):
        await provider.send(Outgoing(message_id=1, channel="push", recipient="tok", body="x"))
    with pytest.raises(RecipientError):
        await provider.send(sms("hello", to="call me maybe"))


# -- status reports ---------------------------------------------------------------------------


async def test_delivered_reports_reach_the_callback_then_leave_the_modem(
    make_sim, make_provider
) -> None:
    sim = await make_sim()
    inbox = Inbox()
    provider = await make_provider(inbox=inbox)
    result = await provider.send(sms(LONG))
    await wait_until_async(lambda: len(inbox.reports) == 3, "len(inbox.reports) == 3", timeout=5.0)
    assert {str(r.message_reference) for r in inbox.reports} == set(result.parts)
    assert all(r.delivered and not r.failed and r.status == 0 for r in inbox.reports)
    assert all(r.recipient == TO for r in inbox.reports)
    await wait_until_async(
        lambda: len(sim.deleted_reports) == 3, "len(sim.deleted_reports) == 3", timeout=5.0
    )
    assert sim.stored_reports == {}


async def test_failed_report(make_sim, make_provider) -> None:
    await make_sim(status_reports="failed")
    inbox = Inbox()
    provider = await make_provider(inbox=inbox)
    result = await provider.send(sms("to a dead phone"))
    await wait_until_async(lambda: len(inbox.reports) == 1, "len(inbox.reports) == 1", timeout=5.0)
    [report] = inbox.reports
    assert report.failed and not report.delivered
    assert str(report.message_reference) == result.provider_message_id


async def test_a_report_that_was_not_recorded_stays_and_comes_again(
    make_sim, make_provider
) -> None:
    sim = await make_sim()
    inbox = Inbox()
    inbox.fail = True
    provider = await make_provider(inbox=inbox, poll_seconds=0.3)
    await provider.send(sms("hello"))
    await wait_until_async(
        lambda: len(sim.stored_reports) == 1, "len(sim.stored_reports) == 1", timeout=5.0
    )
    await asyncio.sleep(0.2)
    assert sim.deleted_reports == []
    inbox.fail = False
    await wait_until_async(lambda: len(inbox.reports) == 1, "len(inbox.reports) == 1", timeout=5.0)
    await wait_until_async(
        lambda: sim.stored_reports == {}, "sim.stored_reports == {}", timeout=5.0
    )


async def test_inline_reports_when_the_modem_refuses_to_store_them(make_sim, make_provider) -> None:
    sim = await make_sim()
    # The first AT+CNMI choice (reports stored, +CDSI) is refused: the fallback routes them
    # inline as +CDS with their PDU.
    sim.fail_next("AT+CNMI=2,1,0,2,0", "+CMS ERROR: 303")
    inbox = Inbox()
    provider = await make_provider(inbox=inbox)
    assert "AT+CNMI=2,1,0,1,0" in sim.commands
    result = await provider.send(sms("hello"))
    await wait_until_async(lambda: len(inbox.reports) == 1, "len(inbox.reports) == 1", timeout=5.0)
    assert str(inbox.reports[0].message_reference) == result.provider_message_id
    assert inbox.reports[0].delivered
    assert sim.stored_reports == {}


# -- inbound ----------------------------------------------------------------------------------


async def test_stored_messages_are_read_at_start_and_deleted_after_commit(
    make_sim, make_provider
) -> None:
    sim = await make_sim()
    [index] = sim.preload(SENDER, "was waiting on the SIM")
    inbox = Inbox(sim)
    await make_provider(inbox=inbox)
    await wait_until_async(
        lambda: len(inbox.messages) == 1, "len(inbox.messages) == 1", timeout=5.0
    )
    [message] = inbox.messages
    assert (message.sender, message.text, message.parts, message.partial) == (
        SENDER,
        "was waiting on the SIM",
        1,
        False,
    )
    assert message.received_at.tzinfo is not None
    assert inbox.on_modem_during == [1]  # still on the modem while it was being recorded
    await wait_until_async(lambda: sim.deleted == [index], "sim.deleted == [index]", timeout=5.0)
    assert sim.stored == {}


async def test_live_message_by_cmti(make_sim, make_provider) -> None:
    sim = await make_sim()
    inbox = Inbox(sim)
    await make_provider(inbox=inbox)
    [index] = sim.receive(SENDER, "STOP")
    await wait_until_async(lambda: sim.deleted == [index], "sim.deleted == [index]", timeout=5.0)
    assert [m.text for m in inbox.messages] == ["STOP"]
    assert inbox.on_modem_during == [1]


async def test_live_message_by_direct_cmt(make_sim, make_provider) -> None:
    sim = await make_sim()
    inbox = Inbox()
    await make_provider(inbox=inbox)
    sim.receive("Shop", "routed straight to us", mode="direct")
    await wait_until_async(
        lambda: len(inbox.messages) == 1, "len(inbox.messages) == 1", timeout=5.0
    )
    assert (inbox.messages[0].sender, inbox.messages[0].text) == ("Shop", "routed straight to us")


async def test_a_message_is_never_deleted_before_it_is_committed(make_sim, make_provider) -> None:
    sim = await make_sim()
    [stored] = sim.preload(SENDER, "first")
    inbox = Inbox(sim)
    inbox.fail = True
    await make_provider(inbox=inbox, poll_seconds=0.3)
    [live] = sim.receive(SENDER, "second")
    # Each is offered, fails, and is offered again at the next reconcile; nothing is deleted.
    await wait_until_async(lambda: inbox.calls >= 4, "inbox.calls >= 4", timeout=5.0)
    assert sim.deleted == []
    assert set(sim.stored) == {stored, live}
    inbox.fail = False
    await wait_until_async(
        lambda: sorted(sim.deleted) == sorted([stored, live]),
        "sorted(sim.deleted) == sorted([stored, live])",
        timeout=5.0,
    )
    assert sorted(m.text for m in inbox.messages) == ["first", "second"]
    assert all(count >= 1 for count in inbox.on_modem_during)


async def test_a_message_whose_delete_failed_is_not_handed_up_twice(
    make_sim, make_provider
) -> None:
    sim = await make_sim()
    inbox = Inbox()
    await make_provider(inbox=inbox, poll_seconds=0.3)
    sim.fail_next("AT+CMGD", "+CMS ERROR: 500")
    [index] = sim.receive(SENDER, "once")
    await wait_until_async(
        lambda: sim.deleted == [index], "sim.deleted == [index]", timeout=5.0
    )  # deleted at the next reconcile
    assert [m.text for m in inbox.messages] == ["once"]


async def test_same_message_read_again_keeps_its_key(make_sim, make_provider) -> None:
    sim = await make_sim()
    sim.preload(SENDER, "idempotent")
    inbox = Inbox()
    inbox.fail = True
    keys: list[str] = []

    async def remember(message: ModemInbound) -> None:
        keys.append(message.key)
        if len(keys) < 2:
            raise RuntimeError("first try fails")

    provider = await make_provider(inbox=inbox, poll_seconds=0.3)
    provider.on_inbound = remember
    await wait_until_async(lambda: len(keys) == 2, "len(keys) == 2", timeout=5.0)
    assert keys[0] == keys[1]


async def test_multipart_inbound_is_reassembled(make_sim, make_provider) -> None:
    sim = await make_sim()
    inbox = Inbox(sim)
    await make_provider(inbox=inbox)
    indices = sim.receive(SENDER, LONG)
    assert len(indices) == 3
    await wait_until_async(
        lambda: len(inbox.messages) == 1, "len(inbox.messages) == 1", timeout=5.0
    )
    [message] = inbox.messages
    assert (message.text, message.parts, message.partial) == (LONG, 3, False)
    assert inbox.on_modem_during == [3]
    await wait_until_async(
        lambda: sorted(sim.deleted) == sorted(indices),
        "sorted(sim.deleted) == sorted(indices)",
        timeout=5.0,
    )


async def test_multipart_inbound_stored_at_start(make_sim, make_provider) -> None:
    sim = await make_sim()
    sim.preload(SENDER, EMOJI)
    inbox = Inbox()
    await make_provider(inbox=inbox)
    await wait_until_async(
        lambda: len(inbox.messages) == 1, "len(inbox.messages) == 1", timeout=5.0
    )
    assert inbox.messages[0].text == EMOJI and not inbox.messages[0].partial


async def test_a_lone_part_is_delivered_as_partial_after_the_timeout(
    make_sim, make_provider
) -> None:
    # A one-slot memory: the network holds parts 2 and 3 back until part 1 leaves the modem,
    # which it only does once the multipart timeout gives up waiting for the others.
    sim = await make_sim(storage_slots=1)
    inbox = Inbox()
    await make_provider(inbox=inbox, multipart_timeout_seconds=0.3)
    sim.receive(SENDER, LONG)
    await wait_until_async(
        lambda: len(inbox.messages) == 3, "len(inbox.messages) == 3", timeout=5.0
    )
    assert all(m.partial and m.parts == 1 for m in inbox.messages)
    assert "".join(m.text for m in inbox.messages) == LONG
    assert len({m.key for m in inbox.messages}) == 3


async def test_without_a_handler_messages_stay_on_the_modem(make_sim, make_provider) -> None:
    sim = await make_sim()
    sim.preload(SENDER, "nobody listens")
    provider = await make_provider()
    await asyncio.sleep(0.3)
    assert sim.deleted == [] and len(sim.stored) == 1
    assert provider.on_inbound is None


# -- faults -----------------------------------------------------------------------------------


async def test_unplug_mid_send_then_replug(make_sim, make_provider) -> None:
    sim = await make_sim(send_latency=0.5)
    inbox = Inbox()
    provider = await make_provider(inbox=inbox)
    sending = asyncio.create_task(provider.send(sms("in flight")))
    await wait_until_async(
        lambda: any(c.startswith("AT+CMGS") for c in sim.commands),
        'any(c.startswith("AT+CMGS") for c in sim.commands)',
        timeout=5.0,
    )
    await asyncio.sleep(0.1)
    await sim.unplug()
    with pytest.raises((ProviderDown, TransientError)) as caught:
        async with asyncio.timeout(3.0):
            await sending
    assert "may have been sent" in str(caught.value)
    health = await provider.health()
    assert health.state == "down" and health.detail.startswith("disconnected")
    # While it is gone, a send fails at once rather than waiting for the modem.
    started = time.monotonic()
    with pytest.raises(ProviderDown):
        await provider.send(sms("while unplugged"))
    assert time.monotonic() - started < 0.5
    # A message that arrives meanwhile waits on the SIM and is read after the reconnect.
    sim.receive(SENDER, "sent while you were away")
    await sim.replug()
    await ready(provider)
    result = await provider.send(sms("after replug"))
    assert sim.sent[-1].submit.text == "after replug"
    assert result.provider_message_id == str(sim.sent[-1].message_reference)
    await wait_until_async(
        lambda: [m.text for m in inbox.messages] == ["sent while you were away"],
        '[m.text for m in inbox.messages] == ["sent while you were away"]',
        timeout=5.0,
    )


async def test_garbage_on_the_line(make_sim, make_provider) -> None:
    sim = await make_sim(send_latency=0.1)
    inbox = Inbox()
    provider = await make_provider(inbox=inbox)
    sim.garbage(b"\xff\xfe\x00\r\n+CMT: ,99\r\nnot hex\r\n\x1b[2J\r\n+CMGS")
    await provider.send(sms("through the noise"))
    sim.garbage(b"\r\n\x00\x00\x80OK?\r\n^RSSI:99\r\n+CDS: 25\r\n\x02\r\n")
    sim.receive(SENDER, "still heard")
    await wait_until_async(
        lambda: [m.text for m in inbox.messages] == ["still heard"],
        '[m.text for m in inbox.messages] == ["still heard"]',
        timeout=5.0,
    )
    assert [sent.submit.text for sent in sim.sent] == ["through the noise"]


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        ("+CMS ERROR: 1", RecipientError, "CMS 1"),
        ("+CMS ERROR: 28", RecipientError, "CMS 28"),
        ("+CMS ERROR: 500", TransientError, "CMS 500"),
        ("+CMS ERROR: 42", TransientError, "CMS 42"),
        ("+CME ERROR: 14", TransientError, "CME 14"),
        ("ERROR", TransientError, "ERROR"),
        ("+CMS ERROR: 8", ProviderDown, "CMS 8"),
        ("+CMS ERROR: 330", ProviderDown, "CMS 330"),
        ("+CMS ERROR: 331", ProviderDown, "CMS 331"),
        ("+CMS ERROR: 304", NotForThisProvider, "CMS 304"),
    ],
)
async def test_error_mapping(make_sim, make_provider, reply, error, code) -> None:
    sim = await make_sim()
    provider = await make_provider()
    sim.fail_next("AT+CMGS", reply)
    with pytest.raises(error) as caught:
        await provider.send(sms("hello"))
    assert type(caught.value) is error
    assert caught.value.code == code
    assert sim.sent == []


async def test_fail_recipient_is_a_recipient_error(make_sim, make_provider) -> None:
    sim = await make_sim()
    provider = await make_provider()
    sim.fail_recipient(TO, "+CMS ERROR: 1")
    with pytest.raises(RecipientError):
        await provider.send(sms("hello"))
    await provider.send(sms("hello", to="+4915112340001"))
    assert len(sim.sent) == 1


async def test_busy_error_hints_a_retry(make_sim, make_provider) -> None:
    sim = await make_sim()
    provider = await make_provider()
    sim.fail_next("AT+CMGS", "+CME ERROR: 515")
    with pytest.raises(TransientError) as caught:
        await provider.send(sms("hello"))
    assert caught.value.retry_after is not None


async def test_multipart_failure_says_how_far_it_got(make_sim, make_provider) -> None:
    sim = await make_sim()
    provider = await make_provider()
    await provider.send(sms("warm up"))  # the scripted failure hits the next CMGS
    sim.sent.clear()
    sim.fail_next("AT+CMGS", "+CMS ERROR: 500")
    sim.fail_next("AT+CMGS", "+CMS ERROR: 500")
    with pytest.raises(TransientError, match="0 of 3"):
        await provider.send(sms(LONG))


async def test_no_prompt_means_nothing_was_sent(make_sim, make_provider) -> None:
    sim = await make_sim()
    provider = await make_provider(command_timeout_seconds=0.2)
    sim.slow_prompt(0.6)
    with pytest.raises(TransientError, match="nothing was sent"):
        await provider.send(sms("hello"))
    await asyncio.sleep(0.6)
    assert sim.sent == []
    await provider.send(sms("hello again"))
    assert [sent.submit.text for sent in sim.sent] == ["hello again"]


async def test_no_answer_after_the_pdu_is_an_unknown_outcome(make_sim, make_provider) -> None:
    sim = await make_sim(send_latency=1.0)
    provider = await make_provider(send_timeout_seconds=0.2)
    with pytest.raises(TransientError, match="may have been sent"):
        await provider.send(sms("hello"))
    # The simulator did send it: that is why the outbox must treat this as maybe-sent.
    await wait_until_async(lambda: len(sim.sent) == 1, "len(sim.sent) == 1", timeout=5.0)


async def test_rate_limit(make_sim, make_provider) -> None:
    await make_sim()
    rate_per_second, burst, count = 10.0, 2, 6
    provider = await make_provider(segments_per_minute=rate_per_second * 60, segments_burst=burst)
    started = time.monotonic()
    for number in range(count):
        await provider.send(sms(f"message {number}", message_id=number))
    assert time.monotonic() - started >= (count - burst) / rate_per_second - 0.02


async def test_rate_limit_counts_segments(make_sim, make_provider) -> None:
    sim = await make_sim()
    provider = await make_provider(segments_per_minute=600.0, segments_burst=1)
    started = time.monotonic()
    await provider.send(sms(LONG + LONG))  # 6 segments
    assert len(sim.sent) == 6
    assert time.monotonic() - started >= (6 - 1) / 10.0 - 0.02


# -- health and lifecycle ---------------------------------------------------------------------


async def test_health_when_ready(make_sim, make_provider) -> None:
    await make_sim(profile="quectel")
    provider = await make_provider()
    health = await provider.health()
    assert health.state == "ok"
    assert health.detail == "ready: Quectel EC25, Sim Telecom, signal -73 dBm"


async def test_start_without_a_modem_does_not_block(make_provider) -> None:
    started = time.monotonic()
    provider = await make_provider(wait=False)
    assert time.monotonic() - started < 0.5
    await asyncio.sleep(0.1)
    health = await provider.health()
    assert health.state == "down" and "cannot open" in health.detail
    with pytest.raises(ProviderDown):
        await provider.send(sms("hello"))


async def test_health_before_start(make_provider) -> None:
    provider = await make_provider(start=False)
    health = await provider.health()
    assert health.state == "down" and health.detail.startswith("disconnected")


async def test_health_says_a_rejected_pin_is_not_retried(make_sim, make_provider) -> None:
    sim = await make_sim(pin="1234")
    provider = await make_provider(pin="0000", wait=False)
    assert await provider.driver.wait_for_state(ModemState.PIN_REJECTED, timeout=5.0)
    health = await provider.health()
    assert health.state == "down"
    assert health.detail.startswith("sim locked: PIN rejected, not retried")
    assert "[modem] pin" in health.detail
    with pytest.raises(ProviderDown):
        await provider.send(sms("hello"))
    assert sim.pin_attempts == 1


async def test_close_is_idempotent(make_sim, make_provider) -> None:
    await make_sim()
    provider = await make_provider()
    await provider.close()
    await provider.close()
    with pytest.raises(ProviderDown):
        await provider.send(sms("hello"))
    assert (await provider.health()).state == "down"


async def test_inbound_work_rests_while_the_modem_is_away(make_sim, make_provider) -> None:
    sim = await make_sim()
    inbox = Inbox()
    inbox.fail = True  # a multipart message keeps waiting for a retry
    calls = 0

    def counting_clock() -> float:
        nonlocal calls
        calls += 1
        return time.monotonic()

    await make_provider(
        inbox=inbox, poll_seconds=0.1, multipart_timeout_seconds=0.1, monotonic=counting_clock
    )
    sim.receive(SENDER, LONG)
    await wait_until_async(lambda: inbox.calls >= 1, "inbox.calls >= 1", timeout=5.0)
    await sim.unplug()
    await asyncio.sleep(0.2)
    before = calls
    await asyncio.sleep(0.5)
    # Due reconciles and retries wait for the reconnect instead of spinning.
    assert calls - before < 50
    inbox.fail = False
    await sim.replug()
    await wait_until_async(
        lambda: [m.text for m in inbox.messages] == [LONG],
        "[m.text for m in inbox.messages] == [LONG]",
        timeout=5.0,
    )


@pytest.mark.parametrize("announced", [True, False], ids=["announced", "unannounced"])
async def test_a_fast_burst_gets_every_status_report(make_sim, make_provider, announced) -> None:
    # Each report comes back the moment its message is sent, faster than reading one takes;
    # the modem keeps them in a 30-slot memory and drops what does not fit.
    sim = await make_sim(report_delay=0.0)
    if not announced:
        # A modem that stores reports without a +CDSI (AT+CNMI <ds> 0): nothing says they came.
        sim.fail_next("AT+CNMI=2,1,0,2,0", "+CMS ERROR: 303")
        sim.fail_next("AT+CNMI=2,1,0,1,0", "+CMS ERROR: 303")
    inbox = Inbox()
    # Unannounced, the last few (read during the burst only every few sends) wait for the
    # next look at the whole memory.
    provider = await make_provider(inbox=inbox, poll_seconds=60.0 if announced else 0.5)
    assert ("AT+CNMI=2,1,0,2,0" in sim.commands) and (
        ("AT+CNMI=2,1,0,0,0" in sim.commands) is not announced
    )
    references: list[str | None] = []
    most_stored = 0
    for n in range(200):
        result = await provider.send(sms(f"Your order {n} is ready", message_id=n))
        references.append(result.provider_message_id)
        most_stored = max(most_stored, len(sim.stored_reports))
    await wait_until_async(
        lambda: len(inbox.reports) == 200, "len(inbox.reports) == 200", timeout=5.0
    )
    assert sorted(str(r.message_reference) for r in inbox.reports) == sorted(map(str, references))
    assert all(r.delivered for r in inbox.reports)
    # Read and recorded, then deleted: the memory never came near full.
    await wait_until_async(
        lambda: sim.stored_reports == {}, "sim.stored_reports == {}", timeout=5.0
    )
    assert len(sim.deleted_reports) == 200
    assert most_stored < 30 // 2
