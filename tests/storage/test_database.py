"""The database thread: opening, pragmas, transactions, errors, ordering, closing."""

# Between awaits these tests look at small temporary files; blocking for that is fine.
# ruff: noqa: ASYNC240

from __future__ import annotations

import asyncio
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlite_utils

from storage import migrations
from storage.database import MAX_WRITE_GROUP, THREAD_NAME, Database
from storage.errors import StorageError
from tests.storage import factories as f
from tests.storage.probes import db_threads, sidecar_files


class Boom(Exception):
    """A failure of the caller's own making."""


def _count(table: str) -> Callable[[sqlite_utils.Database], int]:
    def count(db: sqlite_utils.Database) -> int:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    return count


async def test_open_creates_a_private_file_and_applies_every_migration(db_path: Path) -> None:
    database = Database(db_path)
    applied = await database.open()
    try:
        assert applied == list(migrations.names())
        assert database.is_open
        assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
        tables = await database.execute(lambda db: set(db.table_names()))
        assert {"messages", "subscribers", "job_runs"} <= tables
    finally:
        await database.close()


async def test_the_journal_files_are_private_too(database: Database) -> None:
    await database.write(lambda db: f.insert(db, "job_runs", f.job_run()))
    wal = database.path.with_name(database.path.name + "-wal")
    assert wal.exists()
    assert stat.S_IMODE(wal.stat().st_mode) == 0o600


async def test_a_second_open_applies_nothing(db_path: Path) -> None:
    first = Database(db_path)
    await first.open()
    await first.close()
    second = Database(db_path)
    try:
        assert await second.open() == []
    finally:
        await second.close()


async def test_open_without_migrate_leaves_the_schema_alone(db_path: Path) -> None:
    database = Database(db_path)
    try:
        assert await database.open(migrate=False) == []
        assert await database.execute(lambda db: db.table_names()) == []
    finally:
        await database.close()


async def test_the_pragmas_are_set(db_path: Path) -> None:
    database = Database(db_path, busy_timeout_ms=1234)
    await database.open()
    try:

        def pragmas(db: sqlite_utils.Database) -> dict[str, object]:
            names = ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            return {name: db.execute(f"PRAGMA {name}").fetchone()[0] for name in names}

        assert await database.execute(pragmas) == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "synchronous": 2,  # FULL
            "busy_timeout": 1234,
        }
    finally:
        await database.close()


async def test_work_runs_in_the_named_owner_thread(database: Database) -> None:
    names = {await database.execute(lambda db: threading.current_thread().name) for _ in range(3)}
    assert names == {"shopbell-db"} == {THREAD_NAME}
    assert threading.current_thread().name != THREAD_NAME


async def test_waiting_does_not_block_the_event_loop(database: Database) -> None:
    # The work waits for a gate only the event loop can open: if awaiting blocked the loop,
    # the gate would stay shut and the work would report it timed out.
    gate = threading.Event()
    pending = asyncio.create_task(database.execute(lambda db: gate.wait(timeout=10)))
    await asyncio.sleep(0)
    gate.set()
    assert await pending is True


async def test_write_commits_for_other_connections_to_see(database: Database) -> None:
    def enqueue(db: sqlite_utils.Database) -> int:
        message_id = f.insert(db, "messages", f.message())
        f.insert(db, "message_events", f.message_event(message_id))
        return message_id

    message_id = await database.write(enqueue)
    other = sqlite3.connect(database.path)
    try:
        assert other.execute("SELECT id FROM messages").fetchall() == [(message_id,)]
        assert other.execute("SELECT count(*) FROM message_events").fetchone() == (1,)
    finally:
        other.close()


async def test_write_is_all_or_nothing(database: Database) -> None:
    error = Boom("the provider call failed halfway")

    def half_then_fail(db: sqlite_utils.Database) -> None:
        message_id = f.insert(db, "messages", f.message())
        f.insert(db, "message_events", f.message_event(message_id))
        raise error

    with pytest.raises(Boom) as caught:
        await database.write(half_then_fail)
    assert caught.value is error
    assert await database.execute(_count("messages")) == 0
    assert await database.execute(_count("message_events")) == 0


