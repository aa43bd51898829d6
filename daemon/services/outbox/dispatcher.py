"""The dispatcher: claims due messages, sends them through the router, writes down each outcome."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from daemon.runtime.clock import Clock, JumpWatch, describe_step, utc_iso
from daemon.services.outbox.policy import RetryPolicy
from daemon.services.outbox.router import Router, Slot, Unavailable
from daemon.services.outbox.sealing import Sealer, SealError
from providers.base import (
    NotForThisProvider,
    Outgoing,
    ProviderDown,
    ProviderError,
    RecipientError,
    TransientError,
)
from storage.clock import rebase_future_waits
from storage.database import Database
from storage.messages import (
    Failed,
    Lane,
    Outcome,
    Retry,
    Sent,
    claim_due,
    next_due_at,
    record_outcomes,
    recover_sending,
)
from storage.models import Message, parse_time
from storage.push import notification_data

log = logging.getLogger(__name__)

# A message that keeps meeting resting providers gives up after this many claims.
MAX_TOTAL_ATTEMPTS = 100
# A send the provider has not answered by this share of the lease is abandoned as transient,
# so no lease ever expires under a live dispatcher.
SEND_GUARD_SHARE = 0.8

OptOutHook = Callable[[str, str, str], Awaitable[None]]
# Told of every outcome as it is decided: (provider or "none", channel, "sent"/"retry"/"failed",
# seconds the attempt took). For metrics; it must be quick and must not raise.
OutcomeHook = Callable[[str, str, str, float], None]
NO_DATA: Mapping[str, str] = {}


class Dispatcher:
    """One task claims due rows by (priority, due time, id) and starts a send task for each;
    a recorder writes outcomes in batches (group commit), so the database's commit rate,
    not one commit per message, bounds throughput.

    A row is claimed (`sending`) only when the provider it will go to has a free slot, so
    `sending` means "being sent now": what a crash can leave behind, and so the duplicates
    it can cause, is at most the providers' concurrency, not a batch waiting for a slot.
    """

    def __init__(
        self,
        db: Database,
        router: Router,
        clock: Clock,
        policy: RetryPolicy,
        *,
        lease_seconds: float = 120.0,
        batch_size: int = 64,
        on_opt_out: OptOutHook | None = None,
        on_outcome: OutcomeHook | None = None,
        rng: random.Random | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self._db = db
        self._router = router
        self._clock = clock
        self._policy = policy
        self._lease = lease_seconds
        self._batch = batch_size
        self._on_opt_out = on_opt_out
        self._on_outcome = on_outcome
        self._rng = rng or random.Random()
        # Opens the texts the outbox stored sealed (one-time codes), just before a send.
        self._sealer = sealer
        self._wake = asyncio.Event()
        self._flush = asyncio.Event()
        self._pending: list[tuple[Outcome, Message, bool]] = []
        # The slots of the sends whose outcomes wait in _pending.
        self._finished: list[Slot] = []
        # Each send task, and the provider slot its claim counted against (None: a message
        # that no provider will take now, decided without a provider call).
        self._inflight: dict[asyncio.Task[None], Slot | None] = {}
        self._reserved: dict[int, int] = {}
        # Set when rows may have become claimable other than by a send finishing (enqueued,
        # retried, recovered, due): lanes that ran dry are looked at again.
        self._fresh = True
        # Lanes whose last claim found fewer due rows than it had room for: not asked again
        # until something makes rows claimable (`_fresh`), so a busy lane does not pay for
        # looking into idle ones at every finished send.
        self._dry: set[tuple[Lane | None, int]] = set()
        self._next_due: datetime | None = None
        # A wall clock stepped back would stretch every wait by the step (due times are wall
        # times): each claim looks, and puts such waits back to what they were (docs/clock.md).
        self._jumps = JumpWatch(clock)
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._recorder_task: asyncio.Task[None] | None = None
        self.sent_count = 0

    # -- life --------------------------------------------------------------------------

    async def start(self) -> int:
        """Queue again what a previous run left in `sending`, then start; returns that count."""
        now = utc_iso(self._clock.now())
        # We hold the single-instance lock, so every `sending` row is an orphan of a crash.
        recovered = await self._db.write(
            lambda conn: recover_sending(conn, now, expired_before=None)
        )
        if recovered:
            log.warning(
                "outbox: %d messages were being sent when shopbell last stopped; sending them "
                "again (a duplicate is possible)",
                recovered,
            )
        # The clock may have stepped back while shopbell was stopped, too.
        self._jumps.check()
        await self._rebase_waits(-1.0)
        self._loop_task = asyncio.create_task(self._claim_loop(), name="outbox-dispatcher")
        self._recorder_task = asyncio.create_task(self._record_loop(), name="outbox-recorder")
        return recovered

    def wake(self) -> None:
        """Something was enqueued: look at the queue now rather than at the next due time."""
        self._fresh = True
        self._wake.set()

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 -- a stage budget
        """Stop claiming, let sends in flight finish within `timeout`, write their outcomes.

        Sends still running at the deadline are cancelled; their rows stay `sending` and the
        next start queues them again.
        """
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._inflight:
            log.info("outbox: waiting for %d sends in flight", len(self._inflight))
            _, pending = await asyncio.wait(set(self._inflight), timeout=max(0.0, timeout * 0.8))
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
                log.warning(
                    "outbox: %d sends did not finish in time; they will be sent again at the "
                    "next start (a duplicate is possible)",
                    len(pending),
                )
        self._flush.set()
        if self._recorder_task is not None:
            await asyncio.gather(self._recorder_task, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    # -- claiming ------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        last_lease_check = self._clock.monotonic()
        while not self._stopping:
            self._wake.clear()
            try:
                more = await self._claim_pass()
            except Exception:
                log.exception("outbox: claiming messages failed; trying again shortly")
                await asyncio.sleep(1.0)
                continue
            if more:
                continue  # there may be more due right now
            if self._clock.monotonic() - last_lease_check > self._lease / 2:
                last_lease_check = self._clock.monotonic()
                await self._recover_expired()
            # An enqueue, a retry or a crashed send sets the wake event (a finished send's
            # slot is filled again by the recorder); rows that fall due later meet the timer.
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._idle_seconds())
            except TimeoutError:
                self._fresh = True
                self._next_due = None

    async def _claim_pass(self) -> bool:
        """Claim for every lane whose provider has free slots and start the sends; True when
        a lane got all it asked for (there may be more)."""
        if self._fresh:
            self._fresh = False
            self._dry.clear()
        lanes = [
            (lane, target)
            for lane, target in self._lanes()
            if (lane, id(target)) not in self._dry and (target is None or self._free(target) > 0)
        ]
        if not lanes:
            return False
        claims, data, ran_dry, next_due = await self._claim_lanes(lanes)
        if self._stopping:
            self._put_back(claims)
            return False
        more = False
        for lane, target, claimed, short in claims:
            for message in claimed:
                self._start(message, data.get(message.notification_id or 0, NO_DATA), target)
            if short:
                self._dry.add((lane, id(target)))
            elif target is None or self._free(target) > 0:
                more = True
        if ran_dry:
            self._next_due = None if next_due is None else parse_time(next_due)
        return more

    def _put_back(self, claims: list[tuple[Lane | None, Slot | None, list[Message], bool]]) -> None:
        """Claimed as the dispatcher stopped: queue them again untouched (never sent, so no
        duplicate is possible), through the recorder that stop() waits for."""
        now = utc_iso(self._clock.now())
        for _, target, claimed, _ in claims:
            for m in claimed:
                retry = Retry(
                    m.id,
                    None,
                    "not sent: shopbell was stopping",
                    None,
                    now,
                    m.chain_position,
                    m.provider_attempts,
                )
                self._pending.append((retry, m, False))
            if target is not None:
                self._reserve(target, -len(claimed))
        self._flush.set()

    def _lanes(self) -> list[tuple[Lane, Slot | None]]:
        """Every queue lane, with the provider its messages would go to now (None: to none)."""
        lanes: list[tuple[Lane, Slot | None]] = []
        for channel in self._router.chains:
            for first, last, target in self._router.lanes(channel):
                lanes.append((Lane(channel, first, last), target))
        # Channels without a chain and positions past a chain's end: failed without a call.
        besides = tuple((ch, len(chain)) for ch, chain in self._router.chains.items())
        lanes.append((Lane(None, besides=besides), None))
        return lanes

    def _free(self, slot: Slot) -> int:
        return slot.concurrency - self._reserved.get(id(slot), 0)

    def _reserve(self, slot: Slot, count: int) -> None:
        self._reserved[id(slot)] = self._reserved.get(id(slot), 0) + count

    def _start(self, message: Message, payload: Mapping[str, str], target: Slot | None) -> None:
        """Start one claimed send (its slot was reserved when it was claimed)."""
        task = asyncio.create_task(self._send(message, payload, target), name=f"send-{message.id}")
        self._inflight[task] = target
        task.add_done_callback(self._send_done)

    async def _claim(self, limit: int) -> list[Message]:
        return (await self._claim_batch(limit))[0]

    async def _claim_batch(self, limit: int) -> tuple[list[Message], dict[int, dict[str, str]]]:
        """Claim up to `limit` due messages of any lane, with their pushes' data."""
        claims, data, _, _ = await self._claim_lanes([(None, None)], limit=limit)
        return claims[0][2], data

    async def _claim_lanes(
        self, lanes: list[tuple[Lane | None, Slot | None]], *, limit: int | None = None
    ) -> tuple[
        list[tuple[Lane | None, Slot | None, list[Message], bool]],
        dict[int, dict[str, str]],
        bool,
        str | None,
    ]:
        """Claim, in one transaction, what each lane's provider has free slots for (a lane
        going to no provider: up to a batch); with them, the data payload of the pushes'
        notifications (one query per claim). Returns per lane (lane, provider, claimed,
        whether it had fewer due than it asked for), that data, whether any lane ran dry,
        and then when the next queued message falls due after now."""
        step = self._jumps.check()
        if step < 0:
            await self._rebase_waits(step)
        now = self._clock.now()
        now_text = utc_iso(now)
        lease_until = utc_iso(now + timedelta(seconds=self._lease))
        batch = self._batch if limit is None else limit
        # Each provider's free slots are reserved now, before the claim reaches the database,
        # so a claim running beside this one cannot count them too; what is not found is given
        # back below.
        free: dict[int, int] = {}
        slots: dict[int, Slot] = {}
        for _, target in lanes:
            if target is not None and id(target) not in free:
                free[id(target)] = max(0, min(batch, self._free(target)))
                slots[id(target)] = target
                self._reserve(target, free[id(target)])
        asked = dict(free)

        def claim(conn):  # type: ignore[no-untyped-def]
            out = []
            ran_dry = False
            for lane, target in lanes:
                want = batch if target is None else min(batch, free[id(target)])
                if want <= 0:
                    continue  # a provider shared with a lane before this one is full now
                got = claim_due(conn, now_text, lease_until, want, lane)
                if target is not None:
                    free[id(target)] -= len(got)
                short = len(got) < want
                ran_dry = ran_dry or short
                out.append((lane, target, got, short))
            pushes = {
                m.notification_id
                for _, _, got, _ in out
                for m in got
                if m.channel == "push" and m.notification_id is not None
            }
            data = notification_data(conn, pushes) if pushes else {}
            due = next_due_at(conn, after=now_text) if ran_dry else None
            return out, data, ran_dry, due

        try:
            result = await self._db.write(claim)
        except BaseException:
            for key, count in asked.items():
                self._reserve(slots[key], -count)
            raise
        for key, count in asked.items():
            got = sum(len(c) for _, t, c, _ in result[0] if t is not None and id(t) == key)
            self._reserve(slots[key], got - count)
        return result

    async def _rebase_waits(self, step: float) -> None:
        """Queued messages put back before the clock stepped back wait from now what they
        were told to wait, not that plus the step."""
        now = utc_iso(self._clock.now())
        moved = await self._db.write(lambda conn: rebase_future_waits(conn, now))
        if moved:
            self._fresh = True
            self._next_due = None
            when = f"stepped {describe_step(step)}" if step < -1.0 else "was set back"
            log.warning(
                "outbox: the clock %s; %d waiting messages wait from now what they were told "
                "to wait, not that plus the step",
                when,
                moved,
            )

    def _idle_seconds(self) -> float:
        """Sleep until the next message is due, but at least look at leases now and then."""
        ceiling = self._lease / 2
        if self._next_due is None:
            return ceiling
        wait = (self._next_due - self._clock.now()).total_seconds()
        return min(ceiling, max(0.0, wait))

    async def _recover_expired(self) -> None:
        now = utc_iso(self._clock.now())
        count = await self._db.write(lambda conn: recover_sending(conn, now, expired_before=now))
        if count:
            self._fresh = True
            log.warning("outbox: %d sends outlived their lease; queued again", count)

    def _send_done(self, task: asyncio.Task[None]) -> None:
        target = self._inflight.pop(task, None)
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                log.error("outbox: a send task crashed", exc_info=task.exception())
            # No outcome: its slot is free now, for the claim loop to fill.
            if target is not None:
                self._reserve(target, -1)
            self._wake.set()

    # -- sending -------------------------------------------------------------------------

    async def _send(
        self, message: Message, data: Mapping[str, str] = NO_DATA, target: Slot | None = None
    ) -> None:
        started = self._clock.monotonic()
        outcome, opted_out = await self._attempt(message, data)
        if self._on_outcome is not None:
            kind = {Sent: "sent", Retry: "retry"}.get(type(outcome), "failed")
            seconds = self._clock.monotonic() - started
            try:
                self._on_outcome(outcome.provider or "none", message.channel, kind, seconds)
            except Exception:
                log.exception("outbox: the outcome observer failed")
        self._pending.append((outcome, message, opted_out))
        if target is not None:
            # Its slot is given back by the recorder once the outcome is on its way to the
            # database, so the row that takes the slot never commits `sending` before this one
            # leaves it.
            self._finished.append(target)
        self._flush.set()

    async def _attempt(
        self, message: Message, data: Mapping[str, str] = NO_DATA
    ) -> tuple[Outcome, bool]:
        now = self._clock.now()
        if _expired(message, now):
            return Failed(message.id, None, "expired before it could be sent"), False
        body = message.body
        if self._sealer is not None:
            try:
                body = self._sealer.open(body)
            except SealError as exc:
                return Failed(message.id, None, str(exc)), False
        outgoing = Outgoing(
            message_id=message.id,
            channel=message.channel,
            recipient=message.recipient,
            body=body,
            kind=message.kind,
            subject=message.subject,
            validity_seconds=_validity_left(message, now),
            encoding=message.encoding,
            segments=message.segments,
            data=data,
        )
        position = message.chain_position
        attempts_here = message.provider_attempts
        notes: list[str] = []
        restart_from_top = False
        while True:
            picked = self._router.pick(message.channel, position)
            if isinstance(picked, Unavailable) or (picked is None and restart_from_top):
                wait = picked.retry_in if isinstance(picked, Unavailable) else 0.0
                return self._rest(message, notes, wait), False
            if picked is None:
                reason = "; ".join(notes) or f"no {message.channel} provider is configured"
                return Failed(message.id, None, f"no provider could send it: {reason}"), False
            index, slot = picked
            if index != position:
                position, attempts_here = index, 0
            try:
                result = await self._call(slot, outgoing)
            except NotForThisProvider as exc:
                slot.breaker.release_probe()
                notes.append(f"{slot.name}: {exc}")
                position, attempts_here = position + 1, 0
                continue
            except RecipientError as exc:
                slot.breaker.release_probe()
                return Failed(message.id, slot.name, f"{slot.name}: {exc}", exc.code), exc.opted_out
            except ProviderDown as exc:
                slot.breaker.record_down(str(exc))
                notes.append(f"{slot.name} down: {exc}")
                position, attempts_here = position + 1, 0
                # When the rest of the chain cannot take it, wait for a provider to come back
                # rather than fail: an unplugged modem or a fixed password brings it back.
                restart_from_top = True
                continue
            except (TransientError, TimeoutError, ProviderError) as exc:
                slot.breaker.release_probe()
                return self._after_transient(message, slot, position, attempts_here + 1, exc), False
            except Exception as exc:
                # A bug in a provider must not lose the message: log it, retry it like a hiccup.
                log.exception("outbox: provider %s raised unexpectedly", slot.name)
                slot.breaker.release_probe()
                return self._after_transient(message, slot, position, attempts_here + 1, exc), False
            slot.breaker.record_success()
            detail = "; ".join([*notes, result.detail]) if notes else result.detail
            return (
                Sent(
                    message.id,
                    slot.name,
                    result.provider_message_id,
                    segments=result.segments,
                    delivered=result.delivered,
                    detail=detail,
                    parts=result.parts,
                ),
                False,
            )

    async def _call(self, slot: Slot, outgoing: Outgoing):  # type: ignore[no-untyped-def]
        async with slot.in_flight:
            await slot.bucket.acquire()
            return await asyncio.wait_for(
                slot.provider.send(outgoing), timeout=self._lease * SEND_GUARD_SHARE
            )

    def _after_transient(
        self, message: Message, slot: Slot, position: int, attempts_here: int, exc: BaseException
    ) -> Outcome:
        error = f"{slot.name}: {_describe(exc)}"
        code = getattr(exc, "code", None)
        if message.attempts >= MAX_TOTAL_ATTEMPTS:
            return Failed(
                message.id, slot.name, f"gave up after {message.attempts} tries; {error}", code
            )
        now = self._clock.now()
        if not self._policy.exhausted(attempts_here):
            retry_after = getattr(exc, "retry_after", None)
            delay = self._policy.delay(attempts_here, retry_after=retry_after, rng=self._rng)
            due = utc_iso(now + timedelta(seconds=delay))
            return Retry(message.id, slot.name, error, code, due, position, attempts_here)
        if self._router.has(message.channel, position + 1):
            return Retry(
                message.id,
                slot.name,
                f"{error}; {attempts_here} tries, failing over",
                code,
                utc_iso(now),
                position + 1,
                0,
            )
        return Failed(message.id, slot.name, f"every provider failed; last {error}", code)

    def _rest(self, message: Message, notes: list[str], wait: float) -> Outcome:
        reason = "; ".join(notes) or "every provider is resting after an outage"
        if message.attempts >= MAX_TOTAL_ATTEMPTS:
            return Failed(message.id, None, f"gave up after {message.attempts} tries; {reason}")
        due = utc_iso(self._clock.now() + timedelta(seconds=max(wait, 1.0)))
        return Retry(message.id, None, f"waiting for a provider: {reason}", None, due, 0, 0)

    # -- recording -----------------------------------------------------------------------

    async def _record_loop(self) -> None:
        while True:
            await self._flush.wait()
            self._flush.clear()
            batch, self._pending = self._pending, []
            freed, self._finished = self._finished, []
            if batch and not self._stopping:
                # The finished sends' slots are claimed for beside their outcomes, in the same
                # trip to the database thread (one group commit), not in one trip each.
                await asyncio.gather(self._write(batch), self._refill(freed))
            elif batch:
                self._release(freed)
                await self._write(batch)
            if self._stopping and not self._inflight and not self._pending:
                return

    def _release(self, freed: list[Slot]) -> None:
        for slot in freed:
            self._reserve(slot, -1)

    async def _refill(self, freed: list[Slot]) -> None:
        # Runs after _write has handed its outcomes to the database thread (gather starts
        # them in order, and the thread works in order).
        self._release(freed)
        try:
            if await self._claim_pass():
                self._wake.set()  # a lane got all it asked for: the claim loop looks again
        except Exception:
            log.exception("outbox: claiming messages failed; trying again shortly")
            self._wake.set()

    async def _write(self, batch: list[tuple[Outcome, Message, bool]]) -> None:
        now = utc_iso(self._clock.now())
        outcomes = [outcome for outcome, _, _ in batch]
        for attempt in range(1, 6):
            try:
                await self._db.write(lambda conn: record_outcomes(conn, outcomes, now))
                break
            except Exception:
                # The provider already has these: keep trying to write them down.
                log.exception("outbox: writing %d outcomes failed (try %d)", len(batch), attempt)
                await asyncio.sleep(0.2 * attempt)
        else:
            log.error(
                "outbox: %d outcomes could not be written; those messages will be sent again "
                "after a restart",
                len(batch),
            )
            return
        self.sent_count += sum(1 for outcome in outcomes if isinstance(outcome, Sent))
        if any(isinstance(outcome, Retry) for outcome in outcomes):
            # Queued again: due now (failing over) or sooner than the loop's current sleep.
            self._fresh = True
            self._wake.set()
        for outcome, message, opted_out in batch:
            if opted_out and self._on_opt_out is not None:
                reason = f"{outcome.provider}: the recipient has unsubscribed (replied STOP)"
                if message.channel == "push" and isinstance(outcome, Failed):
                    # A dead push token: the provider's own words say why (UNREGISTERED, ...).
                    reason = outcome.error
                try:
                    await self._on_opt_out(message.channel, message.recipient, reason)
                except Exception:
                    log.exception("outbox: recording an opt-out failed")


def _expired(message: Message, now: datetime) -> bool:
    if message.validity_seconds is None:
        return False
    return now > message.created_at + timedelta(seconds=message.validity_seconds)


def _validity_left(message: Message, now: datetime) -> int | None:
    if message.validity_seconds is None:
        return None
    left = message.created_at + timedelta(seconds=message.validity_seconds) - now
    # Never more than its whole validity, even after the clock stepped back.
    return max(1, min(message.validity_seconds, int(left.total_seconds())))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc)
    return text if isinstance(exc, ProviderError) and text else f"{type(exc).__name__}: {text}"
