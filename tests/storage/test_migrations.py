"""The schema from an empty database: tables, indexes, constraints, foreign keys, names."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any, get_args

import pytest
import sqlite_utils

from storage import migrations, models
from storage.errors import SchemaTooNewError
from tests.storage import factories as f

TABLES = {
    "_sqlite_migrations",
    "subscribers",
    "push_tokens",
    "tgtg_accounts",
    "favorites",
    "notifications",
    "messages",
    "message_events",
    "message_parts",
    "inbound_messages",
    "otp_codes",
    "accounts",
    "products",
    "price_changes",
    "orders",
    "order_lines",
    "reports",
    "job_runs",
    "owner_alerts",
    "reservations",
    "message_counts",
}

# Named indexes: name -> (table, columns).
INDEXES = {
    "idx_push_tokens_subscriber_id": ("push_tokens", ["subscriber_id"]),
    "idx_messages_status_priority_due_at_id": (
        "messages",
        ["status", "priority", "due_at", "id"],
    ),
    "idx_messages_queued_due_at": ("messages", ["due_at"]),
    "idx_messages_recipient_created_at": ("messages", ["recipient", "created_at"]),
    "idx_messages_recipient_id": ("messages", ["recipient", "id"]),
    "idx_notifications_created_at": ("notifications", ["created_at"]),
    "idx_inbound_messages_received_at": ("inbound_messages", ["received_at"]),
    "idx_job_runs_started_at": ("job_runs", ["started_at"]),
    "idx_owner_alerts_cleared_at": ("owner_alerts", ["cleared_at"]),
    "idx_otp_codes_created_at": ("otp_codes", ["created_at"]),
    "idx_messages_created_at": ("messages", ["created_at"]),
    "idx_messages_status_id": ("messages", ["status", "id"]),
    "idx_messages_kind_id": ("messages", ["kind", "id"]),
    "idx_messages_channel_id": ("messages", ["channel", "id"]),
    "idx_messages_waiting_channel_kind": ("messages", ["channel", "kind"]),
    "idx_messages_otp_not_redacted": ("messages", ["id"]),
    "idx_messages_sms_spend_created_at": ("messages", ["created_at", "segments"]),
    "idx_messages_provider_provider_message_id": (
        "messages",
        ["provider", "provider_message_id"],
    ),
    "idx_messages_subscriber_id": ("messages", ["subscriber_id"]),
    "idx_messages_notification_id": ("messages", ["notification_id"]),
    "idx_message_events_message_id_id": ("message_events", ["message_id", "id"]),
    "idx_message_parts_provider_reference_recipient_sent_at": (
        "message_parts",
        ["provider", "reference", "recipient", "sent_at"],
    ),
    "idx_inbound_messages_sender_received_at": ("inbound_messages", ["sender", "received_at"]),
    "idx_inbound_messages_subscriber_id": ("inbound_messages", ["subscriber_id"]),
    "idx_otp_codes_phone_purpose": ("otp_codes", ["phone", "purpose"]),
    "idx_otp_codes_message_id": ("otp_codes", ["message_id"]),
    "idx_products_category": ("products", ["category"]),
    "idx_price_changes_product_id_changed_at": ("price_changes", ["product_id", "changed_at"]),
    "idx_price_changes_account_id": ("price_changes", ["account_id"]),
    "idx_orders_created_at_status_account_id_total_minor": (
        "orders",
        ["created_at", "status", "account_id", "total_minor"],
    ),
    "idx_orders_account_id": ("orders", ["account_id"]),
    "idx_order_lines_order_id_product_id_quantity_line_total_minor": (
        "order_lines",
        ["order_id", "product_id", "quantity", "line_total_minor"],
    ),
    "idx_order_lines_product_id": ("order_lines", ["product_id"]),
    "idx_job_runs_job_id_started_at": ("job_runs", ["job_id", "started_at"]),
    "idx_owner_alerts_key_open": ("owner_alerts", ["key"]),
    "idx_owner_alerts_raised_at": ("owner_alerts", ["raised_at"]),
    "idx_reservations_subscriber_id_offered_at": ("reservations", ["subscriber_id", "offered_at"]),
    "idx_reservations_subscriber_id_reserved_at": (
        "reservations",
        ["subscriber_id", "reserved_at"],
    ),
}

# UNIQUE constraints: (table, columns).
UNIQUES = {
    ("subscribers", ("phone",)),
    ("message_parts", ("message_id", "seq")),
    ("push_tokens", ("token",)),
    ("tgtg_accounts", ("subscriber_id",)),
    ("favorites", ("subscriber_id", "item_id")),
    ("messages", ("idempotency_key",)),
    ("inbound_messages", ("source", "provider_message_id")),
    ("accounts", ("username",)),
    ("accounts", ("email",)),
    ("products", ("sku",)),
    ("reports", ("kind", "period_start")),
    ("owner_alerts", ("key",)),
    ("reservations", ("alert_key",)),
    ("message_counts", ("status",)),
}


@pytest.fixture
def empty() -> sqlite_utils.Database:
    db = sqlite_utils.Database(memory=True)
    db.execute("PRAGMA foreign_keys = ON")
    return db


def test_from_empty_applies_every_migration_and_creates_every_table(
    empty: sqlite_utils.Database,
) -> None:
    assert migrations.apply(empty) == list(migrations.names())
    assert set(empty.table_names()) == TABLES


def test_from_empty_creates_every_named_index(empty: sqlite_utils.Database) -> None:
    migrations.apply(empty)
    found = {
        index.name: (table.name, index.columns)
        for table in empty.tables
        for index in table.indexes
        if not index.name.startswith("sqlite_autoindex") and table.name != "_sqlite_migrations"
    }
    assert found == INDEXES


def test_from_empty_creates_every_unique_constraint(empty: sqlite_utils.Database) -> None:
    migrations.apply(empty)
    found = {
        (table.name, tuple(index.columns))
        for table in empty.tables
        for index in table.indexes
        if index.unique and table.name != "_sqlite_migrations"
    }
    assert found == UNIQUES


def test_the_dispatcher_claim_uses_its_index(empty: sqlite_utils.Database) -> None:
    migrations.apply(empty)
    plan = " ".join(
        row[3]
        for row in empty.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE status = 'queued' "
            "AND due_at <= ? ORDER BY priority, due_at, id LIMIT 1",
            [f.NOW],
        )
    )
    assert "idx_messages_status_priority_due_at_id" in plan
    assert "TEMP B-TREE" not in plan


def test_reapplying_is_a_no_op(empty: sqlite_utils.Database) -> None:
    migrations.apply(empty)
    schema = empty.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    records = empty.execute("SELECT * FROM _sqlite_migrations").fetchall()

    assert migrations.apply(empty) == []
    assert empty.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == (
        schema
    )
    assert empty.execute("SELECT * FROM _sqlite_migrations").fetchall() == records


def test_names_are_well_formed_unique_and_numbered_in_order() -> None:
    names = migrations.names()
    assert len(names) >= 10
    assert len(set(names)) == len(names)
    for number, name in enumerate(names, start=1):
        assert re.fullmatch(r"m\d{3}_[a-z_]+", name), name
        assert name.startswith(f"m{number:03d}_"), name
    pending = migrations.MIGRATIONS.pending(sqlite_utils.Database(memory=True))
    assert tuple(m.name for m in pending) == names


def test_status_tells_applied_pending_and_unknown(empty: sqlite_utils.Database) -> None:
    before = migrations.status(empty)
    assert before == migrations.MigrationStatus(applied=(), pending=migrations.names(), unknown=())
    migrations.apply(empty)
    _add_unknown_migration(empty, "m999_from_the_future")
    after = migrations.status(empty)
    assert after.applied == (*migrations.names(), "m999_from_the_future")
    assert after.pending == ()
    assert after.unknown == ("m999_from_the_future",)


def test_status_writes_nothing(empty: sqlite_utils.Database) -> None:
    migrations.status(empty)
    assert empty.table_names() == []


def test_apply_refuses_a_newer_schema_and_names_the_unknown(
    empty: sqlite_utils.Database,
) -> None:
    migrations.apply(empty)
    _add_unknown_migration(empty, "m011_add_loyalty_points")
    with pytest.raises(SchemaTooNewError) as caught:
        migrations.apply(empty)
    assert caught.value.unknown == ("m011_add_loyalty_points",)
    assert "m011_add_loyalty_points" in str(caught.value)
    assert "newer version of shopbell" in str(caught.value)


def test_other_migration_sets_in_the_same_file_are_not_unknown(
    empty: sqlite_utils.Database,
) -> None:
    migrations.apply(empty)
    empty.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
        ["someone-else", "m001_theirs", f.NOW],
    )
    assert migrations.status(empty).unknown == ()
    assert migrations.apply(empty) == []


def test_a_failing_migration_leaves_none_of_its_statements(
    empty: sqlite_utils.Database,
) -> None:
    # m010 creates job_runs and then its index; taking the index name makes the second
    # statement fail, and the first must be rolled back with it.
    empty.execute("CREATE TABLE decoy (x)")
    empty.execute("CREATE INDEX idx_job_runs_job_id_started_at ON decoy (x)")
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        migrations.apply(empty)
    assert "job_runs" not in empty.table_names()
    # m010 and every later one are still pending.
    names = migrations.names()
    assert migrations.status(empty).pending == names[names.index("m010_create_job_runs") :]


def test_statement_splitting_ignores_semicolons_in_comments_and_strings(
    empty: sqlite_utils.Database,
) -> None:
    migrations._run(
        empty,
        """
        -- a comment; with a semicolon
        CREATE TABLE t (x TEXT DEFAULT 'a;b');
        INSERT INTO t DEFAULT VALUES;
        """,
    )
    assert empty.execute("SELECT x FROM t").fetchall() == [("a;b",)]


# The CHECK constraints and the record types' Literal types must allow the same values.
CHECKED: list[tuple[str, str, Any, Callable[[sqlite_utils.Database, str], dict[str, Any]]]] = [
    ("messages", "channel", models.Channel, lambda db, v: f.message(channel=v)),
    ("messages", "kind", models.MessageKind, lambda db, v: f.message(kind=v)),
    (
        "messages",
        "status",
        models.MessageStatus,
        lambda db, v: f.message(status=v, lease_until=f.LATER),
    ),
    ("messages", "encoding", models.SmsEncoding, lambda db, v: f.message(encoding=v)),
    (
        "message_events",
        "state",
        models.MessageStatus,
        lambda db, v: f.message_event(f.insert(db, "messages", f.message()), state=v),
    ),
    (
        "notifications",
        "target",
        models.NotificationTarget,
        lambda db, v: f.notification(target=v, topic="offers" if v == "topic" else None),
    ),
    (
        "inbound_messages",
        "source",
        models.InboundSource,
        lambda db, v: f.inbound_message(source=v, provider_message_id=None),
    ),
    ("otp_codes", "purpose", models.OtpPurpose, lambda db, v: f.otp_code(purpose=v)),
    (
        "tgtg_accounts",
        "state",
        models.TgtgState,
        lambda db, v: f.tgtg_account(
            f.insert(db, "subscribers", f.subscriber(phone=None)), state=v
        ),
    ),
    (
        "accounts",
        "role",
        models.Role,
        lambda db, v: f.account(role=v, username=f"user-{v}", email=None),
    ),
    ("orders", "status", models.OrderStatus, lambda db, v: f.order(None, status=v)),
    ("reports", "kind", models.ReportKind, lambda db, v: f.report(kind=v)),
    (
        "job_runs",
        "outcome",
        models.JobOutcome,
        lambda db, v: f.job_run(outcome=v, finished_at=None if v == "running" else f.LATER),
    ),
]


@pytest.mark.parametrize(
    ("table", "column", "literal", "make"), CHECKED, ids=[f"{t}.{c}" for t, c, _, _ in CHECKED]
)
def test_check_constraints_allow_exactly_the_model_values(
    empty: sqlite_utils.Database,
    table: str,
    column: str,
    literal: Any,
    make: Callable[[sqlite_utils.Database, str], dict[str, Any]],
) -> None:
    migrations.apply(empty)
    sql = empty.execute("SELECT sql FROM sqlite_master WHERE name = ?", [table]).fetchone()[0]
    match = re.search(rf"CHECK \((?:{column} IS NULL OR )?{column} IN \(([^)]*)\)", sql)
    assert match, f"no CHECK on {table}.{column}"
    allowed = {value.strip().strip("'") for value in match.group(1).split(",")}
    assert allowed == set(get_args(literal))

    for value in get_args(literal):
        f.insert(empty, table, make(empty, value))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        f.insert(empty, table, make(empty, "bogus"))


# What is wrong -> (table, row, a fragment of SQLite's complaint naming that fault).
BAD_ROWS: dict[str, tuple[str, dict[str, Any], str]] = {
    "price as text": ("products", f.product(price_minor="12.50"), "products.price_minor"),
    "negative price": ("products", f.product(price_minor=-1), "price_minor >= 0"),
    "boolean not 0/1": ("products", f.product(active=2), "active IN (0, 1)"),
    "phone not E.164": ("subscribers", f.subscriber(phone="07700 900123"), "phone GLOB"),
    "phone with leading 0": ("subscribers", f.subscriber(phone="+0447700900123"), "phone GLOB"),
    "channels not JSON": ("subscribers", f.subscriber(channels="sms"), "json_valid(channels)"),
    "channels not an array": (
        "subscribers",
        f.subscriber(channels='{"sms": true}'),
        "json_type(channels)",
    ),
    "watch list not an array": (
        "subscribers",
        f.subscriber(watch_items='"774625"'),
        "json_type(watch_items)",
    ),
    "price-drop flag not 0/1": (
        "subscribers",
        f.subscriber(price_drop_alerts=2),
        "price_drop_alerts IN (0, 1)",
    ),
    "reserve flag not 0/1": (
        "subscribers",
        f.subscriber(reserve_by_reply=2),
        "reserve_by_reply IN (0, 1)",
    ),
    "reservation state unknown": ("reservations", f.reservation(1, state="paid"), "state IN"),
    "reserved without an order": (
        "reservations",
        f.reservation(1, order_id=None),
        "order_id IS NOT NULL",
    ),
    "sending without lease": (
        "messages",
        f.message(status="sending", lease_until=None),
        "lease_until IS NOT NULL",
    ),
    "message without body": ("messages", f.message(body=None), "messages.body"),
    "zero segments": ("messages", f.message(segments=0), "segments >= 1"),
    "tokens push with topic": (
        "notifications",
        f.notification(target="tokens", topic="x"),
        "(topic IS NOT NULL)",
    ),
    "data not JSON": ("notifications", f.notification(data="{not json"), "json_valid(data)"),
    "period ends before start": (
        "reports",
        f.report(period_end="2025-12-31T00:00:00.000000+00:00"),
        "period_end > period_start",
    ),
    "running job with finish": (
        "job_runs",
        f.job_run(outcome="running", finished_at=f.LATER),
        "(finished_at IS NULL)",
    ),
    "otp never sent": ("otp_codes", f.otp_code(sends=0), "sends >= 1"),
    "zero quantity": ("order_lines", f.order_line(1, 1, quantity=0), "quantity > 0"),
}


@pytest.mark.parametrize(("table", "row", "fault"), BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_bad_rows_are_refused(
    empty: sqlite_utils.Database, table: str, row: dict[str, Any], fault: str
) -> None:
    migrations.apply(empty)
    with pytest.raises(sqlite3.IntegrityError) as caught:
        f.insert(empty, table, row)
    assert fault in str(caught.value)


def test_good_rows_are_accepted_in_every_table(empty: sqlite_utils.Database) -> None:
    migrations.apply(empty)
    ids = f.populate(empty)
    # message_counts is kept by triggers (one row per state), not written by hand.
    kept = {"_sqlite_migrations", "message_counts"}
    for table in TABLES - kept:
        assert empty.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1, table
    assert set(ids) == TABLES - kept
    assert empty.execute("PRAGMA foreign_key_check").fetchall() == []


def test_usernames_and_emails_are_unique_whatever_the_case(
    empty: sqlite_utils.Database,
) -> None:
    migrations.apply(empty)
    f.insert(empty, "accounts", f.account(username="Ravi", email="Ravi@Example.com"))
    with pytest.raises(sqlite3.IntegrityError, match=r"accounts\.username"):
        f.insert(empty, "accounts", f.account(username="ravi", email=None))
    with pytest.raises(sqlite3.IntegrityError, match=r"accounts\.email"):
        f.insert(empty, "accounts", f.account(username="other", email="ravi@example.com"))


def test_a_repeated_idempotency_key_or_inbound_id_is_refused(
    empty: sqlite_utils.Database,
) -> None:
    migrations.apply(empty)
    f.insert(empty, "messages", f.message(idempotency_key="order-7"))
    with pytest.raises(sqlite3.IntegrityError, match="idempotency_key"):
        f.insert(empty, "messages", f.message(idempotency_key="order-7"))
    f.insert(empty, "inbound_messages", f.inbound_message())
    with pytest.raises(sqlite3.IntegrityError, match="inbound_messages"):
        f.insert(empty, "inbound_messages", f.inbound_message())


def test_deleting_a_subscriber_cascades_or_unlinks(sync_db: sqlite_utils.Database) -> None:
    ids = f.populate(sync_db)
    sync_db.execute("DELETE FROM subscribers WHERE id = ?", [ids["subscribers"]])

    assert _count(sync_db, "tgtg_accounts") == 0
    assert _count(sync_db, "favorites") == 0
    for table in ("push_tokens", "messages", "inbound_messages"):
        assert _count(sync_db, table) == 1, table
        assert _value(sync_db, table, "subscriber_id") is None, table


def test_deleting_a_message_drops_its_events_and_unlinks_its_otp(
    sync_db: sqlite_utils.Database,
) -> None:
    ids = f.populate(sync_db)
    sync_db.execute("DELETE FROM messages WHERE id = ?", [ids["messages"]])
    assert _count(sync_db, "message_events") == 0
    assert _value(sync_db, "otp_codes", "message_id") is None


def test_deleting_a_notification_unlinks_its_messages(sync_db: sqlite_utils.Database) -> None:
    ids = f.populate(sync_db)
    sync_db.execute("DELETE FROM notifications WHERE id = ?", [ids["notifications"]])
    assert _value(sync_db, "messages", "notification_id") is None


def test_a_sold_product_cannot_be_deleted_until_its_orders_are(
    sync_db: sqlite_utils.Database,
) -> None:
    ids = f.populate(sync_db)
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        sync_db.execute("DELETE FROM products WHERE id = ?", [ids["products"]])
    sync_db.execute("DELETE FROM orders WHERE id = ?", [ids["orders"]])
    assert _count(sync_db, "order_lines") == 0
    sync_db.execute("DELETE FROM products WHERE id = ?", [ids["products"]])
    assert _count(sync_db, "price_changes") == 0


def test_deleting_an_account_keeps_its_orders_and_price_changes(
    sync_db: sqlite_utils.Database,
) -> None:
    ids = f.populate(sync_db)
    sync_db.execute("DELETE FROM accounts WHERE id = ?", [ids["accounts"]])
    assert _value(sync_db, "orders", "account_id") is None
    assert _value(sync_db, "price_changes", "account_id") is None


def test_a_row_pointing_nowhere_is_refused(sync_db: sqlite_utils.Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        f.insert(sync_db, "message_events", f.message_event(message_id=12345))


def _add_unknown_migration(db: sqlite_utils.Database, name: str) -> None:
    db.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
        ["shopbell", name, f.NOW],
    )


def _count(db: sqlite_utils.Database, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _value(db: sqlite_utils.Database, table: str, column: str) -> Any:
    return db.execute(f"SELECT {column} FROM {table}").fetchone()[0]
