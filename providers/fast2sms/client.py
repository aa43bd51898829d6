"""Fast2SMS's wire: the bulkV2 request bodies, the POST, and its answer read into a Reply."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

BULK_PATH = "bulkV2"


@dataclass(frozen=True, slots=True)
class Reply:
    """What Fast2SMS answered to one bulkV2 POST, whatever the answer meant."""

    http_status: int
    # True only for a JSON object with `"return": true` (its success shape).
    accepted: bool
    request_id: str | None
    # Fast2SMS's own error code from a `"return": false` answer (412 bad key, 411 bad number...).
    status_code: int | None
    # Fast2SMS's message text ("" when none); a list of messages is joined with "; ".
    message: str
    # The raw Retry-After header, when there was one.
    retry_after: str | None
    # False when the body was not a JSON object (a proxy's HTML page, an empty body).
    json_body: bool


def quick_sms_body(*, number: str, message: str, unicode: bool) -> dict[str, Any]:
    """Route "q" (Quick SMS): free text to 10-digit Indian numbers."""
    return {
        "route": "q",
        "message": message,
        "language": "unicode" if unicode else "english",
        "flash": 0,
        "numbers": number,
    }


def dlt_body(
    *, number: str, sender_id: str, template_id: str, variables_values: str
) -> dict[str, Any]:
    """Route "dlt": a registered DLT template by its Fast2SMS message id, values joined by |."""
    return {
        "route": "dlt",
        "sender_id": sender_id,
        "message": template_id,
        "variables_values": variables_values,
        "flash": 0,
        "numbers": number,
    }


class Fast2SmsClient:
    """POSTs to Fast2SMS through the daemon's shared httpx client (never its own)."""

    def __init__(
        self, *, http: httpx.AsyncClient, api_key: str, base_url: str, timeout_seconds: float
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._url = base_url.rstrip("/") + "/" + BULK_PATH
        self._timeout_seconds = timeout_seconds

    async def bulk_v2(self, body: dict[str, Any]) -> Reply:
        """POST one bulkV2 request and read the answer.

        Raises TimeoutError when the whole exchange outlasts the timeout, and httpx's
        exceptions (TransportError and the like) when there is no answer at all.
        """
        # The key goes in the header, never the URL: httpx logs request URLs at INFO.
        headers = {"authorization": self._api_key, "accept": "application/json"}
        # httpx's timeout bounds each phase (connect, each read...); the outer one bounds the
        # whole exchange, so a peer that trickles bytes cannot hold a send forever.
        async with asyncio.timeout(self._timeout_seconds):
            response = await self._http.post(
                self._url,
                json=body,
                headers=headers,
                timeout=self._timeout_seconds,
                follow_redirects=False,
            )
        return _read_reply(response)


def _read_reply(response: httpx.Response) -> Reply:
    try:
        data = response.json()
    except ValueError:
        data = None
    retry_after = response.headers.get("retry-after")
    if not isinstance(data, dict):
        return Reply(
            http_status=response.status_code,
            accepted=False,
            request_id=None,
            status_code=None,
            message="",
            retry_after=retry_after,
            json_body=False,
        )
    request_id = data.get("request_id")
    return Reply(
        http_status=response.status_code,
        accepted=data.get("return") is True,
        request_id=str(request_id) if request_id not in (None, "") else None,
        status_code=_as_int(data.get("status_code")),
        message=_as_text(data.get("message")),
        retry_after=retry_after,
        json_body=True,
    )


def _as_int(value: object) -> int | None:
    # Fast2SMS sends its codes as numbers; third-party code also shows them as strings.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    return str(value)
