"""Every list query, and every periodic query on a table that grows, is served by an index.

How: each case calls the real storage function on a migrated database. The connection records
every statement it runs with its parameters (a `sqlite3.Connection` subclass; the trace
callback is only a check that nothing went past the recorder, as it shows the values already
written into the text), and each SELECT, UPDATE and DELETE is then put to SQLite again as
`EXPLAIN QUERY PLAN` with the same parameters. So the plans are those of the SQL the code
really runs, for every filter and combination of filters the API passes on.

Two databases: a fresh one (no statistics, as a shop's database is until the daemon's first
clean stop) and a filled one after ANALYZE (what `PRAGMA optimize` at close leaves, so the
planner then weighs the indexes by what they hold). Both must pass.

The rules, for a table that grows with the shop's history (GROWING):

1. No `SCAN <table>`, with or without an index: that reads the table (or the index) end to
   end. Two exceptions. A statement with no WHERE and a LIMIT (the newest page, an OFFSET
   page) is a walk that stops after its rows. A scan of a partial index reads only the rows
   its WHERE names (the open owner alerts), which do not pile up with history.
2. No `USE TEMP B-TREE FOR ORDER BY` in a statement with a LIMIT: a sort reads every matching
   row before the first is returned, so the LIMIT bounds nothing. A case may say why its sort
   is of a few rows only (`sorts`).
3. A page with filters must find its rows through an index on one of them: some SEARCH of
   the growing table names a filtered column. An ORDER BY walk on another index (or on the
   id) with the filter checked row by row is bounded only when the filter matches often; a
   rare or absent value reads the whole table. A `SCAN messages USING INDEX
   idx_messages_created_at` with a status filter is therefore a failure, however it ends.
   With several filters, SQLite reads the rows of one of them (whichever it judges best)
   and checks the others row by row: such a page reads at most that filter's matches.
   `since` and `until` are served as id bounds found on the created_at index; the SEARCH
   naming created_at is the one that finds them.

A table that does not grow with the shop's history (BOUNDED) may be scanned: each says why.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlite_utils

from storage import accounts as account_rows
from storage import (
    inbound,
    messages,
    migrations,
    orders,
    otp,
    owner_alerts,
    products,
    push,
    receipts,
    reports,
    reservations,
    retention,
    stats,
    subscribers,
    tgtg,
)
from tests.storage import factories as f

# Rows added with the shop's history: a message, an event, a poll's job run, an order...
GROWING = frozenset(
    {
        "messages",
        "message_events",
        "message_parts",
        "notifications",
        "inbound_messages",
        "otp_codes",
        "orders",
        "order_lines",
        "price_changes",
        "job_runs",
        "owner_alerts",
        "reservations",
    }
)
# Tables that grow with the shop itself (its people, devices, catalogue), not with time.
BOUNDED = {
    "_sqlite_migrations": "one row per migration",
    "message_counts": "one row per message state",
    "subscribers": "the shop's customers; the search (LIKE '%word%') cannot use an index",
    "push_tokens": "the customers' devices",
    "tgtg_accounts": "one per subscriber with a TGTG login",
    "favorites": "each TGTG subscriber's favourites: tens each",
    "accounts": "staff and customers who log in",
    "products": "the catalogue; the search (LIKE '%word%') cannot use an index",
    "reports": "one a day and one a week",
}

# Every time below is in this shape: sortable text, as the clock writes it.
T0 = "2026-01-01T00:00:00.000000+00:00"
NOW = f.NOW
LATER = f.LATER
FUTURE = "2027-01-01T00:00:00.000000+00:00"


class _Recording(sqlite3.Connection):
    """A connection that writes down each statement with its parameters, while `log` is set."""

    log: list[tuple[str, Any]] | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self.log is not None:
            self.log.append((sql, parameters))
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        if self.log is not None:
            # Only INSERTs go through executemany; they have no plan worth checking.
            self.log.append((sql, None))
        return super().executemany(sql, parameters)


@dataclass(frozen=True)
class Case:
    """One call of a storage function, and the columns an index must find its rows by (one of
    them, rule 3): a page's filters, or what a periodic query narrows by."""

    name: str
    call: Callable[[sqlite_utils.Database], object]
    by: tuple[str, ...] = ()
    # Why a sort under a LIMIT is of a few rows only, when it is (rule 2).
    sorts: str = ""


