"""Twilio's Messages API on the wire: the twilio package's sync client, one per worker thread.

The twilio Client builds the requests and parses the answers; the HTTP underneath is our own
small client on urllib3 (RewritingHttpClient), not twilio's requests-based one.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests.utils
import urllib3
from twilio.base.domain import Domain
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.base.version import Version
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.util.ssl_ import create_urllib3_context

logger = logging.getLogger(__name__)

TWILIO_API_URL = "https://api.twilio.com"
# The Messages API's version, as twilio.rest.api.v2010 names it.
API_VERSION = "2010-04-01"
# What twilio's MessageList.create and AccountContext.fetch send besides the form.
_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
_ACCEPT_JSON = {"Accept": "application/json"}
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


class BadSetting(BadBaseUrl):
    """The proxy or CA bundle from the environment cannot be used: a configuration error."""


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


@dataclass(frozen=True, slots=True)
class Transport:
    """How to reach base_url, read from the environment once: proxy, TLS trust anchors."""

    # Out of repr: a proxy URL and its Proxy-Authorization may hold credentials.
    proxy_url: str | None = field(default=None, repr=False)
    proxy_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    # None for plain-http targets (the fake Twilio, a local gateway): nothing to verify.
    ssl_context: ssl.SSLContext | None = None

    @classmethod
    def from_environment(cls, base_url: str) -> Transport:
        """The proxy and CA bundle requests would use for base_url, decided once.

        Same meaning as requests (which this replaced): HTTPS_PROXY / HTTP_PROXY / ALL_PROXY
        unless NO_PROXY covers base_url's host; the CA bundle from REQUESTS_CA_BUNDLE, else
        CURL_CA_BUNDLE, else certifi's (SSL_CERT_FILE and the system store are not consulted:
        requests did not either). Raises BadSetting when either cannot be used.
        """
        host = urlsplit(base_url).netloc or base_url
        try:
            proxies = requests.utils.get_environ_proxies(base_url)
            proxy = requests.utils.select_proxy(base_url, proxies)
        except ValueError as exc:  # a malformed NO_PROXY or proxy variable
            raise BadSetting(f"cannot read the proxy settings for {host}") from exc
        proxy_headers: dict[str, str] = {}
        if proxy:
            proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
            user, password = requests.utils.get_auth_from_url(proxy)
            if user:
                proxy_headers = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}")
            if urlsplit(proxy).scheme not in ("http", "https"):
                # SOCKS needs PySocks, which is not installed; requests failed here too.
                raise BadSetting(
                    f"the proxy for {host} is not an http(s) proxy "
                    f"({urlsplit(proxy).scheme!r} is not supported)"
                )
        needs_tls = urlsplit(base_url).scheme == "https" or (
            proxy is not None and urlsplit(proxy).scheme == "https"
        )
        return cls(
            proxy_url=proxy or None,
            proxy_headers=proxy_headers,
            ssl_context=_ssl_context() if needs_tls else None,
        )

    def pool_manager(self) -> urllib3.PoolManager:
        """A small pool for one thread: one request at a time, one kept-alive connection."""
        settings: dict[str, Any] = {
            "num_pools": 4,
            "maxsize": 1,
            "block": False,
            # Never retried, never redirected: a retried POST can send the SMS twice, and the
            # outbox does its own retrying with backoff and failover. Per request too, below.
            "retries": False,
            "ssl_context": self.ssl_context,
        }
        if self.proxy_url is None:
            return urllib3.PoolManager(**settings)
        try:
            return urllib3.ProxyManager(
                self.proxy_url,
                proxy_headers=dict(self.proxy_headers),
                proxy_ssl_context=self.ssl_context,
                **settings,
            )
        except (ValueError, urllib3.exceptions.HTTPError) as exc:
            raise BadSetting("the proxy from the environment cannot be used") from exc


def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context, its CA bundle loaded once (not per connection)."""
    bundle = (
        os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or requests.utils.DEFAULT_CA_BUNDLE_PATH  # certifi's, as requests used
    )
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    try:
        if os.path.isdir(bundle):
            context.load_verify_locations(capath=bundle)
        else:
            context.load_verify_locations(cafile=bundle)
    except (OSError, ssl.SSLError) as exc:
        raise BadSetting(f"cannot load the CA certificates from {bundle!r}") from exc
    return context


