"""Record types: one per table, in step with the schema, decoded, secrets kept out of logs."""

from __future__ import annotations

import ast
import dataclasses
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from storage import models
from tests.storage import factories as f

MODELS: dict[str, type[Any]] = {
    "subscribers": models.Subscriber,
    "push_tokens": models.PushToken,
    "tgtg_accounts": models.TgtgAccount,
    "favorites": models.Favorite,
    "notifications": models.Notification,
    "messages": models.Message,
    "message_events": models.MessageEvent,
    "message_parts": models.MessagePart,
    "inbound_messages": models.InboundMessage,
    "otp_codes": models.OtpCode,
    "accounts": models.Account,
    "products": models.Product,
    "price_changes": models.PriceChange,
    "orders": models.Order,
    "order_lines": models.OrderLine,
    "reports": models.Report,
    "job_runs": models.JobRun,
    "owner_alerts": models.OwnerAlert,
    "reservations": models.Reservation,
}

SECRETS = {
    models.TgtgAccount: ("access_token", "refresh_token", "cookie", "polling_id"),
    models.Account: ("password_hash",),
    models.OtpCode: ("code_hmac",),
    models.PushToken: ("token",),
    models.Message: ("body",),
}


def _row(db: sqlite_utils.Database, table: str, row_id: int) -> dict[str, Any]:
    return next(db.query(f"SELECT * FROM {table} WHERE id = ?", [row_id]))


def test_every_table_has_a_model_with_its_columns(sync_db: sqlite_utils.Database) -> None:
    tables = {name for name in sync_db.table_names() if not name.startswith("_")}
    # message_counts is the triggers' running count (storage/messages.py count_by_status reads
    # it as a dict), not a record anyone passes around.
    assert tables - {"message_counts"} == set(MODELS)
    for table, model in MODELS.items():
        columns = [column.name for column in sync_db[table].columns]
        assert [field.name for field in dataclasses.fields(model)] == columns, table


@pytest.mark.parametrize("table", MODELS)
def test_from_row_reads_a_real_row(sync_db: sqlite_utils.Database, table: str) -> None:
    ids = f.populate(sync_db)
    row = _row(sync_db, table, ids[table])
    record = MODELS[table].from_row(row)

    for field in dataclasses.fields(record):
        value, stored = getattr(record, field.name), row[field.name]
        if isinstance(value, datetime):
            assert value.tzinfo is UTC
            assert value == datetime.fromisoformat(stored), field.name
        elif field.name in ("channels", "data", "content", "watch_items"):
            assert not isinstance(value, str), field.name
        else:
            assert value == stored, field.name


def test_json_booleans_and_times_are_decoded(sync_db: sqlite_utils.Database) -> None:
    ids = f.populate(sync_db)
    subscriber = models.Subscriber.from_row(_row(sync_db, "subscribers", ids["subscribers"]))
    assert subscriber.channels == ("sms", "push")
    assert subscriber.verified_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert subscriber.opted_out_at is None

    product = models.Product.from_row(_row(sync_db, "products", ids["products"]))
    assert product.active is True
    notification = models.Notification.from_row(
        _row(sync_db, "notifications", ids["notifications"])
    )
    assert notification.data == {"screen": "offers"}
    report = models.Report.from_row(_row(sync_db, "reports", ids["reports"]))
    assert report.content == {"total_minor": 5998, "orders": 1}


def test_the_default_channels_decode(sync_db: sqlite_utils.Database) -> None:
    row = f.subscriber()
    del row["channels"]
    row_id = f.insert(sync_db, "subscribers", row)
    assert models.Subscriber.from_row(_row(sync_db, "subscribers", row_id)).channels == ("sms",)


def test_from_row_reads_the_api_json_shape_too() -> None:
    # Over HTTP a row arrives with JSON already decoded and may carry newer columns.
    row = f.subscriber(id=3, channels=["email"], loyalty_points=12)
    assert models.Subscriber.from_row(row).channels == ("email",)


def test_records_are_frozen() -> None:
    job = models.JobRun.from_row({"id": 1, **f.job_run()})
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.outcome = "error"  # type: ignore[misc]


@pytest.mark.parametrize("model", SECRETS, ids=lambda model: model.__name__)
def test_repr_hides_secrets(sync_db: sqlite_utils.Database, model: type[Any]) -> None:
    ids = f.populate(sync_db)
    table = next(table for table, candidate in MODELS.items() if candidate is model)
    record = model.from_row(_row(sync_db, table, ids[table]))
    text = repr(record)
    for name in SECRETS[model]:
        secret = getattr(record, name)
        assert secret, name
        assert secret not in text, name
        assert f"{name}=" not in text, name
    assert f"id={record.id}" in text


def test_models_import_only_the_standard_library() -> None:
    source = Path(models.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__"} <= sys.stdlib_module_names
