"""TGTG accounts and favourites in storage: logins, token rotation, counts shared per item."""

from __future__ import annotations

import pytest
import sqlite_utils

from storage import subscribers
from storage import tgtg as rows

T0 = "2026-01-01T12:00:00.000000+00:00"
T1 = "2026-01-01T12:01:00.000000+00:00"


def person(db: sqlite_utils.Database, phone: str) -> int:
    return subscribers.create(db, {"phone": phone}, T0).id


def test_subscriber_crud_and_unique_phone(sync_db: sqlite_utils.Database) -> None:
    sid = person(sync_db, "+33611111111")
    created = subscribers.get(sync_db, sid)
    assert created is not None and created.channels == ("sms",)
    with pytest.raises(subscribers.DuplicatePhone):
        subscribers.create(sync_db, {"phone": "+33611111111"}, T0)
    other = person(sync_db, "+33622222222")
    with pytest.raises(subscribers.DuplicatePhone):
        subscribers.update(sync_db, other, {"phone": "+33611111111"}, T1)
    updated = subscribers.update(sync_db, sid, {"email": "A@x.org", "channels": ["push"]}, T1)
    assert updated is not None and updated.channels == ("push",)
    assert subscribers.by_email(sync_db, "a@X.org") == updated
    with pytest.raises(ValueError, match="unknown subscriber fields"):
        subscribers.update(sync_db, sid, {"id": 5}, T1)
    assert subscribers.delete(sync_db, sid) and subscribers.get(sync_db, sid) is None


def test_login_then_tokens_then_rotation(sync_db: sqlite_utils.Database) -> None:
    sid = person(sync_db, "+33611111111")
    account = rows.start_login(sync_db, sid, "a@x.org", "poll-1", T0)
    assert account.state == "pending" and account.polling_id == "poll-1"
    rows.save_tokens(
        sync_db,
        account.id,
        access_token="at1",
        refresh_token="rt1",
        cookie="datadome=1",
        expires_at=None,
        now=T0,
        activate=True,
    )
    active = rows.account_of(sync_db, sid)
    assert active is not None and active.state == "active" and active.polling_id is None
    # A refresh without a new cookie keeps the old one; the refresh token rotates.
    rows.save_tokens(
        sync_db,
        account.id,
        access_token="at2",
        refresh_token="rt2",
        cookie=None,
        expires_at=None,
        now=T1,
    )
    rotated = rows.get_account(sync_db, account.id)
    assert rotated is not None
    assert (rotated.access_token, rotated.refresh_token, rotated.cookie) == (
        "at2",
        "rt2",
        "datadome=1",
    )
    # A new login keeps the tokens until it succeeds.
    again = rows.start_login(sync_db, sid, "a@x.org", "poll-2", T1)
    assert again.id == account.id and again.refresh_token == "rt2" and again.state == "pending"
    assert rows.count_by_state(sync_db) == {"pending": 1}


def test_an_observation_updates_every_subscriber_watching_the_item(
    sync_db: sqlite_utils.Database,
) -> None:
    ana, ben = person(sync_db, "+33611111111"), person(sync_db, "+33622222222")
    rows.apply_observations(sync_db, ana, [rows.Seen("7", "Deli", "Deli", 0)], T0)
    rows.apply_observations(sync_db, ben, [rows.Seen("7", "Deli", "Deli", 0)], T0)
    rows.apply_observations(sync_db, ana, [rows.Seen("8", "Cafe", None, 1)], T0)
    before = rows.previous_counts(sync_db, ["7"])
    assert [(p.subscriber_id, p.items_available) for p in before] == [(ana, 0), (ben, 0)]
    rows.apply_observations(
        sync_db, ana, [rows.Seen("7", "Deli", "Deli", 4)], T1, alerted=[(ana, "7"), (ben, "7")]
    )
    after = {(f.subscriber_id, f.item_id): f for f in rows.favorites_of(sync_db)}
    assert after[(ana, "7")].items_available == after[(ben, "7")].items_available == 4
    assert after[(ben, "7")].bags_available == 1
    assert after[(ben, "7")].last_alerted_at is not None
    assert (ben, "8") not in after  # Ben does not watch item 8


def test_watch_list_and_price_drop_flag(sync_db: sqlite_utils.Database) -> None:
    sid = person(sync_db, "+33611111111")
    fresh = subscribers.get(sync_db, sid)
    assert fresh is not None and fresh.watch_items == () and fresh.price_drop_alerts is False
    changed = subscribers.update(
        sync_db, sid, {"watch_items": ["7", "8", "7"], "price_drop_alerts": True}, T1
    )
    assert changed is not None and changed.watch_items == ("7", "8")
    assert changed.price_drop_alerts is True
    assert subscribers.get_many(sync_db, [sid, sid, 999]) == {sid: changed}


def test_dropped_favourites_are_forgotten(sync_db: sqlite_utils.Database) -> None:
    ana, ben = person(sync_db, "+33611111111"), person(sync_db, "+33622222222")
    seen = [rows.Seen("7", "Deli", None, 0), rows.Seen("8", "Cafe", None, 2)]
    rows.apply_observations(sync_db, ana, seen, T0)
    rows.apply_observations(sync_db, ben, seen[:1], T0)
    assert rows.forget_dropped(sync_db, ana, ["8"]) == ["7"]
    assert [(f.subscriber_id, f.item_id) for f in rows.favorites_of(sync_db)] == [
        (ana, "8"),
        (ben, "7"),  # only Ana's list changed
    ]
    assert rows.forget_dropped(sync_db, ana, []) == ["8"]  # an empty list: none left
    assert [a.subscriber_id for a in rows.accounts_watching(sync_db, "7")] == []


def test_the_cookie_is_saved_alone(sync_db: sqlite_utils.Database) -> None:
    sid = person(sync_db, "+33611111111")
    account = rows.start_login(sync_db, sid, "a@x.org", "poll-1", T0)
    rows.save_cookie(sync_db, account.id, "datadome=dd2", T1)
    saved = rows.get_account(sync_db, account.id)
    assert saved is not None and saved.cookie == "datadome=dd2" and saved.state == "pending"
