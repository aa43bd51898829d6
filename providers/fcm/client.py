"""FCM's HTTP v1 send API on the wire: pyfcm's FCMNotification, aimed at a base URL, bounded.

pyfcm 2.1.1 builds the v1 payload and the endpoint; what it does not do safely from a daemon is
replaced here (docs/fcm.md, "pyfcm notes"): each worker thread refreshing its own OAuth token,
a retry adapter that can hold a thread for minutes on a 503, unbounded recursive sleeps on
Retry-After, and a 403 whose body is thrown away. So the OAuth credentials are loaded once and
shared under a lock, the adapter retries a 502/503 at most twice with short waits, Retry-After
goes back to the outbox instead of a sleep, and every error keeps FCM's status and errorCode.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account
from pyfcm import FCMNotification
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from providers.retry_after import parse_retry_after

logger = logging.getLogger(__name__)

FCM_BASE_URL = "https://fcm.googleapis.com"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# The adapter's retries of a 502/503 within one send: short, so a thread is never held for
# long; the outbox retries later with its own backoff and keeps the message meanwhile.
RETRY_TOTAL = 2
RETRY_BACKOFF_FACTOR = 0.25
RETRY_BACKOFF_MAX = 1.0
# google-auth tries the token endpoint up to 3 times, waiting about 1 s then 2 s between.
TOKEN_ATTEMPTS = 3
TOKEN_BACKOFF_SECONDS = 3.5
_DETAIL_LIMIT = 300
# Project ids: lower-case letters, digits and hyphens; old ones may carry a "domain:" prefix.
_PROJECT_ID = re.compile(r"[a-z0-9][a-z0-9.:-]{0,99}")
_REQUIRED_FIELDS = ("client_email", "private_key", "token_uri")


class WireError(Exception):
    """A send did not produce a message id; the text never holds a credential."""


class ApiError(WireError):
    """FCM (or whatever sits at base_url) answered with a non-2xx status.

    `error_status` is the google.rpc status ("NOT_FOUND", "INVALID_ARGUMENT", ...), `error_code`
    the FcmError detail's errorCode ("UNREGISTERED", "QUOTA_EXCEEDED", ...), `reason` an
    ErrorInfo reason ("ACCESS_TOKEN_EXPIRED"); each None when the answer carried none (an
    HTML page from a proxy carries none of them). `google` says whether the body was Google's
    JSON error shape at all.
    """

    def __init__(
        self,
        *,
        status: int,
        error_status: str | None,
        error_code: str | None,
        reason: str | None,
        detail: str,
        retry_after: float | None,
        google: bool,
    ) -> None:
        super().__init__(f"HTTP {status} {error_status or ''} {error_code or ''}: {detail}")
        self.status = status
        self.error_status = error_status
        self.error_code = error_code
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after
        self.google = google


class TransportError(WireError):
    """No usable HTTP answer: refused, timed out, reset, TLS failure."""


class AuthError(WireError):
    """No OAuth access token: the token endpoint refused our key, or could not be reached.

    `retryable` is False when Google said no (a deleted key, a disabled account): only a new
    service-account file helps. True when it may work later (unreachable, 5xx).
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class BadAnswer(WireError):
    """A 2xx answer that is not FCM's (no message name): a captive portal, a wrong base_url."""


class ServiceAccountError(ValueError):
    """The service-account file cannot be used; the text says why, never what is inside."""


@dataclass(frozen=True)
class ServiceAccount:
    """Credentials loaded from a service-account file, scoped to FCM, not yet refreshed."""

    credentials: service_account.Credentials
    project_id: str
    client_email: str


