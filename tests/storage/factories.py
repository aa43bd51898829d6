"""Valid rows for every table, with every column filled, for tests to insert and vary."""

from __future__ import annotations

from typing import Any

import sqlite_utils

NOW = "2026-01-01T12:00:00.000000+00:00"
LATER = "2026-01-01T12:05:00.000000+00:00"


def insert(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> int:
    """INSERT `row` with plain SQL (no sqlite-utils type magic) and return its id."""
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    cursor = db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def subscriber(**over: Any) -> dict[str, Any]:
    return {
        "name": "Asha Patel",
        "email": "asha@example.com",
        "phone": "+447700900123",
        "channels": '["sms", "push"]',
        "opted_out_at": None,
        "verified_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
        "watch_items": '["774625"]',
        "price_drop_alerts": 1,
        "reserve_by_reply": 1,
    } | over


def push_token(subscriber_id: int | None, **over: Any) -> dict[str, Any]:
    return {
        "token": "fcm-token-secret-0001",
        "subscriber_id": subscriber_id,
        "platform": "android",
        "created_at": NOW,
        "last_seen_at": LATER,
        "invalid_at": None,
        "invalid_reason": None,
    } | over


def tgtg_account(subscriber_id: int, **over: Any) -> dict[str, Any]:
    return {
        "subscriber_id": subscriber_id,
        "email": "asha@example.com",
        "access_token": "access-secret-0001",
        "refresh_token": "refresh-secret-0001",
        "user_id": "12345",
        "cookie": "datadome=cookie-secret-0001",
        "state": "active",
        "state_detail": None,
        "polling_id": "polling-secret-0001",
        "access_token_expires_at": LATER,
        "last_poll_at": NOW,
        "last_success_at": NOW,
        "backoff_until": None,
        "failures": 0,
        "created_at": NOW,
        "updated_at": NOW,
    } | over


def favorite(subscriber_id: int, **over: Any) -> dict[str, Any]:
    return {
        "subscriber_id": subscriber_id,
        "item_id": "item-42",
        "store_name": "Corner Bakery",
        "display_name": "Surprise bag",
        "items_available": 2,
        "bags_available": 2,
        "pickup_start": NOW,
        "pickup_end": LATER,
        "price_minor": 399,
        "currency": "GBP",
        "last_alerted_at": None,
        "created_at": NOW,
        "updated_at": NOW,
    } | over


def notification(**over: Any) -> dict[str, Any]:
    return {
        "target": "topic",
        "topic": "offers",
        "title": "Fresh bread",
        "body": "Bags are in",
        "data": '{"screen": "offers"}',
        "created_at": NOW,
    } | over


def message(**over: Any) -> dict[str, Any]:
    return {
        "channel": "sms",
        "recipient": "+447700900123",
        "subject": None,
        "body": "Your code is 424242",
        "kind": "otp",
        "priority": 10,
        "status": "queued",
        "idempotency_key": None,
        "subscriber_id": None,
        "notification_id": None,
        "encoding": "gsm7",
        "segments": 1,
        "provider": None,
        "provider_message_id": None,
        "attempts": 0,
        "last_error": None,
        "validity_seconds": 300,
        "created_at": NOW,
        "due_at": NOW,
        "lease_until": None,
        "sent_at": None,
        "delivered_at": None,
        "updated_at": NOW,
    } | over


def message_event(message_id: int, **over: Any) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "at": NOW,
        "state": "queued",
        "provider": None,
        "detail": "enqueued",
    } | over


def message_part(message_id: int, **over: Any) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "seq": 1,
        "provider": "modem",
        "reference": "17",
        "recipient": "+33612345678",
        "sent_at": NOW,
        "status": "sent",
        "status_code": None,
        "reported_at": None,
    } | over


def inbound_message(**over: Any) -> dict[str, Any]:
    return {
        "source": "twilio",
        "sender": "+447700900123",
        "recipient": "+447700900999",
        "body": "STOP",
        "provider_message_id": "SM0001",
        "received_at": NOW,
        "keyword": "STOP",
        "subscriber_id": None,
        "handled_at": LATER,
    } | over


def otp_code(**over: Any) -> dict[str, Any]:
    return {
        "phone": "+447700900123",
        "purpose": "login",
        "code_hmac": "hmac-secret-0001",
        "created_at": NOW,
        "expires_at": LATER,
        "attempts": 0,
        "sends": 1,
        "last_sent_at": NOW,
        "consumed_at": None,
        "message_id": None,
    } | over


