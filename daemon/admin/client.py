"""A small client of the daemon's HTTP API, for the CLI's data commands."""

from __future__ import annotations

from typing import Any

from daemon.config import Settings
from daemon.runtime.paths import read_api_token

TIMEOUT_SECONDS = 15.0


class ClientError(Exception):
    """The daemon could not be reached or refused the request; the message says why."""


class DaemonClient:
    """Talks to the running daemon as any other program would: over HTTP with the API token."""

    def __init__(self, settings: Settings, *, base_url: str | None = None) -> None:
        host = settings.api.host
        if host in ("0.0.0.0", "::"):  # noqa: S104 -- a listening address, reached via loopback
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"  # noqa: S104
        shown = f"[{host}]" if ":" in host else host
        self.base_url = base_url or f"http://{shown}:{settings.api.port}"
        token = settings.api.token.get_secret_value() or read_api_token(settings.token_path)
        if not token:
            raise ClientError(
                f"no API token yet ({settings.token_path}); start the daemon once or run "
                "`shopbell init`"
            )
        self._token = token

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        # Imported here: `shopbell run` imports this module with the CLI and never calls it.
        import httpx

        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            with httpx.Client(base_url=self.base_url, timeout=TIMEOUT_SECONDS) as http:
                response = http.request(method, path, headers=headers, **kwargs)
        except httpx.ConnectError:
            raise ClientError(
                f"cannot reach the daemon at {self.base_url}: is `shopbell run` running?"
            ) from None
        except httpx.HTTPError as exc:
            raise ClientError(f"talking to the daemon at {self.base_url} failed: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:200]}
        if response.status_code >= 400:
            raise ClientError(body.get("message") or f"HTTP {response.status_code}")
        return body if isinstance(body, dict) else {"data": body}