class RewritingHttpClient(HttpClient):
    """twilio's HttpClient on urllib3, aimed at base_url, quiet, remembering its last answer.

    One instance per thread (its own small PoolManager), so last_headers is this thread's.
    twilio's own TwilioHttpClient goes through requests, whose per-request preparation and
    environment lookups cost about as much CPU as everything else in a send.
    """

    def __init__(
        self, *, base_url: str, timeout: float, transport: Transport | None = None
    ) -> None:
        super().__init__(logger, False, timeout)
        real = base_url.rstrip("/") == TWILIO_API_URL
        self._base_url = None if real else base_url
        # Rewriting is a prefix swap for twilio's own URLs; rewrite_url handles any other.
        self._prefix = None if real else rewrite_url(base_url, TWILIO_API_URL)
        self._transport = transport or Transport.from_environment(base_url)
        self._manager = self._transport.pool_manager()
        # Without a proxy every send goes to one origin: call its connection pool directly,
        # skipping the PoolManager's URL parsing and pool lookup on each request.
        origin = urlsplit(base_url)
        self._origin = f"{origin.scheme}://{origin.netloc}"
        self._pool: urllib3.HTTPConnectionPool | None = None
        if self._transport.proxy_url is None:
            self._pool = self._manager.connection_from_url(self._origin)
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._auth: tuple[tuple[str, str], str] | None = None
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
        """One HTTP exchange, as twilio's client_base calls it; redirects are never followed.

        A 3xx comes back as it is (twilio then raises, the provider calls it a wrong
        base_url); allow_redirects is accepted for the interface and ignored.
        """
        if timeout is None:
            wait = self._timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        else:
            wait = urllib3.Timeout(connect=timeout, read=timeout)
        method = method.upper()
        url = self._target(url)
        if params:
            query = _encode_form(params)
            if query:
                url = f"{url}{'&' if '?' in url else '?'}{query}"
        sent = dict(headers) if headers else {}
        body: bytes | None = None
        content_type = sent.get("Content-Type")
        if content_type in ("application/json", "application/scim+json"):
            if data is not None:
                body = json.dumps(data, allow_nan=False).encode()
        elif isinstance(data, str | bytes):
            body = data.encode() if isinstance(data, str) else data
        elif data:
            body = _encode_form(data).encode()
        if auth is not None:
            sent["Authorization"] = self._basic(auth)
        logger.debug("twilio request %s %s", method, url)
        self.last_headers = {}
        if self._pool is not None and url.startswith(self._origin + "/"):
            # After close() this pool raises ClosedPoolError: nothing goes out.
            answer = self._pool.urlopen(
                method,
                url[len(self._origin) :],
                body=body,
                headers=sent,
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=wait,
                preload_content=True,
            )
        else:
            answer = self._manager.urlopen(
                method,
                url,
                body=body,
                headers=sent,
                retries=False,
                redirect=False,
                timeout=wait,
                preload_content=True,
            )
        logger.debug("twilio answered HTTP %s", answer.status)
        self.last_headers = answer.headers
        return Response(answer.status, _text(answer.data, answer.headers), answer.headers)

    def _target(self, url: str) -> str:
        if self._prefix is None or self._base_url is None:
            return url
        if url.startswith(TWILIO_API_URL + "/"):
            return self._prefix + url[len(TWILIO_API_URL) :]
        return rewrite_url(self._base_url, url)

    def _basic(self, auth: tuple[str, str]) -> str:
        # The same header for every send: encode it once.
        if self._auth is None or self._auth[0] != auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self._auth = (auth, f"Basic {token}")
        return self._auth[1]

    # Not called by request(); kept quiet should anything else call them. twilio's versions
    # log five INFO lines per request.
    def log_request(self, kwargs: dict[str, Any]) -> None:
        logger.debug("twilio request %s %s", kwargs["method"], kwargs["url"])

    def log_response(self, status_code: int, response: Any) -> None:
        logger.debug("twilio answered HTTP %s", status_code)

    def close(self) -> None:
        # The manager's clear() only forgets its pools (they close when collected); ours is
        # still referenced here, so close it outright.
        if self._pool is not None:
            self._pool.close()
        self._manager.clear()


def _encode_form(data: Mapping[str, object]) -> str:
    """Form-encode like requests: None dropped, a list becomes repeated keys."""
    pairs: list[tuple[str, object]] = []
    for key, value in data.items():
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            if value is not None:
                pairs.append((key, value))
            continue
        pairs.extend((key, item) for item in value if item is not None)
    return urlencode(pairs, doseq=True)