def load_service_account(path: str, project_id: str = "") -> ServiceAccount:
    """Read and check a Google service-account JSON file; raise ServiceAccountError if unusable.

    `project_id` overrides the file's own. The private key is parsed here, at start, so a
    broken file is reported once, clearly, rather than on every send.
    """
    where = str(Path(path).expanduser())
    try:
        raw = Path(where).read_bytes()
    except FileNotFoundError:
        raise ServiceAccountError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ServiceAccountError(f"{where}: is a folder, not a file") from None
    except PermissionError:
        raise ServiceAccountError(
            f"{where}: permission denied (the user running shopbell must be able to read it)"
        ) from None
    except OSError as exc:
        raise ServiceAccountError(f"{where}: cannot be read ({exc.strerror})") from None
    try:
        info = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ServiceAccountError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ServiceAccountError(
            f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(info, dict):
        raise ServiceAccountError(f"{where}: not a service-account key (not a JSON object)")
    if info.get("type") != "service_account":
        raise ServiceAccountError(
            f'{where}: not a service-account key (its "type" is not "service_account"); '
            "download one in the Firebase console under Project settings > Service accounts"
        )
    missing = [name for name in _REQUIRED_FIELDS if not isinstance(info.get(name), str)]
    if missing:
        raise ServiceAccountError(f"{where}: missing {', '.join(missing)}")
    project = project_id or info.get("project_id") or ""
    if not isinstance(project, str) or not _PROJECT_ID.fullmatch(project):
        raise ServiceAccountError(
            f'{where}: no usable project id (set [fcm] project_id, e.g. "my-shop-app")'
        )
    try:
        credentials = service_account.Credentials.from_service_account_info(
            info, scopes=[FCM_SCOPE]
        )
    except (ValueError, TypeError, google.auth.exceptions.GoogleAuthError):
        # Not the library's text: it could quote part of the key.
        raise ServiceAccountError(
            f"{where}: its private_key cannot be loaded (not a PEM RSA private key)"
        ) from None
    return ServiceAccount(credentials, project, str(info["client_email"]))


def bounded_retry() -> Retry:
    """urllib3's retries for one send: a 502/503 or a refused connection, twice, briefly.

    Never a read error (the request may have reached FCM) and never a Retry-After sleep: a
    429's or 503's Retry-After goes back to the outbox, which waits without holding a thread.
    """
    return Retry(
        total=RETRY_TOTAL,
        connect=RETRY_TOTAL,
        read=False,
        status=RETRY_TOTAL,
        other=0,
        redirect=0,
        backoff_factor=RETRY_BACKOFF_FACTOR,
        backoff_max=RETRY_BACKOFF_MAX,
        status_forcelist=(502, 503),
        allowed_methods=None,  # POST too: a 502/503 means FCM did not take the message
        raise_on_status=False,
        respect_retry_after_header=False,
    )


class _TimedRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport with our timeout (its own default is 120 s)."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        super().__init__(session)
        self._timeout = timeout

    def __call__(  # type: ignore[override]
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        return super().__call__(
            url, method=method, body=body, headers=headers, timeout=self._timeout, **kwargs
        )


class FcmWire(FCMNotification):
    """pyfcm's FCMNotification for a daemon: blocking, safe to call from many threads at once.

    One access token for every thread (pyfcm refreshes one per thread), our endpoint base and
    timeout, bounded retries, and errors with FCM's own status and errorCode.
    """

    def __init__(
        self,
        *,
        account: ServiceAccount,
        base_url: str = FCM_BASE_URL,
        timeout_seconds: float = 10.0,
        pool_size: int = 8,
    ) -> None:
        adapter = HTTPAdapter(
            max_retries=bounded_retry(), pool_connections=1, pool_maxsize=max(1, pool_size)
        )
        super().__init__(
            credentials=account.credentials, project_id=account.project_id, adapter=adapter
        )
        self.account = account
        self.timeout = timeout_seconds
        # pyfcm reads FCM_END_POINT_BASE through self, so an instance attribute redirects it.
        self.FCM_END_POINT_BASE = base_url.rstrip("/") + "/v1/projects"
        # Our project id wins over the one in the credentials (pyfcm prefers theirs).
        self._fcm_end_point = f"{self.FCM_END_POINT_BASE}/{account.project_id}/messages:send"
        self._adapter = adapter
        self._host = urlsplit(base_url).netloc or base_url
        self._token_lock = threading.Lock()
        self._token_session = requests.Session()
        self._token_request = _TimedRequest(self._token_session, timeout_seconds)
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._closed = False
        # Every access token seen, so none can leak into an error text.
        self._tokens_seen: list[str] = []
        self.token_refreshes = 0

    @property
    def project_id(self) -> str:
        return self.account.project_id

    # -- the shared OAuth token ------------------------------------------------------------

    def access_token(self) -> str:
        """A valid access token, fetched once for every thread and renewed before it expires."""
        with self._token_lock:
            if not self.credentials.valid:
                self._refresh()
            return str(self.credentials.token)

    def renew_token(self, stale: str) -> str:
        """FCM refused `stale`: fetch a new token, unless another thread already did."""
        with self._token_lock:
            if self.credentials.token == stale or not self.credentials.valid:
                self._refresh()
            return str(self.credentials.token)

    def _refresh(self) -> None:
        try:
            self.credentials.refresh(self._token_request)
        except google.auth.exceptions.RefreshError as exc:
            retryable = bool(getattr(exc, "retryable", False))
            raise AuthError(
                f"Google's token endpoint refused the service account {self.account.client_email}"
                f" ({_oauth_error(exc)})",
                retryable=retryable,
            ) from None
        except google.auth.exceptions.TransportError:
            raise AuthError(
                "could not reach Google's token endpoint for an access token", retryable=True
            ) from None
        except google.auth.exceptions.GoogleAuthError as exc:
            raise AuthError(
                f"could not get an access token ({type(exc).__name__})", retryable=False
            ) from None
        self.token_refreshes += 1
        token = str(self.credentials.token)
        self._tokens_seen = [*self._tokens_seen[-7:], token]
        logger.debug("fcm: new access token for %s", self.account.client_email)

    def _get_access_token(self) -> str:
        # pyfcm's own path (request_headers) gets the shared token too.
        return self.access_token()

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in an error text or a log line."""
        return tuple(self._tokens_seen)

    # -- sending ---------------------------------------------------------------------------

    @property
    def requests_session(self) -> requests.Session:
        """This thread's session, on the shared bounded adapter, with no token of its own."""
        session: requests.Session | None = getattr(self.thread_local, "requests_session", None)
        if session is None:
            session = requests.Session()
            session.mount("http://", self._adapter)
            session.mount("https://", self._adapter)
            with self._sessions_lock:
                if self._closed:
                    session.close()
                    raise TransportError("the FCM client is closed")
                self._sessions.append(session)
            self.thread_local.requests_session = session
        return session

    def send_request(self, payload: bytes | None = None, timeout: float | None = None) -> Any:
        """POST the payload once with the shared token; on a 401, renew the token and try once
        more. No sleeping on Retry-After: parse_response hands it back to the caller."""
        token = self.access_token()
        response = self._post(payload, token, timeout)
        if response.status_code == 401 and _reason(response) != "THIRD_PARTY_AUTH_ERROR":
            # Expired (ACCESS_TOKEN_EXPIRED) or revoked: one fresh token, one more try.
            token = self.renew_token(token)
            response = self._post(payload, token, timeout)
        return response

    def _post(self, payload: bytes | None, token: str, timeout: float | None) -> Any:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        try:
            return self.requests_session.post(
                self.fcm_end_point, data=payload, headers=headers, timeout=timeout
            )
        except requests.exceptions.ConnectTimeout:
            raise TransportError(f"could not connect to FCM at {self._host} in time") from None
        except requests.exceptions.Timeout:
            raise TransportError(f"FCM at {self._host} did not answer in time") from None
        except requests.exceptions.SSLError:
            raise TransportError(
                f"TLS failed with FCM at {self._host} (check the clock and CA certificates)"
            ) from None
        except requests.exceptions.ConnectionError:
            raise TransportError(f"could not reach FCM at {self._host}") from None
        except requests.exceptions.RequestException as exc:
            raise TransportError(
                f"broken answer from FCM at {self._host} ({type(exc).__name__})"
            ) from None

    def parse_response(self, response: Any) -> dict[str, Any]:
        """FCM's answer: the message resource on 200, else an ApiError keeping its details."""
        if response.status_code == 200:
            try:
                body = response.json()
            except ValueError:
                raise BadAnswer(f"the answer from {self._host} is not FCM's JSON") from None
            if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                raise BadAnswer(f"the answer from {self._host} has no message name")
            return body
        raise _api_error(response)

    def send(
        self,
        *,
        token: str | None = None,
        topic: str | None = None,
        title: str | None = None,
        body: str | None = None,
        data: Mapping[str, str] | None = None,
    ) -> str:
        """Send one message to one token or one topic; FCM's message name, or a WireError."""
        if (token is None) == (topic is None):
            raise ValueError("give exactly one of token and topic")
        # FCM takes only string values (docs/fcm.md, "Sending a message"); pyfcm does not check.
        payload = {str(key): str(value) for key, value in (data or {}).items()}
        result = self.notify(
            fcm_token=token,
            topic_name=topic,
            notification_title=title or None,
            notification_body=body or None,
            data_payload=payload or None,
            timeout=(self.timeout, self.timeout),
        )
        return str(result["name"])

    def ensure_token(self) -> str:
        """Fetch an access token if there is no valid one (health: proves the key works)."""
        return self.access_token()

    def close(self) -> None:
        with self._sessions_lock:
            self._closed = True
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._adapter.close()
        self._token_session.close()


def _json(response: Any) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _reason(response: Any) -> str | None:
    """The ErrorInfo reason or FcmError errorCode of an error answer, if it has one."""
    body = _json(response)
    if body is None:
        return None
    _, code, reason, _ = _error_fields(body)
    return reason or code


def _error_fields(body: Mapping[str, Any]) -> tuple[str | None, str | None, str | None, str]:
    """(status, FcmError errorCode, ErrorInfo reason, message) of Google's error JSON."""
    error = body.get("error")
    if not isinstance(error, dict):
        return None, None, None, ""
    status = error.get("status") if isinstance(error.get("status"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    code: str | None = None
    reason: str | None = None
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        if isinstance(detail.get("errorCode"), str):
            code = code or detail["errorCode"]
        if isinstance(detail.get("reason"), str):
            reason = reason or detail["reason"]
    return status, code, reason, message


def _api_error(response: Any) -> ApiError:
    body = _json(response)
    google = body is not None and isinstance(body.get("error"), dict)
    status_name, code, reason, message = _error_fields(body or {})
    detail = " ".join(message.split())[:_DETAIL_LIMIT]
    return ApiError(
        status=int(response.status_code),
        error_status=status_name,
        error_code=code,
        reason=reason,
        detail=detail,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        google=google,
    )


def _oauth_error(exc: google.auth.exceptions.RefreshError) -> str:
    """The OAuth error code of a refusal ("invalid_grant"), never the rest of its body."""
    for arg in exc.args:
        if isinstance(arg, dict) and isinstance(arg.get("error"), str):
            return arg["error"][:60]
    text = str(exc.args[0]) if exc.args else ""
    first = text.split(":", 1)[0].strip()
    return first[:60] if re.fullmatch(r"[a-z_]+", first) else type(exc).__name__