M = messages.MessageFilter
# MessageFilter field -> the column it filters on.
MESSAGE_FILTERS = {
    "status": ("failed", "status"),
    "channel": ("email", "channel"),
    "kind": ("report", "kind"),
    "recipient": ("+447700900123", "recipient"),
    "since": (T0, "created_at"),
    # Within the filled rows' day, so both bounds find a message and the page query runs.
    "until": ("2026-01-02T12:00:00.000000+00:00", "created_at"),
}


def _message_cases() -> Iterator[Case]:
    """list_messages with every combination of filters, first page and a page further back."""
    names = list(MESSAGE_FILTERS)
    for size in range(len(names) + 1):
        for chosen in itertools.combinations(names, size):
            where = M(**{name: MESSAGE_FILTERS[name][0] for name in chosen})
            columns = tuple(sorted({MESSAGE_FILTERS[name][1] for name in chosen}))
            label = "+".join(chosen) or "no filter"
            for before in (None, 3):

                def call(
                    db: sqlite_utils.Database,
                    w: messages.MessageFilter = where,
                    b: int | None = before,
                ) -> object:
                    return messages.list_messages(db, w, limit=50, before_id=b)

                page = ", before id 3" if before else ""
                yield Case(f"list_messages({label}{page})", call, columns)


def _lane(lane: messages.Lane | None) -> Callable[[sqlite_utils.Database], object]:
    return lambda db: messages.claim_due(db, LATER, FUTURE, 10, lane)


