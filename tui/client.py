"""The TUI's client of the daemon's HTTP API: JSON in and out, failures in plain words."""

from __future__ import annotations

from typing import Any

import httpx

TIMEOUT_SECONDS = 10.0


class Unreachable(Exception):
    """The daemon did not answer at all (not running, wrong address, network down)."""

    def __init__(self, url: str, reason: str, *, refused: bool = False) -> None:
        super().__init__(f"cannot reach the daemon at {url}: {reason}")
        self.url = url
        self.reason = reason
        # The connection itself failed: nothing listens there, so a local daemon is not running
        # (a timeout is something else: a daemon that is there but stuck).
        self.refused = refused


class ApiError(Exception):
    """The daemon answered with an error; `message` is its plain-words explanation."""

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []

    @property
    def fields(self) -> dict[str, str]:
        """Field name (without the `body.`/`query.` prefix) → the rule it broke."""
        out: dict[str, str] = {}
        for error in self.errors:
            name = str(error.get("field", "")).split(".", 1)[-1]
            out[name] = str(error.get("rule", ""))
        return out


class ApiClient:
    """One daemon, one token, one connection pool; create once, close once.

    Tests pass `transport` (an httpx transport) to answer from canned data.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=timeout,
            transport=transport,
        )

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, json: Any = None, **params: Any) -> dict[str, Any]:
        return await self.request("POST", path, json=json, params=params)

    async def patch(self, path: str, json: Any = None) -> dict[str, Any]:
        return await self.request("PATCH", path, json=json)

    async def delete(self, path: str) -> dict[str, Any]:
        return await self.request("DELETE", path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one request; the JSON body, or ApiError / Unreachable."""
        query = _query(params or {})
        try:
            response = await self._http.request(method, path, json=json, params=query)
        except httpx.ConnectError:
            raise Unreachable(self.url, "nothing answers there", refused=True) from None
        except httpx.TimeoutException:
            raise Unreachable(self.url, "it did not answer in time") from None
        except httpx.HTTPError as exc:
            raise Unreachable(self.url, type(exc).__name__) from None
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:200]}
        if response.status_code >= 400:
            if not isinstance(body, dict):
                body = {}
            message = body.get("message") or f"HTTP {response.status_code}"
            raise ApiError(response.status_code, str(message), body.get("errors"))
        return body if isinstance(body, dict) else {"data": body}

    async def close(self) -> None:
        await self._http.aclose()


def _query(params: dict[str, Any]) -> dict[str, Any]:
    """Drop unset parameters; booleans as the API reads them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or value == "":
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out
