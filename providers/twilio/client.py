"""Twilio's Messages API on the wire: the twilio package's own client, one per worker thread.

The HTTP is twilio's TwilioHttpClient (requests underneath) with our timeout and no retries;
requests brings the proxy (HTTPS_PROXY, NO_PROXY, ...) and CA bundle (REQUESTS_CA_BUNDLE)
settings from the environment by itself.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from twilio.base.domain import Domain
from twilio.base.exceptions import TwilioServiceException
from twilio.base.version import Version
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from providers.retry_after import parse_retry_after

logger = logging.getLogger(__name__)

TWILIO_API_URL = "https://api.twilio.com"
# The Messages API's version, as twilio.rest.api.v2010 names it.
API_VERSION = "2010-04-01"
# twilio's Client falls back to os.environ when `environment` is falsy, so `environment={}`
# does NOT shield it: TWILIO_REGION / TWILIO_EDGE in the daemon's environment would still
# rewrite base_url's host into a regional one. A non-empty mapping of empty values does.
_NO_ENVIRONMENT = {
    "TWILIO_ACCOUNT_SID": "",
    "TWILIO_AUTH_TOKEN": "",
    "TWILIO_EDGE": "",
    "TWILIO_REGION": "",
}
# What twilio puts before the error text of a legacy error answer.
_FAILED = "Unable to complete the request"
_DETAIL_LIMIT = 300


class WireError(Exception):
    """A call to Twilio did not produce the record it asked for."""


class ApiError(WireError):
    """Twilio (or whatever sits at base_url) answered with a non-2xx status.

    Both of Twilio's error shapes (the legacy `{"code","message"}` one and RFC 9457 problem
    details) end up here. `code` is Twilio's own error code, None when the answer carried
    none (twilio then repeats the HTTP status, which is not a Twilio code).
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


class BadSetting(WireError):
    """base_url, or the proxy or CA bundle from the environment, cannot be used at all."""


@dataclass(frozen=True, slots=True)
class CreatedMessage:
    """The parts of Twilio's Message resource the outbox keeps."""

    sid: str
    status: str
    num_segments: int | None


class _DebugOnly(logging.LoggerAdapter):
    """twilio's HttpClient logs every request in about ten INFO lines: keep them for DEBUG."""

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.debug(msg, *args, **kwargs)


