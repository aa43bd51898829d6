"""A bare FastAPI route with a pydantic body, for bench/http_smss.py's ratio line.

POST /smss checks the seed's three fields with pydantic and answers as shopbell does, with
nothing behind it: no access table, no limits, no database. Served by granian (the daemon's
own server) with one worker on the asyncio loop, it is the ceiling of what any FastAPI app on
this machine answers; shopbell's POST /smss is measured against it in the same run.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class SmssBody(BaseModel):
    contact: str
    subject: str = ""
    message: str


class SmssAnswer(BaseModel):
    success: bool = True
    message_id: int


@app.post("/smss")
async def smss(body: SmssBody) -> SmssAnswer:
    return SmssAnswer(message_id=len(body.contact))