def account(**over: Any) -> dict[str, Any]:
    return {
        "username": "ravi",
        "email": "ravi@example.com",
        "phone": "+447700900456",
        "full_name": "Ravi Shah",
        "password_hash": "$argon2id$hash-secret-0001",
        "role": "manager",
        "failed_logins": 0,
        "locked_until": None,
        "disabled_at": None,
        "created_at": NOW,
        "updated_at": NOW,
    } | over


def product(**over: Any) -> dict[str, Any]:
    return {
        "sku": "HP-001",
        "name": "Headphones",
        "brand": "Acme",
        "category": "sound devices",
        "price_minor": 2999,
        "stock": 5,
        "active": 1,
        "created_at": NOW,
        "updated_at": NOW,
    } | over


def price_change(product_id: int, account_id: int | None, **over: Any) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "old_price_minor": 2999,
        "new_price_minor": 2499,
        "account_id": account_id,
        "changed_at": NOW,
    } | over


def order(account_id: int | None, **over: Any) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "status": "placed",
        "total_minor": 5998,
        "note": "gift wrap",
        "created_at": NOW,
        "updated_at": NOW,
    } | over


def order_line(order_id: int, product_id: int, **over: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "product_id": product_id,
        "quantity": 2,
        "unit_price_minor": 2999,
        "line_total_minor": 5998,
    } | over


def report(**over: Any) -> dict[str, Any]:
    return {
        "kind": "daily",
        "period_start": "2026-01-01T00:00:00.000000+00:00",
        "period_end": "2026-01-02T00:00:00.000000+00:00",
        "generated_at": NOW,
        "content": '{"total_minor": 5998, "orders": 1}',
        "sent_at": None,
    } | over


def job_run(**over: Any) -> dict[str, Any]:
    return {
        "job_id": "report-daily",
        "started_at": NOW,
        "finished_at": LATER,
        "outcome": "ok",
        "detail": None,
    } | over


def owner_alert(**over: Any) -> dict[str, Any]:
    return {
        "key": "disk-low",
        "text": "the disk is nearly full",
        "subject": None,
        "raised_at": NOW,
        "queued_at": NOW,
        "cleared_at": None,
    } | over


def reservation(subscriber_id: int, **over: Any) -> dict[str, Any]:
    return {
        "subscriber_id": subscriber_id,
        "item_id": "774625",
        "item_name": "Bakery Blue (Magic Bag)",
        "alert_key": "tgtg:1:774625:2026-11-22T16:00:00Z:-",
        "pickup_end": "2026-11-22T17:30:00Z",
        "offered_at": NOW,
        "state": "reserved",
        "order_id": "ord-1",
        "detail": None,
        "reserved_at": NOW,
        "hold_until": NOW,
        "cancelled_at": None,
        "updated_at": NOW,
    } | over


def populate(db: sqlite_utils.Database) -> dict[str, int]:
    """One linked row in every table; returns each table's row id."""
    ids: dict[str, int] = {}
    ids["subscribers"] = insert(db, "subscribers", subscriber())
    ids["push_tokens"] = insert(db, "push_tokens", push_token(ids["subscribers"]))
    ids["tgtg_accounts"] = insert(db, "tgtg_accounts", tgtg_account(ids["subscribers"]))
    ids["favorites"] = insert(db, "favorites", favorite(ids["subscribers"]))
    ids["notifications"] = insert(db, "notifications", notification())
    ids["messages"] = insert(
        db,
        "messages",
        message(subscriber_id=ids["subscribers"], notification_id=ids["notifications"]),
    )
    ids["message_events"] = insert(db, "message_events", message_event(ids["messages"]))
    ids["message_parts"] = insert(db, "message_parts", message_part(ids["messages"]))
    ids["inbound_messages"] = insert(
        db, "inbound_messages", inbound_message(subscriber_id=ids["subscribers"])
    )
    ids["otp_codes"] = insert(db, "otp_codes", otp_code(message_id=ids["messages"]))
    ids["accounts"] = insert(db, "accounts", account())
    ids["products"] = insert(db, "products", product())
    ids["price_changes"] = insert(
        db, "price_changes", price_change(ids["products"], ids["accounts"])
    )
    ids["orders"] = insert(db, "orders", order(ids["accounts"]))
    ids["order_lines"] = insert(db, "order_lines", order_line(ids["orders"], ids["products"]))
    ids["reports"] = insert(db, "reports", report())
    ids["job_runs"] = insert(db, "job_runs", job_run())
    ids["owner_alerts"] = insert(db, "owner_alerts", owner_alert())
    ids["reservations"] = insert(db, "reservations", reservation(ids["subscribers"]))
    return ids
