"""The schema, as append-only named migrations; never edit one that has shipped, add the next."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from storage.errors import SchemaTooNewError

MIGRATIONS = Migrations("shopbell")

_MigrationFn = Callable[[sqlite_utils.Database], None]
# Our own list of names: Migrations keeps its registry private, and status() needs it to tell
# a newer shopbell's migrations from ours.
_NAMES: list[str] = []

# Conventions for every table below:
# - Times are TEXT in UTC ISO-8601 written by the injected clock (`daemon.runtime.clock`), so
#   they have no SQL DEFAULT: CURRENT_TIMESTAMP has another format, and mixed formats would
#   break the text comparisons the dispatcher and the reports rely on.
# - STRICT tables, so 12.50 in a minor-units column, or words in a number column, are refused
#   instead of stored.
# - Money is INTEGER minor units; booleans are INTEGER 0/1; JSON columns are checked valid.
# - Every foreign key column has an index (explicit or as the left column of a unique one):
#   without it each parent DELETE scans the whole child table to apply ON DELETE.


def _run(db: sqlite_utils.Database, script: str) -> None:
    # One statement at a time through db.execute, because the migration runs inside
    # db.atomic() and sqlite3's executescript() would COMMIT first. complete_statement() is
    # SQLite's own tokenizer, so a ";" inside a comment or a string does not split a statement.
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {statement.strip()[:60]}")


def _migration(fn: _MigrationFn) -> _MigrationFn:
    """Register `fn` under its own name (unique, or Migrations raises) and remember the name."""
    registered = MIGRATIONS(name=fn.__name__)(fn)
    _NAMES.append(fn.__name__)
    return registered


@_migration
def m001_create_subscribers(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            name TEXT,
            email TEXT,
            -- The shape of E.164 only; the service validates numbers with phonenumbers.
            phone TEXT UNIQUE CHECK (
                phone IS NULL OR (
                    phone GLOB '+[1-9]*'
                    AND NOT substr(phone, 2) GLOB '*[^0-9]*'
                    AND length(phone) BETWEEN 3 AND 16
                )
            ),
            channels TEXT NOT NULL DEFAULT '["sms"]'
                CHECK (json_valid(channels) AND json_type(channels) = 'array'),
            opted_out_at TEXT,
            verified_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        ) STRICT;

        CREATE TABLE push_tokens (
            id INTEGER PRIMARY KEY,
            token TEXT NOT NULL UNIQUE,
            subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE SET NULL,
            platform TEXT,
            created_at TEXT NOT NULL,
            last_seen_at TEXT,
            invalid_at TEXT,
            invalid_reason TEXT
        ) STRICT;

        CREATE INDEX idx_push_tokens_subscriber_id ON push_tokens (subscriber_id);
        """,
    )


