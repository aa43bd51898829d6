"""The one thread that owns the SQLite connection; coroutines await the work they hand it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import sqlite_utils

from storage import migrations
from storage.connection import DEFAULT_BUSY_TIMEOUT_MS, open_for_writing, storage_error
from storage.errors import DatabaseGoneError, DiskFullError, StorageError

logger = logging.getLogger(__name__)

T = TypeVar("T")

THREAD_NAME = "shopbell-db"
DEFAULT_JOIN_TIMEOUT = 5.0
# The most queued write() calls that share one transaction (and so one fsync'd commit).
MAX_WRITE_GROUP = 64
# Each write() in a shared transaction runs inside this savepoint, so it can be undone alone.
_SAVEPOINT = "shopbell_write"


@dataclass(slots=True)
class _Job:
    fn: Callable[[sqlite_utils.Database], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    transaction: bool


_STOP: Final = object()


class Database:
    """The shopbell database, served by one thread (datasette's pattern).

    Every call is queued to the thread that owns the connection and runs there in order, so
    there is exactly one writer and the event loop never waits on the disk. Functions passed
    to `execute` and `write` run in that thread: they must return plain values (lists,
    records), not lazy query generators, which would touch the connection from outside it.
    Work, once queued, runs even if its awaiter is cancelled.

    Group commit: writes that are queued together (up to MAX_WRITE_GROUP, stopping at the
    first read) share one transaction and so one fsync'd COMMIT, each inside its own
    savepoint, so each is still all or nothing on its own. Nobody hears back before that
    COMMIT has returned.
    """

    def __init__(self, path: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._queue: queue.SimpleQueue[_Job | object] | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._accepting = False
        self._close_requested = False
        # Set by the database thread when the file it writes was deleted, moved or replaced.
        self._gone: DatabaseGoneError | None = None
        # The last write refused for want of space, until a write succeeds again.
        self._full: DiskFullError | None = None
        # Called once on the event loop when the file is found gone: the daemon then tells
        # the owner by the ways that need no database.
        self.on_gone: Callable[[DatabaseGoneError], None] | None = None
        # Called on the event loop when a write first finds the disk full (again).
        self.on_full: Callable[[DiskFullError], None] | None = None

    def __repr__(self) -> str:
        return f"<Database {self.path} {'open' if self.is_open else 'closed'}>"

    @property
    def is_open(self) -> bool:
        """True between a successful open() and the start of close()."""
        return self._accepting and self._thread is not None and self._thread.is_alive()

    async def open(self, *, migrate: bool = True) -> list[str]:
        """Start the thread, open (creating it if missing) and check the file, apply migrations.

        Returns the names of the migrations applied.
        Raises a StorageError subclass, with the thread stopped, when the file cannot be used.
        """
        if self._thread is not None:
            raise RuntimeError(f"{self!r} is open or still closing; close() it first")
        self._close_requested = False
        loop = asyncio.get_running_loop()
        jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        opened: asyncio.Future[list[str]] = loop.create_future()
        stopped: asyncio.Future[None] = loop.create_future()
        thread = threading.Thread(
            target=self._serve,
            args=(jobs, loop, opened, stopped, migrate),
            name=THREAD_NAME,
            # A daemon thread: a process that exits without close() must not hang on it;
            # SQLite rolls back whatever was unfinished when the file is next opened.
            daemon=True,
        )
        self._queue, self._thread, self._stopped = jobs, thread, stopped
        thread.start()
        try:
            applied = await opened
        except BaseException:
            # Failed or cancelled: the thread stops by itself after a failure; a cancelled
            # open may still succeed in the thread, so it is asked to stop as well.
            jobs.put(_STOP)
            await self._wait_stopped(DEFAULT_JOIN_TIMEOUT)
            self._queue = self._thread = self._stopped = None
            raise
        if self._close_requested:
            # close() ran while we waited and has stopped (or is stopping) the thread.
            raise StorageError(f"database closed while opening ({self.path})", path=self.path)
        self._accepting = True
        if applied:
            logger.info("database %s: applied migrations %s", self.path, ", ".join(applied))
        return applied

    async def execute(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` in the owner thread and return its result; its exceptions reach us."""
        return await self._submit(fn, transaction=False)

    async def write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` in the owner thread inside one transaction: all of it or none of it.

        Raises DiskFullError when there is no room for it (nothing of it is kept).
        """
        try:
            result = await self._submit(fn, transaction=True)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                raise
            first = self._full is None
            self._full = DiskFullError(self.path)
            if first:
                logger.error("database: %s", self._full)
                if self.on_full is not None:
                    self.on_full(self._full)
            raise self._full from exc
        if self._full is not None:
            logger.info("database %s: there is room again; writing as before", self.path)
            self._full = None
        return result

    @property
    def disk_full(self) -> DiskFullError | None:
        """Why the last write was refused, while the disk stays full (None once one works)."""
        return self._full

    @property
    def gone(self) -> DatabaseGoneError | None:
        """Why nothing more is written, once the file was deleted, moved or replaced."""
        return self._gone

    async def ping(self) -> bool:
        """True when a trivial query succeeds; False, never an exception, when it cannot."""
        if not self.is_open or self._gone is not None:
            return False
        try:
            return await self.execute(_ping)
        except Exception:
            # Debug only: the health check that pings reports outages, once each.
            logger.debug("database %s: ping failed", self.path, exc_info=True)
            return False

    # The interface takes a timeout because shutdown stages have named budgets (STYLE.md).
    async def close(self, timeout: float = DEFAULT_JOIN_TIMEOUT) -> None:  # noqa: ASYNC109
        """Finish queued work, checkpoint the WAL, close the connection and end the thread.

        Safe to call more than once. If the thread does not finish within `timeout` seconds
        (a long write still running), this logs a warning and returns: committed work is safe,
        and the running transaction either finishes or is rolled back by SQLite at next open.
        """
        self._accepting = False
        self._close_requested = True
        if self._queue is None or self._thread is None:
            return
        if self._thread.is_alive():
            self._queue.put(_STOP)
        if await self._wait_stopped(timeout):
            self._queue = self._thread = self._stopped = None
        else:
            logger.warning(
                "database %s: the database thread did not stop within %.1f s", self.path, timeout
            )

    def _submit(
        self, fn: Callable[[sqlite_utils.Database], T], *, transaction: bool
    ) -> asyncio.Future[T]:
        if not self.is_open or self._queue is None:
            state = "is closed" if self._thread is None else "is closing"
            raise StorageError(f"database {state} ({self.path})", path=self.path)
        if transaction and self._gone is not None:
            raise self._gone
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        # An unbounded queue: put() never blocks the event loop.
        self._queue.put(_Job(fn, future, loop, transaction))
        return future

    async def _wait_stopped(self, seconds: float) -> bool:
        """Wait, without blocking the loop, until the thread has closed the connection."""
        stopped, thread = self._stopped, self._thread
        if stopped is None or thread is None:
            return True
        try:
            # shield: a timeout here must not cancel the future the thread will resolve.
            await asyncio.wait_for(asyncio.shield(stopped), seconds)
        except TimeoutError:
            return False
        # The thread resolves `stopped` as its very last act, so this join is immediate; it
        # still goes to a worker thread because join() blocks.
        await asyncio.to_thread(thread.join, seconds)
        return not thread.is_alive()

    # Everything below runs in the owner thread.

    def _file_gone(self, watch: _FileWatch, loop: asyncio.AbstractEventLoop) -> StorageError | None:
        if self._gone is None:
            try:
                how = watch.changed()
            except OSError as exc:
                how = f"cannot be checked ({exc.strerror})"
            if how is None:
                return None
            self._gone = DatabaseGoneError(self.path, how)
            logger.error("database: %s", self._gone)
            if self.on_gone is not None:
                # A closed loop (RuntimeError): the daemon is stopping anyway.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self.on_gone, self._gone)
        return self._gone

    def _serve(
        self,
        jobs: queue.SimpleQueue[_Job | object],
        loop: asyncio.AbstractEventLoop,
        opened: asyncio.Future[list[str]],
        stopped: asyncio.Future[None],
        migrate: bool,
    ) -> None:
        db: sqlite_utils.Database | None = None
        try:
            try:
                db = open_for_writing(self.path, busy_timeout_ms=self._busy_timeout_ms)
                applied = migrations.apply(db) if migrate else []
                watch = _FileWatch(self.path)
            except BaseException as exc:
                error = storage_error(self.path, exc)
                if error is not exc:
                    error.__cause__ = exc
                _resolve(loop, opened, error=error)
                return
            _resolve(loop, opened, result=applied)
            try:
                _serve_jobs(db, jobs, lambda: self._file_gone(watch, loop))
            finally:
                watch.close()
            if self._gone is None:
                _checkpoint(db, self.path)
        finally:
            if db is not None:
                db.close()
            _resolve(loop, stopped, result=None)


class _FileWatch:
    """The database file as opened, to notice it deleted, moved or replaced under us.

    SQLite keeps writing into a file it has open even after the path is gone; only comparing
    the open file (its link count, its inode) with what the path now names shows it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        opened = os.fstat(self._fd)
        self._identity = (opened.st_dev, opened.st_ino)

    def changed(self) -> str | None:
        """None while the path still names the open file; else what happened, in words."""
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return "was deleted" if os.fstat(self._fd).st_nlink == 0 else "was moved away"
        if (now.st_dev, now.st_ino) != self._identity:
            return "was replaced by another file"
        return None

    def close(self) -> None:
        os.close(self._fd)


def _serve_jobs(
    db: sqlite_utils.Database,
    jobs: queue.SimpleQueue[_Job | object],
    gone: Callable[[], StorageError | None],
) -> None:
    """Run queued jobs in queue order until _STOP; writes queued together commit together.

    Before each group of writes, `gone()` says whether the file is still there; when it is
    not, the writes fail with its error and are never acknowledged.
    """
    item = jobs.get()
    while item is not _STOP:
        job = cast(_Job, item)
        if not job.transaction:
            _run(db, job)
            item = jobs.get()
            continue
        group = [job]
        following: object = None
        while len(group) < MAX_WRITE_GROUP:
            try:
                following = jobs.get_nowait()
            except queue.Empty:
                following = None
                break
            if following is _STOP or not cast(_Job, following).transaction:
                # A read (or the stop) ends the group: it runs after the group's COMMIT, so a
                # read queued after a write sees it.
                break
            group.append(cast(_Job, following))
            following = None
        error = gone()
        if error is None:
            _run_writes(db, group)
        else:
            for waiting in group:
                _resolve(waiting.loop, waiting.future, error=error)
        item = following if following is not None else jobs.get()


def _run_writes(db: sqlite_utils.Database, group: list[_Job]) -> None:
    if len(group) == 1:
        # Alone in the queue: no savepoint needed, and a lone write costs what it always has.
        _run(db, group[0])
        return
    while group:
        group = _write_group(db, group)


class _TransactionLost(Exception):
    """SQLite ended the shared transaction itself while a job was failing."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _write_group(db: sqlite_utils.Database, group: list[_Job]) -> list[_Job]:
    """Run `group` in one transaction, a savepoint each, and settle every job that ran.

    Futures are resolved only after the COMMIT: results for the jobs that succeeded, their own
    exceptions for the jobs that failed (whose changes were rolled back to their savepoint).
    If the transaction as a whole fails (BEGIN, COMMIT, a savepoint, or SQLite rolling it back
    on an error such as a full disk), the jobs that succeeded get that error instead, as none of
    their changes were kept. Returns the jobs that did not run, for another transaction.
    """
    conn = db.conn
    outcomes: list[tuple[_Job, Any, BaseException | None]] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for job in group:
            conn.execute(f"SAVEPOINT {_SAVEPOINT}")
            try:
                result = _materialized(job.fn(db))
            except BaseException as exc:
                outcomes.append((job, None, exc))
                if not conn.in_transaction:
                    # A RAISE(ROLLBACK) trigger, a full disk, an I/O error: the transaction
                    # is gone, and the jobs before this one went with it.
                    raise _TransactionLost(exc) from exc
                conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
                conn.execute(f"RELEASE {_SAVEPOINT}")
            else:
                outcomes.append((job, result, None))
                if not conn.in_transaction:
                    raise RuntimeError(
                        "a function passed to Database.write() ended the transaction itself "
                        "(COMMIT or ROLLBACK); write() commits, and an exception rolls back"
                    )
                conn.execute(f"RELEASE {_SAVEPOINT}")
        conn.execute("COMMIT")
    except BaseException as exc:
        failure = exc.error if isinstance(exc, _TransactionLost) else exc
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except Exception:
                logger.warning("database: rollback of a failed write group failed", exc_info=True)
        if not outcomes:
            # Nothing ran (BEGIN failed, say): trying the same jobs again could fail forever.
            outcomes = [(job, None, None) for job in group]
        for job, _, error in outcomes:
            _resolve(job.loop, job.future, error=error if error is not None else failure)
        return group[len(outcomes) :]
    for job, result, error in outcomes:
        if error is None:
            _resolve(job.loop, job.future, result=result)
        else:
            _resolve(job.loop, job.future, error=error)
    return []


def _run(db: sqlite_utils.Database, job: _Job) -> None:
    try:
        if job.transaction:
            result = _in_transaction(db, job.fn)
        else:
            result = _outside_transaction(db, job.fn)
    except BaseException as exc:
        _resolve(job.loop, job.future, error=exc)
    else:
        _resolve(job.loop, job.future, result=result)


def _outside_transaction(db: sqlite_utils.Database, fn: Callable[[sqlite_utils.Database], T]) -> T:
    try:
        result = _materialized(fn(db))
    finally:
        # Left open, a transaction would swallow every later write until a crash threw them
        # away, and the next write() could not begin; so it goes, whether or not fn raised.
        left_open = db.conn.in_transaction
        if left_open:
            db.conn.rollback()
    if left_open:
        raise RuntimeError(
            "a function passed to Database.execute() left a transaction open; "
            "it was rolled back. Use Database.write() for writes."
        )
    return result


def _in_transaction(db: sqlite_utils.Database, fn: Callable[[sqlite_utils.Database], T]) -> T:
    conn = db.conn
    # IMMEDIATE takes the write lock now, under busy_timeout, so a transaction that reads
    # first cannot fail later with SQLITE_BUSY when another process (`db migrate`) wrote.
    # Inside, sqlite-utils' own atomic() blocks become savepoints of this transaction.
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = _materialized(fn(db))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _materialized(result: T) -> T:
    # A generator (db.query(), table.rows_where()) would read the connection later, from the
    # event loop's thread, where sqlite3 refuses it; say so here, where the mistake is.
    if isinstance(result, Generator):
        result.close()
        raise TypeError(
            "a database function returned a generator; return list(...) of it instead, "
            "so the rows are read in the database thread"
        )
    return result


def _checkpoint(db: sqlite_utils.Database, path: Path) -> None:
    try:
        # SQLite's advice for long-lived connections: let it refresh the planner's statistics
        # (ANALYZE where they are stale) before closing.
        db.execute("PRAGMA optimize")
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except Exception:
        logger.warning("database %s: checkpoint at close failed", path, exc_info=True)
        return
    if busy:
        # Another connection (a backup, say) is reading; the WAL is folded in later.
        logger.info("database %s: WAL not truncated at close, another reader is active", path)


def _ping(db: sqlite_utils.Database) -> bool:
    # sqlite_master rather than SELECT 1: this one reads the file.
    return db.execute("SELECT count(*) FROM sqlite_master").fetchone() is not None


def _resolve(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    *,
    result: Any = None,
    error: BaseException | None = None,
) -> None:
    try:
        loop.call_soon_threadsafe(_settle, future, result, error)
    except RuntimeError:
        # The loop is closed: nobody is waiting any more.
        if error is not None:
            logger.warning("database work failed after its event loop closed", exc_info=error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        # The awaiter was cancelled; the work still ran.
        if error is not None:
            logger.warning("database work failed after its caller stopped waiting", exc_info=error)
        return
    if error is None:
        future.set_result(result)
    elif isinstance(error, StopIteration):
        # Futures refuse StopIteration (it would end the awaiting coroutine silently).
        wrapped = RuntimeError(f"database function raised StopIteration: {error}")
        wrapped.__cause__ = error
        future.set_exception(wrapped)
    else:
        future.set_exception(error)