async def test_write_rolls_back_sqlite_utils_work_too(database: Database) -> None:
    def insert_then_fail(db: sqlite_utils.Database) -> None:
        db.table("job_runs").insert(f.job_run())  # sqlite-utils' own atomic() inside ours
        raise Boom

    with pytest.raises(Boom):
        await database.write(insert_then_fail)
    assert await database.execute(_count("job_runs")) == 0


async def test_sqlite_errors_reach_the_awaiter_unchanged(database: Database) -> None:
    await database.write(lambda db: f.insert(db, "messages", f.message(idempotency_key="k1")))
    with pytest.raises(sqlite3.IntegrityError, match="idempotency_key"):
        await database.write(lambda db: f.insert(db, "messages", f.message(idempotency_key="k1")))
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await database.execute(lambda db: db.execute("SELECT * FROM nowhere").fetchall())
    assert await database.execute(_count("messages")) == 1


async def test_the_thread_survives_errors(database: Database) -> None:
    for _ in range(3):
        with pytest.raises(Boom):
            await database.execute(_raise_boom)
    assert await database.ping()


async def test_an_execute_that_leaves_a_transaction_open_is_rolled_back(
    database: Database,
) -> None:
    def sneaky(db: sqlite_utils.Database) -> None:
        # The driver opens a transaction before an INSERT and nothing here commits it.
        db.conn.execute("INSERT INTO job_runs (job_id, started_at) VALUES ('x', ?)", [f.NOW])

    with pytest.raises(RuntimeError, match=r"Use Database\.write\(\)"):
        await database.execute(sneaky)
    assert await database.execute(_count("job_runs")) == 0
    await database.write(lambda db: f.insert(db, "job_runs", f.job_run()))
    assert await database.execute(_count("job_runs")) == 1


async def test_an_execute_that_fails_inside_a_transaction_is_rolled_back(
    database: Database,
) -> None:
    def insert_then_fail(db: sqlite_utils.Database) -> None:
        db.conn.execute("INSERT INTO job_runs (job_id, started_at) VALUES ('x', ?)", [f.NOW])
        raise Boom

    with pytest.raises(Boom):
        await database.execute(insert_then_fail)
    await database.write(lambda db: f.insert(db, "messages", f.message()))
    assert await database.execute(_count("job_runs")) == 0
    assert await database.execute(_count("messages")) == 1


async def test_returning_a_lazy_query_is_refused_and_not_committed(database: Database) -> None:
    def insert_and_query(db: sqlite_utils.Database) -> object:
        f.insert(db, "job_runs", f.job_run())
        return db.query("SELECT * FROM job_runs")

    with pytest.raises(TypeError, match=r"return list\(\.\.\.\)"):
        await database.write(insert_and_query)
    with pytest.raises(TypeError, match="generator"):
        await database.execute(lambda db: db.table("job_runs").rows_where())
    assert await database.execute(_count("job_runs")) == 0
    assert await database.execute(lambda db: list(db.query("SELECT 1 AS one"))) == [{"one": 1}]


async def test_concurrent_awaits_all_complete_one_at_a_time(database: Database) -> None:
    running = 0
    most_at_once = 0

    def bump(db: sqlite_utils.Database) -> int:
        nonlocal running, most_at_once
        running += 1
        most_at_once = max(most_at_once, running)
        # Read, pause, write: interleaved runs would lose updates.
        (count,) = db.execute("SELECT count(*) FROM job_runs").fetchone()
        time.sleep(0.0005)
        f.insert(db, "job_runs", f.job_run(detail=str(count)))
        running -= 1
        return int(count)

    seen = await asyncio.gather(*(database.write(bump) for _ in range(50)))
    assert sorted(seen) == list(range(50))
    assert most_at_once == 1
    assert await database.execute(_count("job_runs")) == 50


async def test_a_cancelled_awaiter_does_not_stop_the_work(database: Database) -> None:
    gate = threading.Event()

    def slow_write(db: sqlite_utils.Database) -> None:
        gate.wait(timeout=10)
        f.insert(db, "job_runs", f.job_run())

    task = asyncio.create_task(database.write(slow_write))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.set()
    assert await database.execute(_count("job_runs")) == 1


