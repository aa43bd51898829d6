"""The SMS backend shopbell replaces, rebuilt as a peer for bench/http_smss.py --peer seed.

Written from the seed's README (seed 1, the Flask SMS and notifications backend) and the
stack its code names: Flask, Flask-SQLAlchemy models, Flask-Limiter keyed by the client's
address with a per-minute limit on POST /smss, served by gunicorn. Its POST /smss checks the
three JSON fields and the contact's form ("+" and 12 digits), "sends" by printing, looks the
contact up in a clients table and adds it when new, then stores the message: each insert is
its own commit, as the seed's model helpers do. The database is SQLite in WAL mode (the seed
used PostgreSQL through Docker; SQLite keeps the comparison on one disk and one machine).

Run: SEED_DB=/tmp/seed.db gunicorn -w 2 -b 127.0.0.1:PORT bench.seed_sms_peer:app
(the database file is made on the first request of each worker if missing).
"""

from __future__ import annotations

import os
from datetime import datetime

from flask import Flask, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

# High enough that the load is never refused: the limiter's cost is measured, not its refusals.
LIMIT_PER_MINUTE = 1_000_000
CONTACT_LENGTH = 13

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.environ.get("SEED_DB", "/tmp/seed.db")
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
db = SQLAlchemy(app)
limiter = Limiter(get_remote_address, app=app, storage_uri="memory://")


@event.listens_for(Engine, "connect")
def _wal(connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.close()


class Client(db.Model):  # type: ignore[name-defined]
    __tablename__ = "clients"
    id = db.Column(db.Integer, primary_key=True)
    contact = db.Column(db.String, index=True)


class Message(db.Model):  # type: ignore[name-defined]
    __tablename__ = "messages"
    id = db.Column(db.Integer, primary_key=True)
    subject = db.Column(db.String)
    body = db.Column(db.String)
    time = db.Column(db.DateTime)
    client_id = db.Column(db.Integer, db.ForeignKey("clients.id"), nullable=False)


with app.app_context():
    db.create_all()


def _valid(contact: str) -> bool:
    return contact.startswith("+") and contact[1:].isnumeric() and len(contact) == CONTACT_LENGTH


def _error(status: int, message: str):  # type: ignore[no-untyped-def]
    return jsonify({"success": False, "error": status, "message": message}), status


@app.post("/smss")
@limiter.limit(f"{LIMIT_PER_MINUTE}/minute")
def send_sms():  # type: ignore[no-untyped-def]
    body = request.get_json(silent=True) or {}
    if not all(key in body for key in ("contact", "subject", "message")):
        return _error(422, "Passed JSON body is incorrect")
    contact = str(body["contact"])
    if not _valid(contact):
        return _error(400, f"Invalid contact: {contact}")
    print(f"message subject: {body['subject']}\nmessage body: {body['message']}\nto: {contact}")
    client = Client.query.filter_by(contact=contact).first()
    if client is None:
        client = Client(contact=contact)
        db.session.add(client)
        db.session.commit()
    message = Message(
        subject=body["subject"], body=body["message"], time=datetime.now(), client_id=client.id
    )
    db.session.add(message)
    db.session.commit()
    return jsonify({"success": True, "message_id": message.id}), 200