@_migration
def m002_create_messages(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            target TEXT NOT NULL CHECK (target IN ('tokens', 'topic')),
            topic TEXT,
            title TEXT,
            body TEXT,
            data TEXT CHECK (data IS NULL OR json_valid(data)),
            created_at TEXT NOT NULL,
            -- A topic push names its topic; a push to tokens has none.
            CHECK ((target = 'topic') = (topic IS NOT NULL))
        ) STRICT;

        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL CHECK (channel IN ('sms', 'push', 'email')),
            recipient TEXT NOT NULL,
            subject TEXT,
            body TEXT NOT NULL,
            kind TEXT NOT NULL
                CHECK (kind IN ('otp', 'alert', 'manual', 'report', 'reply', 'system')),
            -- Lower runs first: the dispatcher claims by (priority, due_at, id).
            priority INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN (
                'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled'
            )),
            idempotency_key TEXT UNIQUE,
            subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE SET NULL,
            notification_id INTEGER REFERENCES notifications(id) ON DELETE SET NULL,
            encoding TEXT CHECK (encoding IS NULL OR encoding IN ('gsm7', 'ucs2')),
            segments INTEGER CHECK (segments IS NULL OR segments >= 1),
            -- The provider of the latest attempt, and where the message stands in its channel's
            -- chain: failover moves chain_position on and starts provider_attempts again.
            provider TEXT,
            provider_message_id TEXT,
            chain_position INTEGER NOT NULL DEFAULT 0 CHECK (chain_position >= 0),
            provider_attempts INTEGER NOT NULL DEFAULT 0 CHECK (provider_attempts >= 0),
            attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            last_error TEXT,
            -- The provider's own error code of the last failure (Twilio 21211, CMS 500, ...).
            error_code TEXT,
            validity_seconds INTEGER CHECK (validity_seconds IS NULL OR validity_seconds > 0),
            created_at TEXT NOT NULL,
            -- When the next attempt may start (DESIGN's next_attempt_at).
            due_at TEXT NOT NULL,
            lease_until TEXT,
            sent_at TEXT,
            delivered_at TEXT,
            updated_at TEXT NOT NULL,
            -- Crash recovery finds stuck sends by their lease, so a send always has one.
            CHECK (status <> 'sending' OR lease_until IS NOT NULL)
        ) STRICT;

        CREATE INDEX idx_messages_status_priority_due_at_id
            ON messages (status, priority, due_at, id);
        -- The dispatcher's "when is the next message due?" without scanning sent history.
        CREATE INDEX idx_messages_queued_due_at ON messages (due_at) WHERE status = 'queued';
        CREATE INDEX idx_messages_recipient_created_at ON messages (recipient, created_at);
        CREATE INDEX idx_messages_created_at ON messages (created_at);
        -- Not unique: a modem's message references wrap around at 255.
        CREATE INDEX idx_messages_provider_provider_message_id
            ON messages (provider, provider_message_id);
        CREATE INDEX idx_messages_subscriber_id ON messages (subscriber_id);
        CREATE INDEX idx_messages_notification_id ON messages (notification_id);

        CREATE TABLE message_events (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            -- The state the message moved to.
            state TEXT NOT NULL CHECK (state IN (
                'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled'
            )),
            provider TEXT,
            detail TEXT
        ) STRICT;

        CREATE INDEX idx_message_events_message_id_id ON message_events (message_id, id);
        """,
    )


@_migration
def m003_create_inbound_messages(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE inbound_messages (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL CHECK (source IN ('twilio', 'modem', 'fast2sms', 'console')),
            sender TEXT NOT NULL,
            recipient TEXT,
            body TEXT NOT NULL,
            provider_message_id TEXT,
            received_at TEXT NOT NULL,
            keyword TEXT,
            subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE SET NULL,
            handled_at TEXT,
            -- A webhook retried by Twilio, or a modem message read again at start, is one row.
            UNIQUE (source, provider_message_id)
        ) STRICT;

        CREATE INDEX idx_inbound_messages_sender_received_at
            ON inbound_messages (sender, received_at);
        CREATE INDEX idx_inbound_messages_subscriber_id ON inbound_messages (subscriber_id);
        """,
    )


@_migration
def m004_create_otp_codes(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE otp_codes (
            id INTEGER PRIMARY KEY,
            phone TEXT NOT NULL,
            purpose TEXT NOT NULL CHECK (purpose IN ('login', 'signup', 'verify-phone')),
            code_hmac TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            sends INTEGER NOT NULL DEFAULT 1 CHECK (sends >= 1),
            last_sent_at TEXT,
            consumed_at TEXT,
            message_id INTEGER REFERENCES messages(id) ON DELETE SET NULL
        ) STRICT;

        CREATE INDEX idx_otp_codes_phone_purpose ON otp_codes (phone, purpose);
        CREATE INDEX idx_otp_codes_message_id ON otp_codes (message_id);
        """,
    )


@_migration
def m005_create_tgtg_accounts(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE tgtg_accounts (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL UNIQUE
                REFERENCES subscribers(id) ON DELETE CASCADE,
            email TEXT NOT NULL,
            access_token TEXT,
            refresh_token TEXT,
            user_id TEXT,
            cookie TEXT,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'active', 'blocked', 'error', 'disabled')),
            state_detail TEXT,
            polling_id TEXT,
            access_token_expires_at TEXT,
            last_poll_at TEXT,
            last_success_at TEXT,
            backoff_until TEXT,
            failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        ) STRICT;

        CREATE TABLE favorites (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            item_id TEXT NOT NULL,
            store_name TEXT,
            display_name TEXT,
            -- The last count seen, kept so a restart neither repeats nor misses an alert.
            items_available INTEGER NOT NULL DEFAULT 0 CHECK (items_available >= 0),
            bags_available INTEGER NOT NULL DEFAULT 0 CHECK (bags_available >= 0),
            pickup_start TEXT,
            pickup_end TEXT,
            price_minor INTEGER CHECK (price_minor IS NULL OR price_minor >= 0),
            currency TEXT CHECK (currency IS NULL OR length(currency) = 3),
            last_alerted_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            -- Also serves lookups by subscriber (its left column).
            UNIQUE (subscriber_id, item_id)
        ) STRICT;
        """,
    )


