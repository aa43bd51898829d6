"""Twilio's Messages API on the wire: the twilio package's sync client, one per worker thread."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

logger = logging.getLogger(__name__)

TWILIO_API_URL = "https://api.twilio.com"
# twilio's Client falls back to os.environ when `environment` is falsy, so `environment={}`
# does NOT shield it: TWILIO_REGION / TWILIO_EDGE in the daemon's environment would still
# rewrite api.twilio.com into a regional host. A non-empty mapping of empty values does.
_NO_ENVIRONMENT: Mapping[str, str] = {
    "TWILIO_ACCOUNT_SID": "",
    "TWILIO_AUTH_TOKEN": "",
    "TWILIO_EDGE": "",
    "TWILIO_REGION": "",
}
_DETAIL_LIMIT = 300


class WireError(Exception):
    """A call to Twilio did not produce the record it asked for."""


class ApiError(WireError):
    """Twilio (or whatever sits at base_url) answered with a non-2xx status.

    Both of Twilio's error shapes (the legacy `{"code","message"}` one, raised by twilio as
    TwilioRestException, and RFC 9457 problem details, raised as TwilioServiceException) end
    up here. `code` is Twilio's own error code, None when the answer carried none (twilio then
    repeats the HTTP status, which is not a Twilio code).
    """

    def __init__(
        self, *, status: int, code: int | None, detail: str, retry_after: float | None
    ) -> None:
        super().__init__(f"HTTP {status}, error {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


class TransportError(WireError):
    """No usable HTTP answer: refused, timed out, reset, TLS failure.

    `maybe_sent` is True when the request may have reached Twilio before things went wrong
    (a read timeout, a connection dropped mid-answer), so a retry may duplicate the message.
    """

    def __init__(self, message: str, *, timed_out: bool, maybe_sent: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.maybe_sent = maybe_sent


class BadAnswer(WireError):
    """A 2xx answer that is not the record Twilio would send (a captive portal, a wrong proxy)."""


class BadBaseUrl(WireError):
    """base_url cannot be requested at all (no scheme, bad host): a configuration error."""


@dataclass(frozen=True, slots=True)
class CreatedMessage:
    """The parts of Twilio's Message resource the outbox keeps."""

    sid: str
    status: str
    num_segments: int | None


def rewrite_url(base_url: str, url: str) -> str:
    """`url` with its scheme and host replaced by base_url's; base_url's path becomes a prefix.

    So "http://127.0.0.1:8080" serves a local stand-in and "https://gw.example/twilio" a proxy
    that mounts Twilio under a path, without touching the twilio package's own URLs.
    """
    base = urlsplit(base_url)
    parts = urlsplit(url)
    path = base.path.rstrip("/") + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RewritingHttpClient(TwilioHttpClient):
    """twilio's requests-based HTTP client, aimed at base_url, quiet, remembering its last answer.

    One instance per thread: requests.Session is not guaranteed thread-safe.
    """

    def __init__(self, *, base_url: str, timeout: float) -> None:
        # max_retries=None keeps requests' default of no retries: a retried POST can send the
        # SMS twice, and the daemon's outbox does its own retrying with backoff and failover.
        super().__init__(pool_connections=True, timeout=timeout, logger=logger, max_retries=None)
        real = base_url.rstrip("/") == TWILIO_API_URL
        self._base_url = None if real else base_url
        if self.session is not None:
            # requests re-reads the proxy and CA-bundle variables from os.environ on every
            # request (a quarter of a send's CPU time in profiles); read them once instead,
            # with the same meaning: proxies for base_url unless NO_PROXY says otherwise.
            self.proxy = requests.utils.get_environ_proxies(base_url)
            self.session.verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
            self.session.trust_env = False
        # The headers of the last answer: twilio's exceptions drop them, but a 429's or 503's
        # Retry-After lives there.
        self.last_headers: Mapping[str, str] = {}

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self._base_url is not None:
            url = rewrite_url(self._base_url, url)
        self.last_headers = {}
        response = super().request(
            method, url, params, data, headers, auth, timeout, allow_redirects
        )
        self.last_headers = response.headers or {}
        return response

    # twilio logs every request and response at INFO, five lines each: too loud for a daemon
    # sending hundreds a second. One DEBUG line each; the Authorization header never appears.
    def log_request(self, kwargs: dict[str, Any]) -> None:
        logger.debug("twilio request %s %s", kwargs["method"], kwargs["url"])

    def log_response(self, status_code: int, response: Any) -> None:
        logger.debug("twilio answered HTTP %s", status_code)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