CASES: list[Case] = [
    *_message_cases(),
    # -- the other list routes, and what their pages read besides ---------------------------
    Case("get_events", lambda db: messages.get_events(db, 1), by=("message_id",)),
    Case("list_notifications", lambda db: push.list_notifications(db), by=("notification_id",)),
    Case(
        "list_notifications(before)",
        lambda db: push.list_notifications(db, before_id=9),
        by=("notification_id",),
    ),
    Case(
        "notification_messages",
        lambda db: push.notification_messages(db, 1),
        by=("notification_id",),
    ),
    Case("list_tokens", lambda db: push.list_tokens(db)),
    Case("list_tokens(subscriber, valid)", lambda db: push.list_tokens(db, subscriber_id=1)),
    Case("list_tokens(invalid, before)", lambda db: push.list_tokens(db, valid=False, before_id=9)),
    Case("list_orders", lambda db: orders.list_orders(db), by=("order_id",)),
    Case("list_orders(offset)", lambda db: orders.list_orders(db, offset=1), by=("order_id",)),
    Case(
        "list_orders(account)", lambda db: orders.list_orders(db, account_id=1), by=("account_id",)
    ),
    Case("list_reports", lambda db: reports.list_reports(db)),
    Case("list_reports(kind, before)", lambda db: reports.list_reports(db, kind="weekly")),
    Case("subscribers.list_all", lambda db: subscribers.list_all(db, query="asha patel")),
    Case("tgtg.accounts", tgtg.accounts),
    Case("favorites_of", lambda db: tgtg.favorites_of(db)),
    Case("favorites_of(subscriber)", lambda db: tgtg.favorites_of(db, 1)),
    Case(
        "list_products(every filter)",
        lambda db: products.list_products(db, category="x", brand="y", search="z"),
    ),
    Case("list_accounts(role)", lambda db: account_rows.list_accounts(db, role="owner")),
    Case("price_changes", lambda db: products.price_changes(db, 1), by=("product_id",)),
    # -- the dashboard and the reports ------------------------------------------------------
    Case("stats.waiting", stats.waiting, by=("status",)),
    Case(
        "stats.status_between",
        lambda db: stats.status_between(db, T0, FUTURE),
        by=("created_at",),
    ),
    Case(
        "stats.created_per_period",
        lambda db: stats.created_per_period(db, [(T0, NOW)] * 3),
        by=("created_at",),
    ),
    Case(
        "stats.last_runs",
        lambda db: stats.last_runs(db, ["report-daily", "backup"]),
        by=("job_id",),
    ),
    Case("count_by_status", messages.count_by_status),
    Case(
        "reports.items_purchased",
        lambda db: reports.items_purchased(db, T0, FUTURE),
        by=("created_at",),
    ),
    Case(
        "reports.totals_per_period",
        lambda db: reports.totals_per_period(db, [(T0, FUTURE)]),
        by=("created_at",),
    ),
    Case(
        "reports.spend_above",
        lambda db: reports.spend_above(db, [(T0, FUTURE)], 1),
        by=("created_at",),
    ),
    Case(
        "reports.category_sales",
        lambda db: reports.category_sales(db, "snacks", T0, FUTURE),
        by=("created_at",),
    ),
    Case(
        "reports.top_products",
        lambda db: reports.top_products(db, T0, FUTURE),
        by=("created_at",),
        sorts="by amount sold: the products sold in the range, found on the orders' index",
    ),
    # -- the outbox, for every message ------------------------------------------------------
    Case("claim_due", _lane(None), by=("status",)),
    Case("claim_due(lane)", _lane(messages.Lane("sms", 0, 1)), by=("status",)),
    Case(
        "claim_due(the rest)",
        _lane(messages.Lane(None, besides=(("sms", 2), ("push", 1)))),
        by=("status",),
    ),
    Case(
        "next_due_at",
        lambda db: (messages.next_due_at(db), messages.next_due_at(db, NOW)),
        by=("status",),
    ),
    Case(
        "recover_sending(at start)",
        lambda db: messages.recover_sending(db, NOW, expired_before=None),
        by=("status",),
    ),
    Case(
        "recover_sending(stalled)",
        lambda db: messages.recover_sending(db, NOW, expired_before=NOW),
        by=("status",),
    ),
    # The queue's depth: the waiting rows only, not the channel's history.
    Case("count_waiting", lambda db: messages.count_waiting(db, "sms", "otp"), by=("status",)),
    Case(
        "sms_segments_since",
        lambda db: messages.sms_segments_since(db, T0),
        by=("created_at",),
    ),
    # The rate limit: one recipient's recent messages, not all of theirs.
    Case(
        "count_recent_to",
        lambda db: messages.count_recent_to(db, "sms", "+447700900123", T0),
        by=("created_at",),
    ),
    Case(
        "cancel_queued_to",
        lambda db: messages.cancel_queued_to(db, "sms", "+447700900123", "opted out", NOW),
        by=("status", "channel", "recipient"),
    ),
    Case(
        "messages_by_key",
        lambda db: push.messages_by_key(db, "push-7"),
        by=("idempotency_key",),
    ),
    Case(
        "insert_message(idempotent)",
        lambda db: messages.insert_message(
            db,
            messages.NewMessage("sms", "+447700900123", "hi", "manual", 20, idempotency_key="k"),
            NOW,
        ),
        by=("idempotency_key",),
    ),
    # -- receipts, inbound, OTP, owner alerts, reservations ---------------------------------
    Case(
        "apply_receipt",
        lambda db: receipts.apply_receipt(
            db,
            provider="twilio",
            provider_message_id="SM1",
            status="delivered",
            error_code=None,
            now=LATER,
        ),
        by=("provider_message_id",),
    ),
    Case(
        "apply_part_report",
        lambda db: receipts.apply_part_report(
            db,
            provider="modem",
            reference="17",
            recipient="+33612345678",
            delivered=True,
            failed=False,
            status_code=0,
            now=LATER,
            sent_after=T0,
        ),
        by=("reference",),
        sorts="the parts with one reference to one recipient within the report window",
    ),
    Case(
        "record_inbound(a retried webhook)",
        lambda db: inbound.record_inbound(
            db,
            source="twilio",
            sender="+447700900123",
            recipient=None,
            body="STOP",
            provider_message_id="SM0001",
            received_at=NOW,
            keyword="STOP",
        ),
        by=("provider_message_id",),
    ),
    Case(
        "otp.latest_code",
        lambda db: otp.latest_code(db, "+447700900123", "login"),
        by=("phone",),
    ),
    Case("otp.sent_since", lambda db: otp.sent_since(db, "+447700900123", T0), by=("phone",)),
    Case(
        "otp.close_live_codes",
        lambda db: otp.close_live_codes(db, "+447700900123", "login", NOW, "replaced"),
        by=("phone",),
    ),
    Case("otp.consume_code", lambda db: otp.consume_code(db, 1, NOW)),
    # The codes to forget, by their time (the other statements name theirs too).
    Case("otp.sweep", lambda db: otp.sweep(db, FUTURE, FUTURE), by=("created_at",)),
    Case(
        "owner_alerts.raise_alert",
        lambda db: owner_alerts.raise_alert(
            db, "disk-full", "full", None, now=NOW, hour_ago=T0, max_per_hour=5
        ),
        by=("raised_at",),
    ),
    Case(
        "owner_alerts.clear_alert",
        lambda db: owner_alerts.clear_alert(db, "disk-low", NOW),
        by=("key",),
    ),
    Case("owner_alerts.unqueued", owner_alerts.unqueued, by=("cleared_at",)),
    Case("owner_alerts.open_alerts", owner_alerts.open_alerts, by=("cleared_at",)),
    Case(
        "reservations.latest_offer",
        lambda db: reservations.latest_offer(db, 1),
        by=("subscriber_id",),
    ),
    Case(
        "reservations.latest_reserved",
        lambda db: reservations.latest_reserved(db, 1),
        by=("subscriber_id",),
    ),
    Case(
        "reservations.reserved_since",
        lambda db: reservations.reserved_since(db, 1, T0),
        by=("reserved_at",),
    ),
    # -- retention: one batch of each step, by the time that makes a row old ----------------
    Case(
        "retention.delete_old_messages",
        lambda db: retention.delete_old_messages(db, FUTURE, 100),
        by=("created_at",),
    ),
    Case(
        "retention.delete_old_notifications",
        lambda db: retention.delete_old_notifications(db, FUTURE, 100),
        by=("created_at",),
    ),
    Case(
        "retention.delete_old_inbound",
        lambda db: retention.delete_old_inbound(db, FUTURE, 100),
        by=("received_at",),
    ),
    Case(
        "retention.delete_old_job_runs",
        lambda db: retention.delete_old_job_runs(db, FUTURE, 100),
        by=("started_at",),
    ),
    Case(
        "retention.delete_old_owner_alerts",
        lambda db: retention.delete_old_owner_alerts(db, FUTURE, 100),
        by=("cleared_at",),
    ),
]


