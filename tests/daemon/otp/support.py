"""Helpers for the OTP tests: a fixed key, a customer's number, the code as the SMS shows it."""

from __future__ import annotations

import re

from storage.database import Database

KEY = bytes.fromhex("5e" * 32)
PHONE = "+33612345678"


async def code_in_message(db: Database, message_id: int) -> str:
    """The code as the SMS carries it: what the customer reads on the phone."""

    def read(conn) -> str:  # type: ignore[no-untyped-def]
        return conn.execute("SELECT body FROM messages WHERE id = ?", [message_id]).fetchone()[0]

    body = await db.execute(read)
    found = re.search(r"\b(\d{6})\b", body)
    assert found, body
    return found.group(1)


# Digits to str.isdigit(), but not the ASCII 0-9 a code is made of.
ARABIC_INDIC = "\u0661\u0662\u0663\u0664\u0665\u0666"  # ١٢٣٤٥٦
FULL_WIDTH = "\uff11\uff12\uff13\uff14\uff15\uff16"  # 123456 in full-width forms