# Group commit: the tests below hold the database thread on a gate while they queue work, so
# the queue holds exactly what each test put there when the thread reaches it.


async def _hold(database: Database) -> tuple[threading.Event, asyncio.Task[bool]]:
    """Occupy the database thread until the returned gate is set."""
    gate = threading.Event()
    held = asyncio.create_task(database.execute(lambda db: gate.wait(timeout=10)))
    await asyncio.sleep(0)
    return gate, held


async def _trace(database: Database) -> list[str]:
    """Every statement the database thread runs from now on, in order."""
    statements: list[str] = []
    await database.execute(lambda db: db.conn.set_trace_callback(statements.append))
    return statements


def _commits(statements: list[str]) -> int:
    return sum(1 for sql in statements if sql.strip().upper() == "COMMIT")


def _insert_run(detail: str, *, fail: BaseException | None = None) -> Callable[..., int]:
    def insert(db: sqlite_utils.Database) -> int:
        row_id = f.insert(db, "job_runs", f.job_run(detail=detail))
        if fail is not None:
            raise fail
        return row_id

    return insert


def _details(db: sqlite_utils.Database) -> list[str]:
    return [row[0] for row in db.execute("SELECT detail FROM job_runs ORDER BY id").fetchall()]


async def test_queued_writes_share_one_commit_and_each_gets_its_own_result(
    database: Database,
) -> None:
    statements = await _trace(database)
    gate, held = await _hold(database)
    writes = [asyncio.create_task(database.write(_insert_run(f"w{i}"))) for i in range(20)]
    await asyncio.sleep(0)  # every write is queued behind the gate
    gate.set()
    assert await held is True
    assert await asyncio.gather(*writes) == list(range(1, 21))
    assert _commits(statements) == 1
    assert statements.count("BEGIN IMMEDIATE") == 1
    other = sqlite3.connect(database.path)
    try:
        details = [row[0] for row in other.execute("SELECT detail FROM job_runs ORDER BY id")]
        assert details == [f"w{i}" for i in range(20)]
    finally:
        other.close()


async def test_a_lone_write_takes_no_savepoint(database: Database) -> None:
    statements = await _trace(database)
    await database.write(_insert_run("alone"))
    assert len(statements) == 3
    assert statements[0] == "BEGIN IMMEDIATE"
    assert statements[1].startswith("INSERT INTO job_runs")
    assert statements[2] == "COMMIT"


async def test_a_write_group_is_capped(database: Database) -> None:
    statements = await _trace(database)
    gate, held = await _hold(database)
    count = 2 * MAX_WRITE_GROUP + 5
    writes = [asyncio.create_task(database.write(_insert_run(str(i)))) for i in range(count)]
    await asyncio.sleep(0)
    gate.set()
    await held
    assert await asyncio.gather(*writes) == list(range(1, count + 1))
    assert _commits(statements) == 3
    assert await database.execute(_count("job_runs")) == count


async def test_a_failing_write_in_a_group_loses_exactly_its_own_changes(
    database: Database,
) -> None:
    error = Boom("this one fails halfway")

    def half_then_fail(db: sqlite_utils.Database) -> None:
        message_id = f.insert(db, "messages", f.message(body="half"))
        f.insert(db, "message_events", f.message_event(message_id))
        f.insert(db, "job_runs", f.job_run(detail="half"))
        raise error

    def sqlite_utils_then_fail(db: sqlite_utils.Database) -> None:
        db.table("job_runs").insert(f.job_run(detail="atomic"))  # its savepoint inside ours
        raise Boom

    def returns_a_generator(db: sqlite_utils.Database) -> object:
        f.insert(db, "job_runs", f.job_run(detail="lazy"))
        return db.query("SELECT * FROM job_runs")

    statements = await _trace(database)
    gate, held = await _hold(database)
    calls: list[Callable[[sqlite_utils.Database], object]] = [
        _insert_run("a"),
        half_then_fail,
        _insert_run("b"),
        sqlite_utils_then_fail,
        _insert_run("c"),
        returns_a_generator,
        _insert_run("d", fail=Boom("after its insert")),
        _insert_run("e"),
    ]
    writes = [asyncio.create_task(database.write(call)) for call in calls]
    await asyncio.sleep(0)
    gate.set()
    await held
    outcomes = await asyncio.gather(*writes, return_exceptions=True)
    assert outcomes[1] is error
    assert isinstance(outcomes[3], Boom)
    assert isinstance(outcomes[5], TypeError)
    assert isinstance(outcomes[6], Boom)
    assert str(outcomes[6]) == "after its insert"
    assert _commits(statements) == 1
    assert await database.execute(_details) == ["a", "b", "c", "e"]
    assert [outcomes[i] for i in (0, 2, 4, 7)] == [1, 2, 3, 4]  # the rolled-back ids reused
    assert await database.execute(_count("messages")) == 0
    assert await database.execute(_count("message_events")) == 0


