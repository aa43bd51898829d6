"""The login lockout under concurrency: parallel guesses end exactly as sequential ones do.

A real AccountService on a real SQLite file. 64 wrong passwords sent at once must not get
more password checks than 64 sent one after the other: FREE_FAILURES are checked (and
counted), the rest are refused by the lock without hashing, and then the right password is
refused too until the lock ends. Before the fix every coroutine read failed_logins = 0, so
all 64 were checked and, each computing its lock from that stale 0, none locked.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from daemon.runtime.clock import ManualClock
from daemon.services.backoffice.accounts import (
    FREE_FAILURES,
    LOCK_BASE,
    AccountError,
    AccountService,
)
from daemon.services.backoffice.passwords import HashPool, Passwords, PasswordsBusy
from daemon.services.backoffice.roles import API_TOKEN_ACTOR
from daemon.services.backoffice.tokens import TokenIssuer
from storage import accounts as store
from storage.database import Database

PASSWORD = "correct horse battery"
WRONG = "wrong-password"
PARALLEL = 64


class CountingHasher(PasswordHasher):
    """argon2's cheapest parameters, counting the password checks that reach it."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verifies = 0
        # verify() runs in the hashing threads, two at once.
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.verifies += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def service(db: Database, clock: ManualClock, hasher: CountingHasher) -> AccountService:
    return AccountService(db, clock, Passwords(hasher), TokenIssuer(b"k" * 32, clock))


async def _attempts(service: AccountService, login: str, password: str) -> Counter[int]:
    """PARALLEL logins at once; the statuses they were refused with (200 for a success)."""

    async def one() -> int:
        try:
            await service.login(login, password)
        except AccountError as exc:
            return exc.status
        return 200

    return Counter(await asyncio.gather(*(one() for _ in range(PARALLEL))))


async def test_parallel_wrong_passwords_count_as_sequential_ones_and_lock(
    service: AccountService, db: Database, clock: ManualClock, hasher: CountingHasher
) -> None:
    account = await service.create(
        username="asha", password=PASSWORD, role="customer", by=API_TOKEN_ACTOR
    )
    statuses = await _attempts(service, "asha", WRONG)
    # Every one of the 64 was refused, and only the free ones were ever checked.
    assert statuses == {401: FREE_FAILURES, 429: PARALLEL - FREE_FAILURES}
    assert hasher.verifies == FREE_FAILURES
    stored = await db.execute(lambda conn: store.get_account(conn, account.id))
    assert stored is not None
    assert stored.failed_logins == FREE_FAILURES
    assert stored.locked_until == clock.now() + LOCK_BASE

    # The right password during the lock: the same throttled refusal, and no check.
    with pytest.raises(AccountError) as refused:
        await service.login("asha", PASSWORD)
    assert refused.value.status == 429
    assert refused.value.retry_after == int(LOCK_BASE.total_seconds())
    assert hasher.verifies == FREE_FAILURES

    clock.advance(LOCK_BASE.total_seconds() + 1)
    result = await service.login("asha", PASSWORD)
    assert result.account.failed_logins == 0
    assert result.account.locked_until is None


async def test_parallel_guesses_after_a_lock_add_one_check_and_double_it(
    service: AccountService, db: Database, clock: ManualClock, hasher: CountingHasher
) -> None:
    account = await service.create(
        username="asha", password=PASSWORD, role="customer", by=API_TOKEN_ACTOR
    )
    await _attempts(service, "asha", WRONG)
    clock.advance(LOCK_BASE.total_seconds() + 1)
    checked = hasher.verifies
    # Past the free failures each lock lets exactly one guess through, however many race.
    statuses = await _attempts(service, "asha", WRONG)
    assert statuses == {401: 1, 429: PARALLEL - 1}
    assert hasher.verifies == checked + 1
    stored = await db.execute(lambda conn: store.get_account(conn, account.id))
    assert stored is not None
    assert stored.failed_logins == FREE_FAILURES + 1
    assert stored.locked_until == clock.now() + 2 * LOCK_BASE


async def test_parallel_guesses_for_an_unknown_name_lock_it_alike(
    service: AccountService, clock: ManualClock, hasher: CountingHasher
) -> None:
    statuses = await _attempts(service, "ghost", WRONG)
    assert statuses == {401: FREE_FAILURES, 429: PARALLEL - FREE_FAILURES}
    # Each refused guess for nobody costs one hash, like a wrong password (no timing tell).
    assert hasher.verifies == FREE_FAILURES
    clock.advance(LOCK_BASE.total_seconds() + 1)
    again = await _attempts(service, "GHOST", WRONG)  # names are throttled case-insensitively
    assert again == {401: 1, 429: PARALLEL - 1}