@_migration
def m006_create_accounts(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            -- NOCASE: "Asha" and "asha" are one login, and lookups need no lower().
            username TEXT NOT NULL UNIQUE COLLATE NOCASE,
            email TEXT UNIQUE COLLATE NOCASE,
            phone TEXT,
            full_name TEXT,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('customer', 'cashier', 'manager', 'owner')),
            failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
            locked_until TEXT,
            disabled_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        ) STRICT;
        """,
    )


@_migration
def m007_create_products(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE products (
            id INTEGER PRIMARY KEY,
            sku TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            brand TEXT,
            category TEXT,
            price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
            -- No lower bound: a miscounted shelf must not stop a sale at the till.
            stock INTEGER NOT NULL DEFAULT 0,
            active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        ) STRICT;

        CREATE INDEX idx_products_category ON products (category);

        CREATE TABLE price_changes (
            id INTEGER PRIMARY KEY,
            product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE CASCADE,
            old_price_minor INTEGER NOT NULL CHECK (old_price_minor >= 0),
            new_price_minor INTEGER NOT NULL CHECK (new_price_minor >= 0),
            account_id INTEGER REFERENCES accounts(id) ON DELETE SET NULL,
            changed_at TEXT NOT NULL
        ) STRICT;

        CREATE INDEX idx_price_changes_product_id_changed_at
            ON price_changes (product_id, changed_at);
        CREATE INDEX idx_price_changes_account_id ON price_changes (account_id);
        """,
    )


@_migration
def m008_create_orders(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            account_id INTEGER REFERENCES accounts(id) ON DELETE SET NULL,
            status TEXT NOT NULL DEFAULT 'placed'
                CHECK (status IN ('placed', 'paid', 'cancelled', 'refunded')),
            total_minor INTEGER NOT NULL CHECK (total_minor >= 0),
            note TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        ) STRICT;

        CREATE INDEX idx_orders_created_at ON orders (created_at);
        CREATE INDEX idx_orders_account_id ON orders (account_id);

        CREATE TABLE order_lines (
            id INTEGER PRIMARY KEY,
            order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
            -- RESTRICT: a product that was sold is deactivated, never deleted from history.
            product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE RESTRICT,
            quantity INTEGER NOT NULL CHECK (quantity > 0),
            unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
            line_total_minor INTEGER NOT NULL CHECK (line_total_minor >= 0)
        ) STRICT;

        CREATE INDEX idx_order_lines_order_id ON order_lines (order_id);
        CREATE INDEX idx_order_lines_product_id ON order_lines (product_id);
        """,
    )


@_migration
def m009_create_reports(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE reports (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('daily', 'weekly')),
            period_start TEXT NOT NULL,
            period_end TEXT NOT NULL,
            generated_at TEXT NOT NULL,
            content TEXT NOT NULL CHECK (json_valid(content)),
            sent_at TEXT,
            CHECK (period_end > period_start),
            -- A re-run of a missed schedule finds the report instead of writing a second.
            UNIQUE (kind, period_start)
        ) STRICT;
        """,
    )