async def test_a_read_queued_after_writes_sees_them_and_ends_the_group(
    database: Database,
) -> None:
    statements = await _trace(database)
    gate, held = await _hold(database)
    first = [asyncio.create_task(database.write(_insert_run(f"1.{i}"))) for i in range(5)]
    read_first = asyncio.create_task(database.execute(_count("job_runs")))
    second = [asyncio.create_task(database.write(_insert_run(f"2.{i}"))) for i in range(5)]
    read_second = asyncio.create_task(database.execute(_details))
    await asyncio.sleep(0)
    gate.set()
    await held
    assert await read_first == 5
    assert await read_second == [f"1.{i}" for i in range(5)] + [f"2.{i}" for i in range(5)]
    await asyncio.gather(*first, *second)
    assert _commits(statements) == 2


async def test_when_the_group_commit_fails_nobody_is_told_written(database: Database) -> None:
    def dangling_event(db: sqlite_utils.Database) -> None:
        # A deferred foreign key is checked at COMMIT: the job itself succeeds, the COMMIT not.
        db.execute("PRAGMA defer_foreign_keys = ON")
        f.insert(db, "message_events", f.message_event(999_999))

    error = Boom("fails on its own")
    gate, held = await _hold(database)
    calls: list[Callable[[sqlite_utils.Database], object]] = [
        _insert_run("a"),
        dangling_event,
        _insert_run("b", fail=error),
        _insert_run("c"),
    ]
    writes = [asyncio.create_task(database.write(call)) for call in calls]
    await asyncio.sleep(0)
    gate.set()
    await held
    outcomes = await asyncio.gather(*writes, return_exceptions=True)
    commit_error = outcomes[0]
    assert isinstance(commit_error, sqlite3.IntegrityError)
    assert "FOREIGN KEY" in str(commit_error)
    assert outcomes[1] is commit_error
    assert outcomes[3] is commit_error
    assert outcomes[2] is error  # it failed by itself: its own error, as it would alone
    assert await database.execute(_count("job_runs")) == 0
    assert await database.execute(_count("message_events")) == 0
    assert await database.write(_insert_run("after")) == 1


async def test_a_transaction_lost_mid_group_fails_the_writes_before_and_runs_the_rest(
    database: Database,
) -> None:
    # RAISE(ROLLBACK) ends the whole transaction, savepoints and earlier writes included.
    await database.execute(
        lambda db: db.execute(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON job_runs WHEN NEW.detail = 'refused' "
            "BEGIN SELECT RAISE(ROLLBACK, 'refused by trigger'); END"
        )
    )
    gate, held = await _hold(database)
    calls = [_insert_run("a"), _insert_run("refused"), _insert_run("b"), _insert_run("c")]
    writes = [asyncio.create_task(database.write(call)) for call in calls]
    await asyncio.sleep(0)
    gate.set()
    await held
    outcomes = await asyncio.gather(*writes, return_exceptions=True)
    refused = outcomes[1]
    assert isinstance(refused, sqlite3.IntegrityError)
    assert "refused by trigger" in str(refused)
    assert outcomes[0] is refused
    assert outcomes[2:] == [1, 2]
    assert await database.execute(_details) == ["b", "c"]