class TwilioWire:
    """Blocking calls to Twilio's REST API; safe to call from many threads at once."""

    def __init__(
        self, *, account_sid: str, auth_token: str, base_url: str, timeout_seconds: float
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._base_url = base_url
        self._host = urlsplit(base_url).netloc or base_url
        self._timeout = timeout_seconds
        # One twilio Client per thread: a requests Session (and its kept-alive connection)
        # is not shared between threads.
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: list[requests.Session] = []
        self._closed = False

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
        # The form twilio's MessageList.create posts; twilio's Client drops the None values.
        form: dict[str, object] = {
            "To": to,
            "StatusCallback": status_callback,
            "ValidityPeriod": validity_period,
            "MessageIntent": message_intent,
            "From": from_,
            "MessagingServiceSid": messaging_service_sid,
            "Body": body,
        }
        message = self._call("POST", f"/Accounts/{self._account_sid}/Messages.json", form)
        sid = message.get("sid")
        if not isinstance(sid, str) or not sid:
            raise BadAnswer("Twilio's answer has no message sid")
        return CreatedMessage(
            sid=sid,
            status=str(message.get("status") or ""),
            num_segments=_positive_int(message.get("num_segments")),
        )

    def fetch_account_status(self) -> str:
        """GET the account resource (sends nothing, costs nothing); its status, e.g. "active"."""
        account = self._call("GET", f"/Accounts/{self._account_sid}.json")
        return str(account.get("status") or "")

    def close(self) -> None:
        """Close every thread's connections; later calls fail with TransportError."""
        with self._lock:
            self._closed = True
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def _call(self, method: str, uri: str, form: dict[str, object] | None = None) -> dict[str, Any]:
        """One request through twilio; the answer's JSON object, or a WireError."""
        api = self._api()
        sending = method == "POST"
        with _transport_errors(self._host, sending=sending):
            response = api.request(method, uri, data=form)
        if not 200 <= response.status_code < 300:
            raise _api_error(api.exception(method, uri, response, _FAILED), response)
        try:
            record = json.loads(response.text)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise BadAnswer(f"the answer from {self._host} is not Twilio's JSON")
        return record

    def _api(self) -> Version:
        """This thread's handle on the 2010-04-01 API at base_url, made on first use.

        The same Version object twilio's `client.api.v2010` resources call, on a Domain at
        base_url rather than api.twilio.com: that is how the fake Twilio or a gateway is
        reached. (`client.messages` itself would also import every other resource of the
        API, ~90 modules, for two calls.)
        """
        if self._closed:
            raise TransportError("the Twilio client is closed", timed_out=False, maybe_sent=False)
        api: Version | None = getattr(self._local, "api", None)
        if api is None:
            # No retries: a retried POST can send the SMS twice, and the outbox does its own
            # retrying with backoff and failover. twilio never follows redirects.
            http = TwilioHttpClient(
                timeout=self._timeout, max_retries=0, logger=_DebugOnly(logger, {})
            )
            client = Client(
                self._account_sid,
                self._auth_token,
                http_client=http,
                environment=dict(_NO_ENVIRONMENT),
            )
            api = Version(Domain(client, self._base_url), API_VERSION)
            with self._lock:
                closed = self._closed
                if http.session is not None and not closed:
                    self._sessions.append(http.session)
            if closed:  # close() ran while this client was being made
                raise TransportError(
                    "the Twilio client is closed", timed_out=False, maybe_sent=False
                )
            self._local.api = api
        return api


@contextmanager
def _transport_errors(host: str, *, sending: bool) -> Iterator[None]:
    """Turn requests' exceptions into WireErrors with plain, secret-free text."""
    try:
        yield
    except requests.exceptions.ProxyError as exc:
        # Raised only before the proxy had carried anything to Twilio.
        raise TransportError(
            f"could not reach Twilio at {host} through the proxy",
            timed_out=False,
            maybe_sent=False,
        ) from exc
    except requests.exceptions.SSLError as exc:
        raise TransportError(
            f"TLS failed with Twilio at {host} (check the system clock and CA certificates)",
            timed_out=False,
            maybe_sent=False,
        ) from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise _unreachable(exc, host, sending=sending) from exc
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
    ) as exc:
        raise BadSetting(
            f"cannot make a request to {host!r} (check base_url and the proxy settings)"
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise TransportError(
            f"broken answer from Twilio at {host} ({type(exc).__name__})",
            timed_out=False,
            maybe_sent=sending,
        ) from exc
    except OSError as exc:
        # Not a RequestException: requests' own "could not find a suitable TLS CA
        # certificate bundle" for a REQUESTS_CA_BUNDLE that does not exist.
        raise BadSetting(f"cannot load the CA certificates for {host}: {exc}") from exc


def _unreachable(exc: BaseException, host: str, *, sending: bool) -> TransportError:
    """The TransportError for a failed connection, and whether the request may have gone."""
    causes = _causes(exc)

    def has(kind: type[BaseException]) -> bool:
        return any(isinstance(cause, kind) for cause in causes)

    for kind, reason in (
        (ConnectionRefusedError, "connection refused"),
        (urllib3.exceptions.NameResolutionError, "host name not found"),
        # A subclass of ConnectTimeoutError, but refused or unresolvable, not slow.
        (urllib3.exceptions.NewConnectionError, "no connection"),
    ):
        if has(kind):
            return TransportError(
                f"could not reach Twilio at {host} ({reason})", timed_out=False, maybe_sent=False
            )
    if has(urllib3.exceptions.ConnectTimeoutError):
        return TransportError(
            f"could not connect to Twilio at {host} in time", timed_out=True, maybe_sent=False
        )
    if has(urllib3.exceptions.TimeoutError):
        return TransportError(
            f"Twilio at {host} did not answer in time", timed_out=True, maybe_sent=sending
        )
    # "Dropped mid-answer": the request was on the wire.
    return TransportError(
        f"could not reach Twilio at {host} (connection dropped)",
        timed_out=False,
        maybe_sent=sending,
    )


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and everything under it: requests and urllib3 wrap the real error in .reason,
    in args (ConnectionError(MaxRetryError(...))) and in __cause__ / __context__."""
    causes: list[BaseException] = []
    stack: list[BaseException | None] = [exc]
    while stack:
        cause = stack.pop()
        if cause is None or any(cause is seen for seen in causes):
            continue
        causes.append(cause)
        reason = getattr(cause, "reason", None)
        stack.extend([cause.__cause__, cause.__context__])
        stack.extend(a for a in (reason, *cause.args) if isinstance(a, BaseException))
    return causes


def _api_error(exc: Exception, response: Response) -> ApiError:
    """ApiError from twilio's exception for a non-2xx answer, and its Retry-After header."""
    status = response.status_code
    code = getattr(exc, "code", None)
    # twilio repeats the HTTP status as the "code" when the body had none; Twilio's own codes
    # are five digits.
    if not isinstance(code, int) or code < 10000:
        code = None
    if isinstance(exc, TwilioServiceException):
        detail = exc.detail or exc.title or ""
    else:
        detail = str(getattr(exc, "msg", "") or "").removeprefix(_FAILED).removeprefix(": ")
    detail = " ".join(detail.split())[:_DETAIL_LIMIT]
    return ApiError(
        status=status,
        code=code,
        detail=detail,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def _positive_int(value: object) -> int | None:
    # num_segments is a string, "0" while a Messaging Service has not picked a sender yet.
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None