class TwilioWire:
    """Blocking calls to Twilio's REST API; safe to call from many threads at once."""

    def __init__(
        self, *, account_sid: str, auth_token: str, base_url: str, timeout_seconds: float
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._base_url = base_url
        self._timeout = timeout_seconds
        self._local = threading.local()
        self._lock = threading.Lock()
        self._http_clients: list[RewritingHttpClient] = []
        self._closed = False

    def client(self) -> tuple[Client, RewritingHttpClient]:
        """This thread's twilio Client and its HTTP client, made on first use."""
        made: tuple[Client, RewritingHttpClient] | None = getattr(self._local, "made", None)
        if made is None:
            http = RewritingHttpClient(base_url=self._base_url, timeout=self._timeout)
            client = Client(
                self._account_sid,
                self._auth_token,
                http_client=http,
                environment=dict(_NO_ENVIRONMENT),
            )
            with self._lock:
                if self._closed:
                    http.close()
                    raise TransportError(
                        "the Twilio client is closed", timed_out=False, maybe_sent=False
                    )
                self._http_clients.append(http)
            made = (client, http)
            self._local.made = made
        return made

    def create_message(
        self,
        *,
        to: str,
        body: str,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        validity_period: int | None = None,
        message_intent: str | None = None,
    ) -> CreatedMessage:
        """POST one message to Messages.json; raise a WireError when it was not created."""
        client, http = self.client()
        # twilio leaves out arguments that are `values.unset`; passing None would send them
        # empty, so only what is set goes in.
        optional: dict[str, Any] = {
            "from_": from_,
            "messaging_service_sid": messaging_service_sid,
            "status_callback": status_callback,
            "validity_period": validity_period,
            "message_intent": message_intent,
        }
        kwargs = {key: value for key, value in optional.items() if value is not None}
        with _wire_errors(http, self._base_url, sending=True):
            message = client.messages.create(to=to, body=body, **kwargs)
        if not isinstance(message.sid, str) or not message.sid:
            raise BadAnswer("Twilio's answer has no message sid")
        return CreatedMessage(
            sid=message.sid,
            status=str(message.status or ""),
            num_segments=_positive_int(message.num_segments),
        )

    def fetch_account_status(self) -> str:
        """GET the account resource (sends nothing, costs nothing); its status, e.g. "active"."""
        client, http = self.client()
        with _wire_errors(http, self._base_url, sending=False):
            account = client.api.v2010.accounts(self._account_sid).fetch()
        return str(account.status or "")

    def close(self) -> None:
        """Close every thread's session; later calls fail with TransportError."""
        with self._lock:
            self._closed = True
            clients, self._http_clients = self._http_clients, []
        for http in clients:
            http.close()


@contextmanager
def _wire_errors(http: RewritingHttpClient, base_url: str, *, sending: bool) -> Iterator[None]:
    """Turn twilio's and requests' exceptions into WireErrors with plain, secret-free text."""
    host = urlsplit(base_url).netloc or base_url
    try:
        yield
    except (TwilioRestException, TwilioServiceException) as exc:
        raise _api_error(exc, http.last_headers) from exc
    except TwilioException as exc:
        raise BadAnswer(f"unexpected answer from Twilio: {type(exc).__name__}") from exc
    except requests.exceptions.ConnectTimeout as exc:
        raise TransportError(
            f"could not connect to Twilio at {host} in time", timed_out=True, maybe_sent=False
        ) from exc
    except requests.exceptions.Timeout as exc:
        raise TransportError(
            f"Twilio at {host} did not answer in time", timed_out=True, maybe_sent=sending
        ) from exc
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
        raise BadBaseUrl(f"cannot make a request to {host!r}") from exc
    except requests.exceptions.SSLError as exc:
        raise TransportError(
            f"TLS failed with Twilio at {host} (check the system clock and CA certificates)",
            timed_out=False,
            maybe_sent=False,
        ) from exc
    except requests.exceptions.ConnectionError as exc:
        # requests folds "never connected" and "dropped mid-answer" into one class; only the
        # first is sure not to have reached Twilio.
        reason, connected = _connection_failure(exc)
        raise TransportError(
            f"could not reach Twilio at {host} ({reason})",
            timed_out=False,
            maybe_sent=sending and connected,
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise TransportError(
            f"broken answer from Twilio at {host} ({type(exc).__name__})",
            timed_out=False,
            maybe_sent=sending,
        ) from exc
    except json.JSONDecodeError as exc:
        # A 2xx whose body is not JSON (twilio parses it with json.loads).
        raise BadAnswer(f"the answer from {host} is not Twilio's JSON") from exc


def _api_error(
    exc: TwilioRestException | TwilioServiceException, headers: Mapping[str, str]
) -> ApiError:
    status = int(exc.status)
    code = exc.code if isinstance(exc.code, int) else None
    # twilio repeats the HTTP status as the "code" when the body had none; Twilio's own codes
    # are five digits.
    if code is not None and code < 10000:
        code = None
    if isinstance(exc, TwilioServiceException):
        detail = exc.detail or exc.title or ""
    else:
        detail = str(exc.msg or "")
        for prefix in ("Unable to create record: ", "Unable to fetch record: "):
            detail = detail.removeprefix(prefix)
        if detail in ("Unable to create record", "Unable to fetch record"):
            detail = ""
    detail = " ".join(detail.split())[:_DETAIL_LIMIT]
    return ApiError(
        status=status,
        code=code,
        detail=detail,
        retry_after=parse_retry_after(_header(headers, "Retry-After")),
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # requests gives a case-insensitive dict, but be safe with a plain one.
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _connection_failure(exc: BaseException) -> tuple[str, bool]:
    """Why a connection failed, and whether a connection had been made (so a request sent)."""
    causes: list[BaseException] = []
    stack: list[BaseException | None] = [exc]
    while stack:
        cause = stack.pop()
        if cause is None or any(cause is seen for seen in causes):
            continue
        causes.append(cause)
        # urllib3 keeps the underlying error in .reason, requests in args[0].
        reason = getattr(cause, "reason", None)
        stack.extend([cause.__cause__, cause.__context__])
        stack.extend(a for a in (reason, *cause.args) if isinstance(a, BaseException))
    for kind, reason in (
        (ConnectionRefusedError, "connection refused"),
        (urllib3.exceptions.NameResolutionError, "host name not found"),
        (urllib3.exceptions.NewConnectionError, "no connection"),
    ):
        if any(isinstance(cause, kind) for cause in causes):
            return reason, False
    return "connection dropped", True


def _positive_int(value: object) -> int | None:
    # num_segments is a string, "0" while a Messaging Service has not picked a sender yet.
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None