@_migration
def m010_create_job_runs(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE job_runs (
            id INTEGER PRIMARY KEY,
            job_id TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT NOT NULL DEFAULT 'running'
                CHECK (outcome IN ('running', 'ok', 'error', 'skipped')),
            detail TEXT,
            CHECK ((outcome = 'running') = (finished_at IS NULL))
        ) STRICT;

        CREATE INDEX idx_job_runs_job_id_started_at ON job_runs (job_id, started_at);
        """,
    )


@_migration
def m011_create_message_parts(db: sqlite_utils.Database) -> None:
    # A modem sends a long message as several segments, each with its own reference (TP-MR,
    # one byte, wrapping at 256) and its own status report; a report is matched by
    # (provider, reference, recipient) within a time window, newest first.
    _run(
        db,
        """
        CREATE TABLE message_parts (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL CHECK (seq >= 1),
            provider TEXT NOT NULL,
            reference TEXT NOT NULL,
            recipient TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'sent'
                CHECK (status IN ('sent', 'delivered', 'failed')),
            status_code INTEGER,
            reported_at TEXT,
            UNIQUE (message_id, seq)
        ) STRICT;

        CREATE INDEX idx_message_parts_provider_reference_recipient_sent_at
            ON message_parts (provider, reference, recipient, sent_at);
        """,
    )


@_migration
def m012_index_sales_for_reports(db: sqlite_utils.Database) -> None:
    # Covering indexes for the sales reports: a range of orders by time, and their lines,
    # read from the indexes alone without touching the tables (a year of 1,000,000 lines
    # in bench/reports.py). Their left columns also serve the foreign keys, so the narrower
    # indexes of m008 go.
    _run(
        db,
        """
        CREATE INDEX idx_orders_created_at_status_account_id_total_minor
            ON orders (created_at, status, account_id, total_minor);
        DROP INDEX idx_orders_created_at;

        CREATE INDEX idx_order_lines_order_id_product_id_quantity_line_total_minor
            ON order_lines (order_id, product_id, quantity, line_total_minor);
        DROP INDEX idx_order_lines_order_id;
        """,
    )


@_migration
def m013_add_subscriber_watch_prefs(db: sqlite_utils.Database) -> None:
    # What TGTG notifier users ask for most after "keep working": alert only for chosen items
    # (an empty list watches every favourite) and an opt-in alert when the price goes down.
    _run(
        db,
        """
        ALTER TABLE subscribers ADD COLUMN watch_items TEXT NOT NULL DEFAULT '[]'
            CHECK (json_valid(watch_items) AND json_type(watch_items) = 'array');
        ALTER TABLE subscribers ADD COLUMN price_drop_alerts INTEGER NOT NULL DEFAULT 0
            CHECK (price_drop_alerts IN (0, 1));
        """,
    )


@_migration
def m014_create_owner_alerts(db: sqlite_utils.Database) -> None:
    # What the daemon told the owner (daemon/services/owner.py): one open row per key until the
    # condition clears, so an alert goes out once per key even across restarts; cleared rows
    # stay as the history the hourly limit counts.
    _run(
        db,
        """
        CREATE TABLE owner_alerts (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,
            text TEXT NOT NULL,
            subject TEXT,
            raised_at TEXT NOT NULL,
            -- When its messages were written to the outbox; NULL after a crash in between,
            -- and the next start queues them under the same idempotency keys.
            queued_at TEXT,
            cleared_at TEXT
        ) STRICT;

        CREATE UNIQUE INDEX idx_owner_alerts_key_open ON owner_alerts (key)
            WHERE cleared_at IS NULL;
        CREATE INDEX idx_owner_alerts_raised_at ON owner_alerts (raised_at);
        """,
    )


@_migration
def m015_index_messages_for_the_log(db: sqlite_utils.Database) -> None:
    # The message log (API and TUI) filters by status, kind or channel and pages back by id.
    # Without these, a filter matching few rows scans the whole log (0.3-1.8 s a page at
    # 1,000,000 messages in bench/tui.py); with them a page is a short index range.
    _run(
        db,
        """
        CREATE INDEX idx_messages_status_id ON messages (status, id);
        CREATE INDEX idx_messages_kind_id ON messages (kind, id);
        CREATE INDEX idx_messages_channel_id ON messages (channel, id);
        """,
    )


@_migration
def m016_create_reservations(db: sqlite_utils.Database) -> None:
    # Reserve by reply (issue 18): a subscriber who opted in may answer an alert SMS with "R"
    # to reserve one bag on their own TGTG account. One row per alert that offered it, keyed
    # by the alert's idempotency key, so one alert never reserves twice.
    _run(
        db,
        """
        ALTER TABLE subscribers ADD COLUMN reserve_by_reply INTEGER NOT NULL DEFAULT 0
            CHECK (reserve_by_reply IN (0, 1));

        CREATE TABLE reservations (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            item_id TEXT NOT NULL,
            item_name TEXT NOT NULL,
            alert_key TEXT NOT NULL UNIQUE,
            -- The item's pick-up window end as the alert saw it; no reservation after it.
            pickup_end TEXT,
            offered_at TEXT NOT NULL,
            -- offered: the alert said "reply R"; reserving: a call to TGTG is under way;
            -- reserved: TGTG holds the order unpaid; failed: TGTG said no (detail says why);
            -- cancelled: "C" gave the order up.
            state TEXT NOT NULL DEFAULT 'offered' CHECK (state IN (
                'offered', 'reserving', 'reserved', 'failed', 'cancelled'
            )),
            order_id TEXT,
            detail TEXT,
            reserved_at TEXT,
            -- Until when TGTG holds the unpaid order.
            hold_until TEXT,
            cancelled_at TEXT,
            updated_at TEXT NOT NULL,
            CHECK (state NOT IN ('reserved', 'cancelled') OR order_id IS NOT NULL)
        ) STRICT;

        CREATE INDEX idx_reservations_subscriber_id_offered_at
            ON reservations (subscriber_id, offered_at);
        CREATE INDEX idx_reservations_subscriber_id_reserved_at
            ON reservations (subscriber_id, reserved_at) WHERE reserved_at IS NOT NULL;
        """,
    )


@_migration
def m017_index_messages_for_admission(db: sqlite_utils.Database) -> None:
    # Backpressure and the spending cap (issue 19) read these on every message queued: how
    # many wait in a channel (and of a kind), and how many SMS segments were queued since a
    # time. Both are partial covering indexes, so each count reads only the rows it counts.
    # A segment spent is one queued, sending or sent: not a cancelled message, nor one that
    # failed with no provider taking it (sent_at is set when one does).
    _run(
        db,
        """
        CREATE INDEX idx_messages_waiting_channel_kind ON messages (channel, kind)
            WHERE status IN ('queued', 'sending');
        CREATE INDEX idx_messages_sms_spend_created_at ON messages (created_at, segments)
            WHERE channel = 'sms' AND status != 'cancelled'
                AND NOT (status = 'failed' AND sent_at IS NULL);
        """,
    )


@_migration
def m018_count_messages_by_status(db: sqlite_utils.Database) -> None:
    # Health, the TUI's status line, the systemd status and /metrics show how many messages
    # are in each state. A GROUP BY over the log reads every row: 81 ms at 1,000,000 messages
    # on the one database thread, holding up every write (issue 20). These triggers keep the
    # counts in the same transaction as every insert, state change and delete, so reading them
    # costs the same at 10,000,000 rows as at 1,000.
    _run(
        db,
        """
        CREATE TABLE message_counts (
            status TEXT PRIMARY KEY,
            count INTEGER NOT NULL
        ) STRICT;

        INSERT INTO message_counts (status, count)
            SELECT value, 0 FROM json_each(
                '["queued", "sending", "sent", "delivered", "undelivered", "failed", "cancelled"]'
            );
        UPDATE message_counts SET count = (
            SELECT count(*) FROM messages WHERE messages.status = message_counts.status
        );

        CREATE TRIGGER messages_counted_on_insert AFTER INSERT ON messages BEGIN
            UPDATE message_counts SET count = count + 1 WHERE status = new.status;
        END;
        CREATE TRIGGER messages_counted_on_delete AFTER DELETE ON messages BEGIN
            UPDATE message_counts SET count = count - 1 WHERE status = old.status;
        END;
        CREATE TRIGGER messages_counted_on_status AFTER UPDATE OF status ON messages
            WHEN old.status IS NOT new.status BEGIN
            UPDATE message_counts SET count = count - 1 WHERE status = old.status;
            UPDATE message_counts SET count = count + 1 WHERE status = new.status;
        END;
        """,
    )


@_migration
def m019_index_every_filter(db: sqlite_utils.Database) -> None:
    # Issue 20: every list query's filter and sort, and every periodic delete, served by an
    # index (tests/storage/test_query_plans.py asks SQLite for each plan). The message log by
    # recipient pages back by id (the (recipient, created_at) index stays for the rate limit);
    # retention finds old rows by their time instead of reading each table to its end; the OTP
    # sweep forgets old codes by theirs. Only cleared owner alerts are in their index.
    _run(
        db,
        """
        CREATE INDEX idx_messages_recipient_id ON messages (recipient, id);
        CREATE INDEX idx_notifications_created_at ON notifications (created_at);
        CREATE INDEX idx_inbound_messages_received_at ON inbound_messages (received_at);
        CREATE INDEX idx_job_runs_started_at ON job_runs (started_at);
        CREATE INDEX idx_owner_alerts_cleared_at ON owner_alerts (cleared_at)
            WHERE cleared_at IS NOT NULL;
        CREATE INDEX idx_otp_codes_created_at ON otp_codes (created_at);
        """,
    )


@_migration
def m020_index_otp_messages_not_yet_redacted(db: sqlite_utils.Database) -> None:
    # The OTP sweep blanks each one-time code's message once sent, every minute; by kind alone
    # it read every OTP message ever kept (180 days of them) to find the few not blanked yet.
    # The text is storage/otp.py REDACTED_BODY, written out: a partial index's WHERE must be
    # constant, and the sweep's query says the same words.
    _run(
        db,
        """
        CREATE INDEX idx_messages_otp_not_redacted ON messages (id)
            WHERE kind = 'otp' AND body <> '(one-time code removed)';
        """,
    )


@dataclass(frozen=True)
class MigrationStatus:
    """Which migrations a database has, lacks, and has that this version does not know."""

    applied: tuple[str, ...]
    pending: tuple[str, ...]
    unknown: tuple[str, ...]


def status(db: sqlite_utils.Database) -> MigrationStatus:
    """Read the migration state of `db`; writes nothing."""
    applied = tuple(migration.name for migration in MIGRATIONS.applied(db))
    return MigrationStatus(
        applied=applied,
        pending=tuple(migration.name for migration in MIGRATIONS.pending(db)),
        unknown=tuple(name for name in applied if name not in _NAMES),
    )


def names() -> tuple[str, ...]:
    """Every migration this version knows, in the order they apply."""
    return tuple(_NAMES)


def ensure_known(db: sqlite_utils.Database) -> MigrationStatus:
    """Raise SchemaTooNewError when `db` was migrated by a newer shopbell; writes nothing."""
    current = status(db)
    if current.unknown:
        raise SchemaTooNewError(database_path(db), current.unknown)
    return current


def apply(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations, each in its own transaction; return the names applied."""
    before = set(ensure_known(db).applied)
    MIGRATIONS.apply(db)
    # Compared, not assumed: a `db migrate` run at the same moment may have applied some.
    return [name for name in status(db).applied if name not in before]


def database_path(db: sqlite_utils.Database) -> Path | None:
    """The file behind `db`, or None for an in-memory database."""
    for row in db.execute("PRAGMA database_list").fetchall():
        if row[1] == "main":
            return Path(row[2]) if row[2] else None
    return None