# -- the databases ----------------------------------------------------------------------------


def _fill(db: sqlite_utils.Database, scale: int) -> None:
    """populate()'s linked rows, plus `scale` rows a table in a shop's proportions."""
    f.populate(db)
    statuses = ["sent"] * 16 + ["delivered"] * 3 + ["failed", "cancelled", "queued", "undelivered"]
    kinds = ["alert"] * 12 + ["manual"] * 4 + ["otp"] * 3 + ["report"]
    rows = []
    for i in range(scale):
        # After populate()'s message (at NOW): ids follow the times, as the clock writes them.
        at = f"2026-01-02T{i * 24 // scale:02d}:00:00.{i:06d}+00:00"
        status = statuses[i % len(statuses)]
        rows.append(
            f.message(
                channel="push" if i % 10 == 0 else "sms",
                recipient=f"+4477009{i % 500:05d}",
                kind=kinds[i % len(kinds)],
                status=status,
                provider="twilio" if status != "queued" else None,
                provider_message_id=f"SM{i}",
                notification_id=1 if i % 10 == 0 else None,
                created_at=at,
                due_at=at,
                updated_at=at,
            )
        )
    _insert_many(db, "messages", rows)
    _insert_many(db, "message_events", [f.message_event(2 + i % scale) for i in range(scale)])
    _insert_many(
        db,
        "message_parts",
        [f.message_part(2 + i, reference=str(i % 256)) for i in range(scale)],
    )
    _insert_many(db, "notifications", [f.notification() for _ in range(scale // 10)])
    _insert_many(
        db,
        "inbound_messages",
        [f.inbound_message(provider_message_id=f"SM-in-{i}") for i in range(scale // 10)],
    )
    _insert_many(
        db, "otp_codes", [f.otp_code(phone=f"+4477009{i:05d}") for i in range(scale // 10)]
    )
    _insert_many(db, "orders", [f.order(1, created_at=NOW) for _ in range(scale)])
    _insert_many(db, "order_lines", [f.order_line(2 + i, 1) for i in range(scale)])
    _insert_many(db, "job_runs", [f.job_run(job_id=f"job-{i % 10}") for i in range(scale)])
    _insert_many(
        db,
        "owner_alerts",
        [f.owner_alert(key=f"k{i}", cleared_at=LATER) for i in range(scale // 10)],
    )
    _insert_many(
        db,
        "reservations",
        [f.reservation(1, alert_key=f"a{i}", state="offered", order_id=None) for i in range(scale)],
    )


def _insert_many(db: sqlite_utils.Database, table: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        columns = list(rows[0])
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        db.conn.executemany(sql, [[row[c] for c in columns] for row in rows])


def _database(analyzed: bool) -> sqlite_utils.Database:
    conn = sqlite3.connect(":memory:", factory=_Recording)
    db = sqlite_utils.Database(conn, execute_plugins=False)
    db.execute("PRAGMA foreign_keys = ON")
    migrations.apply(db)
    _fill(db, 2000 if analyzed else 30)
    if analyzed:
        db.execute("ANALYZE")
    db.conn.commit()
    return db


@pytest.fixture(scope="module", params=[False, True], ids=["fresh", "analyzed"])
def planned(request: pytest.FixtureRequest) -> Iterator[sqlite_utils.Database]:
    db = _database(request.param)
    yield db
    db.close()


# -- running a case and reading its plans -----------------------------------------------------


@dataclass
class Run:
    """The statements one case ran (SQL and parameters) and what the trace saw."""

    statements: list[tuple[str, Any]] = field(default_factory=list)
    traced: list[str] = field(default_factory=list)


_PLANNED = ("SELECT", "WITH", "UPDATE", "DELETE")


def run(db: sqlite_utils.Database, case: Case) -> Run:
    """Call the case's function in a transaction that is rolled back: the data stays as is."""
    conn = db.conn
    assert isinstance(conn, _Recording)
    done = Run()
    conn.execute("BEGIN")
    conn.set_trace_callback(done.traced.append)
    conn.log = done.statements
    try:
        case.call(db)
    finally:
        conn.log = None
        conn.set_trace_callback(None)
        conn.rollback()
    return done


def _planned(statements: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [
        (sql, params)
        for sql, params in statements
        if params is not None and sql.lstrip().upper().startswith(_PLANNED)
    ]


def plan_of(db: sqlite_utils.Database, sql: str, params: Any) -> list[str]:
    # Straight to sqlite3's own execute: the plan is not a statement of the case.
    rows = sqlite3.Connection.execute(db.conn, "EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return [str(row[3]) for row in rows]


_KEYWORDS = {"WHERE", "JOIN", "LEFT", "INNER", "CROSS", "ON", "ORDER", "GROUP", "LIMIT", "INDEXED"}
_STEP = re.compile(
    r"(?P<op>SCAN|SEARCH) (?P<name>\w+)"
    r"(?: USING (?:COVERING )?INDEX (?P<index>\w+)| USING INTEGER PRIMARY KEY)?"
    r"(?: \((?P<terms>[^)]*)\))?"
)


def _tables(sql: str) -> dict[str, str]:
    """What each name in a plan stands for: a table, or an alias of one."""
    names: dict[str, str] = {}
    for found in re.finditer(r"\b(?:FROM|JOIN)\s+(\w+)(?:\s+(?:AS\s+)?(\w+))?", sql, re.I):
        table, alias = found.group(1), found.group(2)
        names[table] = table
        if alias and alias.upper() not in _KEYWORDS:
            names[alias] = table
    return names


def partial_indexes(db: sqlite_utils.Database) -> dict[str, set[str]]:
    """Each partial index, and the columns its WHERE names (its rows are found by them too)."""
    rows = sqlite3.Connection.execute(
        db.conn, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql LIKE '%WHERE%'"
    ).fetchall()
    return {
        str(name): set(re.findall(r"(\w+)\s*(?:[=<>!]|IN\b|IS\b)", sql.split("WHERE", 1)[1]))
        for name, sql in rows
    }


def problems(db: sqlite_utils.Database, case: Case, statements: list[tuple[str, Any]]) -> list[str]:
    """What breaks the module's rules in the plans of `statements`, one sentence each."""
    partial = partial_indexes(db)
    found: list[str] = []
    searched: set[str] = set()  # the columns an index found rows of a growing table by
    touched = False

    def fail(rule: str, sql: str, line: str, plan: list[str]) -> None:
        found.append(
            f"{case.name}: {rule}\n    plan line: {line}\n    SQL: {sql}\n"
            f"    whole plan: {' | '.join(plan)}"
        )

    for sql, params in _planned(statements):
        try:
            plan = plan_of(db, sql, params)
        except sqlite3.Error as exc:
            found.append(f"{case.name}: SQLite cannot plan it ({exc})\n    SQL: {sql}")
            continue
        names = _tables(sql)
        upper = f" {sql.upper()} "
        limited = " LIMIT " in upper
        growing = False
        for line in plan:
            step = _STEP.match(line)
            if step is None or names.get(step["name"], step["name"]) not in GROWING:
                continue
            growing = touched = True
            table = names.get(step["name"], step["name"])
            searched.update(partial.get(step["index"] or "", set()))
            if step["op"] == "SEARCH":
                searched.update(re.findall(r"(\w+)\s*[=<>]", step["terms"] or ""))
                continue
            # Rule 1's exceptions: a partial index's few rows; a walk its LIMIT stops.
            partial_scan = step["index"] in partial
            if not partial_scan and not (limited and " WHERE " not in upper):
                fail(f"reads the whole of {table} (rule 1)", sql, line, plan)
        if growing and limited and not case.sorts:
            for line in plan:
                if line.startswith("USE TEMP B-TREE FOR ORDER BY"):
                    fail("sorts every matching row for one page (rule 2)", sql, line, plan)
    if case.by and touched and not searched & set(case.by):
        found.append(
            f"{case.name}: no index finds the rows by {' or '.join(case.by)} (rule 3); "
            f"the indexes used found them by {sorted(searched) or 'nothing'}"
        )
    return found


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_plan_uses_an_index(planned: sqlite_utils.Database, case: Case) -> None:
    done = run(planned, case)
    assert _planned(done.statements), f"{case.name} ran no query"
    found = problems(planned, case, done.statements)
    assert not found, "\n".join(found)


def test_every_list_messages_case_runs_its_page_query(planned: sqlite_utils.Database) -> None:
    # A time bound that finds no message ends the call before the page query: not here.
    for case in CASES:
        if case.name.startswith("list_messages("):
            sqls = [sql for sql, _ in run(planned, case).statements]
            assert any(sql.endswith("ORDER BY id DESC LIMIT ?") for sql in sqls), case.name


def test_every_statement_is_recorded_with_its_parameters(planned: sqlite_utils.Database) -> None:
    # The trace callback sees every statement SQLite runs (cursors made behind the recorder's
    # back too), with the values written in; a trigger's steps repeat the statement that fired
    # it, so runs of one text count once.
    for case in CASES:
        done = run(planned, case)
        traced = [s for s in done.traced if s.lstrip().upper().startswith(_PLANNED)]
        distinct = [s for i, s in enumerate(traced) if i == 0 or traced[i - 1] != s]
        assert len(distinct) <= len(_planned(done.statements)) <= len(traced), case.name


def test_every_table_is_said_to_grow_or_not(planned: sqlite_utils.Database) -> None:
    tables = set(planned.table_names()) - {"sqlite_stat1", "sqlite_stat4"}
    assert tables == GROWING | set(BOUNDED)


def test_every_retention_step_has_its_case() -> None:
    named = {case.name for case in CASES}
    assert {f"retention.{step.__name__}" for step in retention.STEPS} <= named


def test_dropping_any_index_fails_a_plan(planned: sqlite_utils.Database) -> None:
    """Each named index of a growing table is what some plan stands on: dropped, a case that
    passed fails. NOT_FOR_PLANS says what the others are for.

    The SQL does not depend on the indexes, so each case runs once and its statements are
    planned again with each index dropped (in a transaction rolled back after).
    """
    recorded = [(case, run(planned, case).statements) for case in CASES]
    passing = [
        (case, statements)
        for case, statements in recorded
        if not problems(planned, case, statements)
    ]
    indexes = [
        str(name)
        for name, table in sqlite3.Connection.execute(
            planned.conn,
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
        ).fetchall()
        if table in GROWING
    ]
    unused = []
    for index in indexes:
        planned.conn.execute("BEGIN")
        try:
            sqlite3.Connection.execute(planned.conn, f"DROP INDEX {index}")
            failing = any(problems(planned, case, statements) for case, statements in passing)
        finally:
            planned.conn.rollback()
        if not failing:
            unused.append(index)
    assert sorted(unused) == sorted(NOT_FOR_PLANS), (
        "dropping these indexes fails no plan; say why in NOT_FOR_PLANS, or add the case that "
        f"needs them: {sorted(set(unused) - set(NOT_FOR_PLANS))}; these now fail a plan when "
        f"dropped: {sorted(set(NOT_FOR_PLANS) - set(unused))}"
    )


# Indexes of growing tables that no plan above stands on, and what each is there for.
_FOREIGN_KEY = "a foreign key's: without it, deleting the parent row reads the whole table"
NOT_FOR_PLANS: dict[str, str] = {
    "idx_messages_subscriber_id": _FOREIGN_KEY,
    "idx_inbound_messages_subscriber_id": _FOREIGN_KEY,
    "idx_order_lines_product_id": _FOREIGN_KEY,
    "idx_price_changes_account_id": _FOREIGN_KEY,
    "idx_inbound_messages_sender_received_at": "no query reads inbound messages by sender yet",
    # The planner reads the queued entries of (status, priority, due_at, id) instead, on the
    # fresh database and after ANALYZE alike: bounded by the queue, not the history.
    "idx_messages_queued_due_at": "next_due_at's single probe, when the planner takes it",
}


def test_time_bounds_list_what_the_times_say(planned: sqlite_utils.Database) -> None:
    """`since` and `until` as id bounds list the same messages as the times alone would."""
    times = [
        sqlite3.Connection.execute(planned.conn, "SELECT id, created_at FROM messages").fetchall()
    ][0]
    moments = [T0, NOW, LATER, "2026-01-02T06:00:00.000000+00:00", "2026-01-02T23:00:00+00:00"]
    for since, until in itertools.product([None, *moments, FUTURE], [None, *moments, "2020"]):
        want = sorted(
            (
                message_id
                for message_id, at in times
                if (since is None or at >= since) and (until is None or at < until)
            ),
            reverse=True,
        )[:50]
        got = messages.list_messages(planned, M(since=since, until=until), limit=50)
        assert [m.id for m in got] == want, (since, until)