def _text(data: bytes, headers: Mapping[str, str]) -> str:
    """The body as text, with requests' choice of encoding (Twilio's JSON is UTF-8)."""
    content_type = headers.get("Content-Type") or ""
    charset = None
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("'\"") or None
    if charset is None:
        charset = "ISO-8859-1" if content_type.lower().startswith("text/") else "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


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
        self._transport: Transport | None = None
        self._closed = False

    def transport(self) -> Transport:
        """The proxy and TLS settings, read from the environment on first use, then kept."""
        with self._lock:
            if self._transport is None:
                self._transport = Transport.from_environment(self._base_url)
            return self._transport

    def client(self) -> tuple[Client, RewritingHttpClient]:
        """This thread's twilio Client and its HTTP client, made on first use."""
        made: tuple[Client, RewritingHttpClient] | None = getattr(self._local, "made", None)
        if made is None:
            http = RewritingHttpClient(
                base_url=self._base_url, timeout=self._timeout, transport=self.transport()
            )
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
        # The form twilio's MessageList.create posts, in its order. It leaves out arguments
        # that are `values.unset`; a None would go out empty, so only what is set goes in.
        form: dict[str, object] = {
            "To": to,
            "StatusCallback": status_callback,
            "ValidityPeriod": validity_period,
            "MessageIntent": message_intent,
            "From": from_,
            "MessagingServiceSid": messaging_service_sid,
            "Body": body,
        }
        with _wire_errors(http, self._base_url, sending=True):
            message = self._api(client).create(
                "POST",
                f"/Accounts/{self._account_sid}/Messages.json",
                data={key: value for key, value in form.items() if value is not None},
                headers=dict(_FORM_HEADERS),
            )
        sid = message.get("sid") if isinstance(message, dict) else None
        if not isinstance(sid, str) or not sid:
            raise BadAnswer("Twilio's answer has no message sid")
        return CreatedMessage(
            sid=sid,
            status=str(message.get("status") or ""),
            num_segments=_positive_int(message.get("num_segments")),
        )

    def fetch_account_status(self) -> str:
        """GET the account resource (sends nothing, costs nothing); its status, e.g. "active"."""
        client, http = self.client()
        with _wire_errors(http, self._base_url, sending=False):
            account = self._api(client).fetch(
                "GET", f"/Accounts/{self._account_sid}.json", headers=dict(_ACCEPT_JSON)
            )
        status = account.get("status") if isinstance(account, dict) else None
        return str(status or "")

    def _api(self, client: Client) -> Version:
        """This thread's handle on the 2010-04-01 API, made on first use.

        twilio's own (`client.messages`, `client.api.v2010`) imports every resource of that
        API, ~90 modules and 7 MiB of RSS for two calls; this is the same Version object
        those resources call, with the same URLs, headers and error handling.
        """
        api: Version | None = getattr(self._local, "api", None)
        if api is None:
            api = Version(Domain(client, TWILIO_API_URL), API_VERSION)
            self._local.api = api
        return api

    def close(self) -> None:
        """Close every thread's connections; later calls fail with TransportError."""
        with self._lock:
            self._closed = True
            clients, self._http_clients = self._http_clients, []
        for http in clients:
            http.close()


@contextmanager
def _wire_errors(http: RewritingHttpClient, base_url: str, *, sending: bool) -> Iterator[None]:
    """Turn twilio's and urllib3's exceptions into WireErrors with plain, secret-free text.

    The client never retries (retries=False), so urllib3 raises the first error itself
    rather than a MaxRetryError around it.
    """
    host = urlsplit(base_url).netloc or base_url
    try:
        yield
    except (TwilioRestException, TwilioServiceException) as exc:
        raise _api_error(exc, http.last_headers) from exc
    except TwilioException as exc:
        raise BadAnswer(f"unexpected answer from Twilio: {type(exc).__name__}") from exc
    except urllib3.exceptions.ProxyError as exc:
        # Raised only before the proxy had carried anything to Twilio.
        reason, _ = _connection_failure(exc)
        raise TransportError(
            f"could not reach Twilio at {host} through the proxy ({reason})",
            timed_out=False,
            maybe_sent=False,
        ) from exc
    except urllib3.exceptions.NewConnectionError as exc:
        # A subclass of ConnectTimeoutError, but refused or unresolvable, not slow.
        reason, _ = _connection_failure(exc)
        raise TransportError(
            f"could not reach Twilio at {host} ({reason})", timed_out=False, maybe_sent=False
        ) from exc
    except urllib3.exceptions.ConnectTimeoutError as exc:
        raise TransportError(
            f"could not connect to Twilio at {host} in time", timed_out=True, maybe_sent=False
        ) from exc
    except urllib3.exceptions.TimeoutError as exc:
        raise TransportError(
            f"Twilio at {host} did not answer in time", timed_out=True, maybe_sent=sending
        ) from exc
    except urllib3.exceptions.LocationValueError as exc:
        raise BadBaseUrl(f"cannot make a request to {host!r}") from exc
    except urllib3.exceptions.SSLError as exc:
        raise TransportError(
            f"TLS failed with Twilio at {host} (check the system clock and CA certificates)",
            timed_out=False,
            maybe_sent=False,
        ) from exc
    except urllib3.exceptions.ProtocolError as exc:
        # "Never connected" and "dropped mid-answer" look alike here; only the first is sure
        # not to have reached Twilio.
        reason, connected = _connection_failure(exc)
        raise TransportError(
            f"could not reach Twilio at {host} ({reason})",
            timed_out=False,
            maybe_sent=sending and connected,
        ) from exc
    except urllib3.exceptions.PoolError as exc:
        # The pool was closed under the request (the provider is closing): nothing went out.
        raise TransportError(
            f"could not reach Twilio at {host} ({type(exc).__name__})",
            timed_out=False,
            maybe_sent=False,
        ) from exc
    except urllib3.exceptions.HTTPError as exc:
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
    # urllib3 gives a case-insensitive HTTPHeaderDict, but be safe with a plain one.
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
        # urllib3 keeps the underlying error in .reason or args (ProtocolError, ProxyError).
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