async def test_a_right_password_that_is_refused_does_not_count(
    service: AccountService, db: Database, clock: ManualClock
) -> None:
    # A customer at the staff door: the password is right, so it is no guess at the lock.
    account = await service.create(
        username="asha", password=PASSWORD, role="customer", by=API_TOKEN_ACTOR
    )
    for _ in range(FREE_FAILURES - 1):
        with pytest.raises(AccountError):
            await service.login("asha", WRONG)
    refusals = await asyncio.gather(
        *(service.login("asha", PASSWORD, staff_only=True) for _ in range(8)),
        return_exceptions=True,
    )
    # Each try is counted before its check, so while the first is checked it holds the fifth
    # failure and the lock: the others are refused by it (429). Then it is handed back.
    assert all(isinstance(r, AccountError) and r.status in (401, 429) for r in refusals)
    stored = await db.execute(lambda conn: store.get_account(conn, account.id))
    assert stored is not None
    assert stored.failed_logins == FREE_FAILURES - 1
    assert stored.locked_until is None
    # The next wrong one is the fifth failure and locks.
    with pytest.raises(AccountError):
        await service.login("asha", WRONG)
    locked = await db.execute(lambda conn: store.get_account(conn, account.id))
    assert locked is not None
    assert locked.locked_until == clock.now() + timedelta(seconds=30)


# -- the hashing pool: bounded, timed, off the loop ---------------------------------------


async def test_the_pool_parks_then_refuses_and_frees_a_slot_only_when_work_ends() -> None:
    pool = HashPool(threads=1, waiting=1, timeout=0.3, nice=0)
    release = threading.Event()
    first = asyncio.ensure_future(pool.run(release.wait, 5.0))
    second = asyncio.ensure_future(pool.run(release.wait, 5.0))
    await asyncio.sleep(0.05)
    assert (pool.running, pool.parked) == (1, 1)
    # Past the parking places: refused at once, not queued.
    began = time.monotonic()
    with pytest.raises(PasswordsBusy, match="waiting"):
        await pool.run(release.wait, 5.0)
    assert time.monotonic() - began < 0.1
    # Both give up at the timeout: the first's job still holds the thread, the second never
    # got one.
    for job in (first, second):
        with pytest.raises(PasswordsBusy):
            await job
    assert (pool.running, pool.parked) == (1, 0)
    # Abandoned work still counts, so it cannot pile up: the next one waits, then gives up.
    with pytest.raises(PasswordsBusy, match="no hashing thread"):
        await pool.run(release.wait, 5.0)
    release.set()
    for _ in range(100):
        if pool.running == 0:
            break
        await asyncio.sleep(0.01)
    assert pool.running == 0
    assert await pool.run(lambda: 42) == 42


async def test_parked_callers_get_the_threads_in_turn() -> None:
    pool = HashPool(threads=2, waiting=32, timeout=5.0, nice=0)
    done: list[int] = []

    def work(i: int) -> int:
        time.sleep(0.005)
        return i

    async def one(i: int) -> None:
        done.append(await pool.run(work, i))

    await asyncio.gather(*(one(i) for i in range(30)))
    assert sorted(done) == list(range(30))
    assert (pool.running, pool.parked) == (0, 0)


async def test_the_loop_keeps_running_while_passwords_are_hashed() -> None:
    # Real argon2 parameters (about 30 ms a check): on the loop, 16 checks would stall it for
    # half a second; off it, a 5 ms ticker keeps ticking.
    passwords = Passwords()
    stored = await passwords.hash_off_loop(PASSWORD)
    ticks: list[float] = []
    loop = asyncio.get_running_loop()

    async def ticker() -> None:
        while True:
            ticks.append(loop.time())
            await asyncio.sleep(0.005)

    ticking = asyncio.ensure_future(ticker())
    try:
        checks = await asyncio.gather(
            *(passwords.verify_off_loop(stored, WRONG) for _ in range(16))
        )
    finally:
        ticking.cancel()
    assert checks == [False] * 16
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 5
    # Generous: a shared CI machine may pause us, but never for a hash's whole batch.
    assert max(gaps) < 0.2, gaps


async def test_a_busy_hasher_answers_503_and_counts_nothing(
    db: Database, clock: ManualClock, hasher: CountingHasher
) -> None:
    pool = HashPool(threads=1, waiting=0, timeout=5.0, nice=0)
    service = AccountService(db, clock, Passwords(hasher, pool), TokenIssuer(b"k" * 32, clock))
    account = await service.create(
        username="asha", password=PASSWORD, role="customer", by=API_TOKEN_ACTOR
    )
    release = threading.Event()
    blocker = asyncio.ensure_future(pool.run(release.wait, 5.0))
    await asyncio.sleep(0.01)
    try:
        for name in ("asha", "ghost"):
            with pytest.raises(AccountError) as busy:
                await service.login(name, WRONG)
            assert busy.value.status == 503
            assert busy.value.retry_after == 1
        with pytest.raises(AccountError) as busy:
            await service.create(username="zed", password=PASSWORD, role="customer", by=None)
        assert busy.value.status == 503
    finally:
        release.set()
        await blocker
    stored = await db.execute(lambda conn: store.get_account(conn, account.id))
    assert stored is not None
    # Refused before any check: not a guess, so neither name moved toward its lock.
    assert stored.failed_logins == 0
    for _ in range(FREE_FAILURES):
        with pytest.raises(AccountError) as wrong:
            await service.login("ghost", WRONG)
        assert wrong.value.status == 401