async def test_calls_before_open_and_after_close_raise_storage_error(db_path: Path) -> None:
    database = Database(db_path)
    with pytest.raises(StorageError, match="database is closed"):
        await database.execute(_count("messages"))
    await database.open()
    await database.close()
    with pytest.raises(StorageError, match="database is closed"):
        await database.execute(_count("messages"))
    with pytest.raises(StorageError, match="database is closed"):
        await database.write(_count("messages"))


async def test_calls_while_closing_are_refused_not_lost(database: Database) -> None:
    gate = threading.Event()
    busy = asyncio.create_task(database.execute(lambda db: gate.wait(timeout=10)))
    await asyncio.sleep(0)
    closing = asyncio.create_task(database.close())
    await asyncio.sleep(0)
    # Queued behind the stop, this call would never run: it must be refused at once.
    with pytest.raises(StorageError, match="database is closing"):
        await asyncio.wait_for(database.execute(_count("messages")), timeout=10)
    gate.set()
    assert await busy is True
    await closing
    assert not database.is_open


async def test_close_during_open_wins(db_path: Path) -> None:
    database = Database(db_path)
    opening = asyncio.create_task(database.open())
    await asyncio.sleep(0)
    await database.close()
    with pytest.raises(StorageError, match="closed while opening"):
        await opening
    assert not database.is_open
    await database.close()
    assert db_threads() == []


async def test_close_is_idempotent_and_ends_the_thread(db_path: Path) -> None:
    database = Database(db_path)
    await database.open()
    assert len(db_threads()) == 1
    await database.close()
    await database.close()
    assert not database.is_open
    assert db_threads() == []


async def test_close_before_open_is_harmless(db_path: Path) -> None:
    await Database(db_path).close()
    assert not db_path.exists()


async def test_close_finishes_queued_work_first(db_path: Path) -> None:
    database = Database(db_path)
    await database.open()
    writes = [
        asyncio.create_task(database.write(lambda db: f.insert(db, "job_runs", f.job_run())))
        for _ in range(20)
    ]
    await asyncio.sleep(0)  # the tasks queue their work
    await database.close()
    assert sorted(await asyncio.gather(*writes)) == list(range(1, 21))
    reopened = Database(db_path)
    await reopened.open()
    try:
        assert await reopened.execute(_count("job_runs")) == 20
    finally:
        await reopened.close()


async def test_close_truncates_the_wal_even_with_another_reader(db_path: Path) -> None:
    database = Database(db_path)
    await database.open()
    # Another connection stays open, so SQLite's own last-close cleanup does not happen:
    # only the explicit checkpoint can empty the WAL.
    reader = sqlite3.connect(db_path)
    try:
        reader.execute("SELECT count(*) FROM messages").fetchone()
        await database.write(lambda db: f.insert(db, "job_runs", f.job_run()))
        wal = db_path.with_name(db_path.name + "-wal")
        assert wal.stat().st_size > 0
        await database.close()
        assert wal.stat().st_size == 0
        assert reader.execute("SELECT count(*) FROM job_runs").fetchone() == (1,)
    finally:
        reader.close()


async def test_close_leaves_no_journal_files(db_path: Path) -> None:
    database = Database(db_path)
    await database.open()
    await database.write(lambda db: f.insert(db, "job_runs", f.job_run()))
    await database.close()
    assert sidecar_files(db_path) == []


async def test_a_closed_database_can_be_opened_again(db_path: Path) -> None:
    database = Database(db_path)
    await database.open()
    await database.write(lambda db: f.insert(db, "job_runs", f.job_run()))
    await database.close()
    await database.open()
    try:
        assert await database.execute(_count("job_runs")) == 1
    finally:
        await database.close()


async def test_opening_twice_is_a_programming_error(database: Database) -> None:
    with pytest.raises(RuntimeError, match="open"):
        await database.open()
    assert await database.ping()


async def test_ping(db_path: Path) -> None:
    database = Database(db_path)
    assert await database.ping() is False
    await database.open()
    assert await database.ping() is True
    await database.close()
    assert await database.ping() is False


async def test_ping_is_false_when_the_connection_is_unusable(database: Database) -> None:
    # Break the connection from inside: the thread still runs, but nothing can be read.
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        await database.execute(lambda db: db.conn.close())
    assert await database.ping() is False


def _raise_boom(db: sqlite_utils.Database) -> None:
    raise Boom
