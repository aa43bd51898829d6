"""Password hashing with argon2id (argon2-cffi's PasswordHasher, OWASP's parameters).

argon2 is meant to be slow (about 30 ms a check here, more on a Raspberry Pi), so it never runs
on the event loop: `HashPool` runs it in two worker threads (argon2-cffi releases the GIL
while it hashes), parks a bounded number of callers in turn and refuses the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from argon2 import PasswordHasher

T = TypeVar("T")

MIN_LENGTH = 8
MAX_LENGTH = 128
# OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane) rather than argon2-cffi's
# default (64 MiB, 3 passes, 4 lanes): each login briefly takes this much memory, and the
# daemon shares a small Raspberry Pi. Hashes made with other parameters still verify and are
# rehashed at the next login (needs_rehash).
MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1

# Two hashes at once: a 2-core machine keeps the other core for the event loop (and the
# threads are niced below it). Each hash holds MEMORY_KIB while it runs, so a login flood
# costs about 2 x 19 MiB of RSS over idle (bench/login_load.py prints it).
HASH_THREADS = 2
# Logins parked for a thread, beyond the running ones. A parked login is a waiting coroutine
# that costs no CPU, and the threads' own queue never holds more than HASH_THREADS jobs, so
# the work is bounded whatever the callers do. Parking rather than refusing at once matters:
# a client refused with 503 tries again at once (the seeds' clients ignore Retry-After), and
# thirty of them doing that keep the event loop busier answering refusals than checking
# passwords. 64 at ~30 ms, two at a time, is a second of wait here, a few on a Raspberry Pi.
HASH_WAITING = 64
# A password check not done this long after it was asked for (parked time included) is
# given up with PasswordsBusy: the machine is overloaded, say so rather than hang.
HASH_TIMEOUT = 5.0
# The hashing threads run at a lower CPU priority than the event loop (Linux nice values are
# per thread), so under load the kernel lets the loop answer /api/health and sends first.
HASH_NICE = 10


class PasswordsBusy(Exception):
    """Too much password hashing is already under way, or it took too long: try again soon."""


class HashPool:
    """Runs argon2 off the event loop: `threads` at once, at most `waiting` more parked.

    Past `waiting` a caller is refused at once; a parked one waits its turn (asyncio's
    Semaphore wakes waiters first come, first served) until the timeout. A slot is held until
    its thread has finished the job, not merely until its caller stopped waiting: a timed-out
    hash still occupies its thread, so new work cannot pile up behind it.
    """

    def __init__(
        self,
        *,
        threads: int = HASH_THREADS,
        waiting: int = HASH_WAITING,
        timeout: float = HASH_TIMEOUT,
        nice: int = HASH_NICE,
    ) -> None:
        self._threads = threads
        self._max_waiting = waiting
        self._timeout = timeout
        self._nice = nice
        self._slots = asyncio.Semaphore(threads)
        self._running = 0
        self._parked = 0
        # Made at the first hash, like the hasher: a shop that never logs in keeps no threads.
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> int:
        """Jobs holding a thread now (a timed-out one included, until it ends)."""
        return self._running

    @property
    def parked(self) -> int:
        return self._parked

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in a hashing thread; PasswordsBusy when full or past the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        await self._acquire(deadline)
        self._running += 1
        try:
            job = loop.run_in_executor(self._executor_now(), fn, *args)
        except BaseException:
            self._finished(None)
            raise
        job.add_done_callback(self._finished)
        try:
            async with asyncio.timeout_at(deadline):
                # shield: giving up must not cancel the job, whose end frees the slot.
                return await asyncio.shield(job)
        except TimeoutError:
            raise PasswordsBusy(f"a password check took over {self._timeout:g} s") from None

    async def _acquire(self, deadline: float) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: returns without waiting
            return
        if self._parked >= self._max_waiting:
            raise PasswordsBusy(f"{self._parked} password checks already waiting")
        self._parked += 1
        try:
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        except TimeoutError:
            raise PasswordsBusy(f"no hashing thread free within {self._timeout:g} s") from None
        finally:
            self._parked -= 1

    def _finished(self, job: asyncio.Future[object] | None) -> None:
        self._running -= 1
        self._slots.release()
        if job is not None and not job.cancelled():
            # Retrieved, so a job whose caller gave up does not log "never retrieved".
            job.exception()

    def _executor_now(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self._threads,
                thread_name_prefix="shopbell-argon2",
                initializer=self._lower_priority,
            )
        return self._executor

    def _lower_priority(self) -> None:
        # Linux applies setpriority to one thread when given its thread id; elsewhere it
        # would renice the whole process, so it is skipped.
        if self._nice and sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)


class Passwords:
    """Hashes and checks passwords; tests pass a cheaper PasswordHasher."""

    def __init__(self, hasher: PasswordHasher | None = None, pool: HashPool | None = None) -> None:
        self._given = hasher
        self.pool = pool or HashPool()
        # Checked against when the login names nobody, so an unknown user costs the same
        # time as a wrong password and timing does not tell which it was. Made at the first
        # such login, not at startup.
        self._dummy: str | None = None

    @property
    def _hasher(self) -> PasswordHasher:
        # Read from the hashing threads: two first calls at once may both build one, which
        # is harmless (the same parameters; PasswordHasher keeps no other state).
        # Made (and argon2-cffi imported) at the first password, not at startup:
        # many shops never log in to the back office.
        if self._given is None:
            from argon2 import PasswordHasher

            self._given = PasswordHasher(
                time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM
            )
        return self._given

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        hasher = self._hasher
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        try:
            return hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def burn(self, password: str) -> None:
        """Spend the time of one verify, for a login that names no account."""
        if self._dummy is None:
            self._dummy = self._hasher.hash("shopbell-no-such-user")
        self.verify(self._dummy, password)

    # The same, off the event loop: what the daemon's coroutines call.

    async def hash_off_loop(self, password: str) -> str:
        return await self.pool.run(self.hash, password)

    async def verify_off_loop(self, password_hash: str, password: str) -> bool:
        return await self.pool.run(self.verify, password_hash, password)

    async def burn_off_loop(self, password: str) -> None:
        await self.pool.run(self.burn, password)


def check_password(password: str) -> str | None:
    """Why `password` is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    return None
