"""The counts of messages by state that health, the TUI, the systemd status and /metrics read
are kept by triggers in the same transaction as every change (migration m018), so they equal
a full count whatever the storage functions do, and a database migrated with rows in it
starts with them right."""

from __future__ import annotations

import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import migrations
from storage.messages import NewMessage, cancel_message, count_by_status, insert_message

NOW = "2026-03-01T09:00:00.000000+00:00"
STATES = ["queued", "sending", "sent", "delivered", "undelivered", "failed", "cancelled"]


def fresh() -> sqlite_utils.Database:
    db = sqlite_utils.Database(memory=True)
    migrations.apply(db)
    return db


def counted(db: sqlite_utils.Database) -> dict[str, int]:
    rows = db.execute("SELECT status, count(*) FROM messages GROUP BY status").fetchall()
    return {status: n for status, n in rows}


def new(n: int) -> NewMessage:
    return NewMessage(
        channel="sms", recipient="+33612345678", body=f"#{n}", kind="manual", priority=20
    )


# Each step: insert a message, move one to a state, or delete one.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 0)),
        st.tuples(st.sampled_from(STATES), st.integers(0, 30)),
        st.tuples(st.just("delete"), st.integers(0, 30)),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_the_kept_counts_equal_a_full_count_after_any_changes(plan: list[tuple[str, int]]) -> None:
    db = fresh()
    made = 0
    for action, pick in plan:
        ids = [row[0] for row in db.execute("SELECT id FROM messages ORDER BY id").fetchall()]
        if action == "insert" or not ids:
            insert_message(db, new(made), NOW)
            made += 1
        elif action == "delete":
            db.execute("DELETE FROM messages WHERE id = ?", [ids[pick % len(ids)]])
        else:
            # A message being sent holds a lease (the table's own rule).
            lease = NOW if action == "sending" else None
            db.execute(
                "UPDATE messages SET status = ?, lease_until = ? WHERE id = ?",
                [action, lease, ids[pick % len(ids)]],
            )
        assert count_by_status(db) == counted(db)


def test_a_database_migrated_with_messages_in_it_starts_with_the_right_counts() -> None:
    db = sqlite_utils.Database(memory=True)
    # A shop's database from before m018, with its log.
    migrations.MIGRATIONS.apply(db, stop_before="m018_count_messages_by_status")
    for n in range(5):
        insert_message(db, new(n), NOW)
    message, _ = insert_message(db, new(99), NOW)
    cancel_message(db, message.id, "by hand", NOW)
    migrations.apply(db)
    assert count_by_status(db) == {"queued": 5, "cancelled": 1}
    # And they go on from there.
    cancel_message(db, 1, "by hand", NOW)
    assert count_by_status(db) == counted(db) == {"queued": 4, "cancelled": 2}
