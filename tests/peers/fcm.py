"""A fake FCM on 127.0.0.1: the HTTP v1 messages:send endpoint and Google's OAuth token endpoint.

    with FcmPeer() as fcm:
        account = fcm.write_service_account(tmp_path / "service-account.json")
        fcm.script(Fault.dead(), match="tok-gone")             # one token, for good
        fcm.script(Fault.quota(retry_after="2"), times=1)      # everyone, once
        fcm.script(Fault.grant_refused(), match=TOKEN_PATH)    # the token endpoint refuses
        fcm.expire_access_token()                              # the next send with it: 401
        provider = FcmProvider(service_account_file=str(account), base_url=fcm.base_url)
        ...
        assert fcm.received[0].message["notification"]["title"] == "Hi"

The token endpoint runs the real JWT-bearer grant: it checks the assertion's RS256 signature
against the public half of the key it wrote into the service-account file, its audience and
its scope, and hands out access tokens the send endpoint then requires. `match` is a send's
target (its token, or "/topics/<name>"), or TOKEN_PATH for the token endpoint; the server
thread, `script` and `received` come from tests/peers/_http.py.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from tests.peers._http import HttpPeer, PeerHandler

PROJECT_ID = "shopbell-fake"
CLIENT_EMAIL = f"shopbell-push@{PROJECT_ID}.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth addresses every service-account assertion to Google's endpoint, whatever the
# file's token_uri says; the real endpoint checks this audience.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
TOKEN_PATH = "/token"  # where this fake's token endpoint listens (a service account's token_uri)
_SEND_PATH = re.compile(r"/v1/projects/(?P<project>[^/]+)/messages:send")
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


@dataclass(frozen=True, slots=True)
class Fault:
    """What the fake answers a send with instead of success (FCM's documented error shapes)."""

    status: int
    error_status: str = ""  # google.rpc status: NOT_FOUND, INVALID_ARGUMENT, ...
    error_code: str | None = None  # the FcmError detail's errorCode: UNREGISTERED, ...
    message: str = ""
    retry_after: str | None = None
    html: bool = False  # an HTML page, as a proxy or load balancer sends
    delay: float = 0.0  # seconds before answering

    @classmethod
    def dead(cls) -> Fault:
        """404 UNREGISTERED: the app was uninstalled or the token expired."""
        return cls(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")

    @classmethod
    def malformed(cls) -> Fault:
        """400 INVALID_ARGUMENT for a token FCM cannot parse."""
        return cls(
            400,
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
        )

    @classmethod
    def bad_payload(cls, text: str = "Invalid value at 'message.data[0].value'") -> Fault:
        """400 INVALID_ARGUMENT about the message itself, not the token."""
        return cls(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", text)

    @classmethod
    def sender_mismatch(cls) -> Fault:
        """403 SENDER_ID_MISMATCH: the token belongs to another Firebase project."""
        return cls(
            403,
            "PERMISSION_DENIED",
            "SENDER_ID_MISMATCH",
            "SenderId mismatch",
        )

    @classmethod
    def permission_denied(cls) -> Fault:
        """403 PERMISSION_DENIED from IAM: our service account may not send."""
        return cls(
            403,
            "PERMISSION_DENIED",
            None,
            "Permission 'cloudmessaging.messages.create' denied on resource",
        )

    @classmethod
    def quota(cls, retry_after: str | None = "1") -> Fault:
        """429 QUOTA_EXCEEDED, with a Retry-After header."""
        return cls(
            429,
            "RESOURCE_EXHAUSTED",
            "QUOTA_EXCEEDED",
            "Quota exceeded for quota metric 'Send requests'",
            retry_after=retry_after,
        )

    @classmethod
    def unavailable(cls, retry_after: str | None = None) -> Fault:
        """503 UNAVAILABLE: FCM overloaded."""
        return cls(
            503,
            "UNAVAILABLE",
            "UNAVAILABLE",
            "The service is currently unavailable.",
            retry_after=retry_after,
        )

    @classmethod
    def internal(cls) -> Fault:
        """500 INTERNAL."""
        return cls(500, "INTERNAL", "INTERNAL", "Internal error encountered.")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Success, but only after `seconds` (above the client's timeout: a hang)."""
        return cls(200, delay=seconds)

    @classmethod
    def grant_refused(cls, status: int = 400, error: str = "invalid_grant") -> Fault:
        """For match=TOKEN_PATH: the token endpoint refuses with OAuth's `error` (400
        invalid_grant: a deleted key; 503: Google down)."""
        return cls(status, error_code=error, message="Fake token refusal")


@dataclass(frozen=True, slots=True)
class Received:
    """One messages:send request as the fake saw it, and what it answered."""

    project: str
    token: str | None
    topic: str | None
    message: dict[str, Any]
    validate_only: bool
    status: int
    name: str | None  # projects/<id>/messages/<n> when accepted
    at: float  # time.monotonic() on arrival
    # The bearer token it came with; hidden from repr like every credential.
    access_token: str | None = field(repr=False, default=None)


@dataclass(frozen=True, slots=True)
class Grant:
    """One request to the token endpoint."""

    status: int
    issuer: str | None
    scope: str | None
    access_token: str | None = field(repr=False, default=None)
    error: str | None = None


class FcmPeer(HttpPeer[Received, Fault]):
    """The fake FCM and OAuth server; a context manager, or start() and stop()."""

    def __init__(self, *, project_id: str = PROJECT_ID, port: int = 0) -> None:
        super().__init__(_Handler, port=port)
        self.project_id = project_id
        self.token_lifetime = 3599  # seconds, as Google's token endpoint says
        # True: every access token is refused (401), as when the key was revoked mid-way.
        self.reject_access_tokens = False
        self._grants: list[Grant] = []
        self._public_keys: dict[str, str] = {}  # private_key_id -> public key PEM
        self._valid_tokens: set[str] = set()
        self._expired_tokens: set[str] = set()
        self._names = itertools.count(1)
        self.private_key_pem = ""  # of the last service account written, for leak checks

    @property
    def base_url(self) -> str:
        """What to give FcmProvider as base_url."""
        return self.origin

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}{TOKEN_PATH}"

    # -- credentials -------------------------------------------------------------------------

    def write_service_account(
        self, path: Path, *, project_id: str | None = None, token_uri: str | None = None
    ) -> Path:
        """Write a service-account JSON with a fresh RSA key whose token_uri is this fake."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public_pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        key_id = secrets.token_hex(20)
        with self._lock:
            self._public_keys[key_id] = public_pem
        self.private_key_pem = private_pem
        info = {
            "type": "service_account",
            "project_id": project_id or self.project_id,
            "private_key_id": key_id,
            "private_key": private_pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri or self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }
        path.write_text(json.dumps(info, indent=2), encoding="utf-8")
        path.chmod(0o600)
        return path

    def expire_access_token(self) -> None:
        """Every access token handed out so far now counts as expired (401 ACCESS_TOKEN_EXPIRED)."""
        with self._lock:
            self._expired_tokens |= self._valid_tokens
            self._valid_tokens.clear()

    # -- inspection --------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget sends, grants, scripted faults and chaos."""
        with self._lock:
            super().clear()
            self._grants.clear()

    @property
    def accepted(self) -> list[Received]:
        """The sends FCM accepted (they got a message name)."""
        return [send for send in self.received if send.name is not None]

    @property
    def grants(self) -> list[Grant]:
        """Every token-endpoint request so far."""
        with self._lock:
            return list(self._grants)

    @property
    def issued_tokens(self) -> list[str]:
        return [grant.access_token for grant in self.grants if grant.access_token]

    # -- serving ---------------------------------------------------------------------------

    def _grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            # Only faults aimed at the token endpoint: the ones for everyone script sends.
            refusal = self._take_fault(lambda match: match == TOKEN_PATH, everyone=False)
            if refusal is not None:
                error = refusal.error_code or "invalid_grant"
                self._grants.append(Grant(refusal.status, None, None, error=error))
                return refusal.status, {"error": error, "error_description": refusal.message}
            keys = dict(self._public_keys)
        if form.get("grant_type") != JWT_BEARER:
            return self._refuse("unsupported_grant_type", "grant_type is not jwt-bearer")
        try:
            claims = jwt.decode(
                form.get("assertion", ""), certs=keys, audience=GOOGLE_TOKEN_AUDIENCE
            )
        except Exception as exc:  # any bad assertion: wrong key, audience, expiry
            return self._refuse("invalid_grant", f"Invalid JWT: {type(exc).__name__}")
        if claims.get("scope") != SCOPE:
            return self._refuse("invalid_scope", "wrong scope")
        token = f"ya29.fake-{secrets.token_hex(12)}"
        with self._lock:
            self._valid_tokens.add(token)
            self._grants.append(Grant(200, claims.get("iss"), claims.get("scope"), token))
        return 200, {
            "access_token": token,
            "expires_in": self.token_lifetime,
            "token_type": "Bearer",
        }

    def _refuse(self, error: str, description: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._grants.append(Grant(400, None, None, error=error))
        return 400, {"error": error, "error_description": description}

    def _send(
        self, project: str, authorization: str | None, raw: str
    ) -> tuple[int, dict[str, Any] | str, dict[str, str], float, Received]:
        arrived = time.monotonic()
        bearer = authorization[7:] if authorization and authorization.startswith("Bearer ") else ""
        try:
            request = json.loads(raw)
            message = request["message"]
            assert isinstance(message, dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            request, message = {}, {}
        token, topic = message.get("token"), message.get("topic")
        record = Received(
            project=project,
            token=token,
            topic=topic,
            message=message,
            validate_only=bool(request.get("validate_only")),
            status=200,
            name=None,
            at=arrived,
            access_token=bearer,
        )
        with self._lock:
            valid = bearer in self._valid_tokens and not self.reject_access_tokens
            expired = bearer in self._expired_tokens
        if not valid:
            # Google checks the credentials before anything else.
            reason = "ACCESS_TOKEN_EXPIRED" if expired else None
            return self._fail(
                record,
                Fault(
                    401, "UNAUTHENTICATED", None, "Request had invalid authentication credentials."
                ),
                reason=reason,
            )
        if project != self.project_id:
            text = f"Permission denied on resource project {project}."
            return self._fail(record, Fault(403, "PERMISSION_DENIED", None, text))
        if not message:
            return self._fail(
                record, Fault(400, "INVALID_ARGUMENT", None, "Invalid JSON payload received.")
            )
        targets = [key for key in ("token", "topic", "condition") if key in message]
        if len(targets) != 1:
            return self._fail(record, Fault(400, "INVALID_ARGUMENT", None, "exactly one target"))
        for index, value in enumerate((message.get("data") or {}).values()):
            if not isinstance(value, str):
                text = f"Invalid value at 'message.data[{index}].value' (TYPE_STRING)"
                return self._fail(record, Fault(400, "INVALID_ARGUMENT", None, text))
        target = token if token is not None else f"/topics/{topic}"
        fault = self._take_fault(lambda match: match == target)
        if fault is not None and fault.status >= 300:
            return self._fail(record, fault)
        name = f"projects/{project}/messages/0:{next(self._names)}%{secrets.token_hex(4)}"
        delay = fault.delay if fault is not None else 0.0
        return 200, {"name": name}, {}, delay, replace(record, status=200, name=name)

    def _fail(
        self, record: Received, fault: Fault, *, reason: str | None = None
    ) -> tuple[int, dict[str, Any] | str, dict[str, str], float, Received]:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.html:
            page = f"<html><body><h1>Error {fault.status}</h1></body></html>"
            headers["Content-Type"] = "text/html"
            return fault.status, page, headers, fault.delay, replace(record, status=fault.status)
        details: list[dict[str, Any]] = []
        if fault.error_code is not None:
            details.append({"@type": _FCM_ERROR, "errorCode": fault.error_code})
        if reason is not None:
            details.append({"@type": _ERROR_INFO, "reason": reason, "domain": "googleapis.com"})
        body = _error(fault.status, fault.error_status, fault.message, details)
        return fault.status, body, headers, fault.delay, replace(record, status=fault.status)


def _error(
    status: int, error_status: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Google's JSON error shape (google.rpc.Status in an "error" object)."""
    error: dict[str, Any] = {"code": status, "message": message, "status": error_status}
    if details:
        error["details"] = details
    return {"error": error}


class _Handler(PeerHandler[FcmPeer]):
    def do_GET(self) -> None:
        self._write(404, _error(404, "NOT_FOUND", "Not found"), {})

    def do_POST(self) -> None:
        peer = self.peer
        raw = self.read_body().decode("utf-8")
        path = self.path.split("?", 1)[0]
        if path == TOKEN_PATH:
            status, body = peer._grant(dict(parse_qsl(raw, keep_blank_values=True)))
            self._write(status, body, {})
            return
        matched = _SEND_PATH.fullmatch(path)
        if matched is None:
            self._write(404, _error(404, "NOT_FOUND", f"{path} not found"), {})
            return
        status, body, headers, delay, record = peer._send(
            matched["project"], self.headers.get("Authorization"), raw
        )
        peer._record(record)
        if peer._hold(delay):
            self.close_connection = True
            return
        self._write(status, body, headers)

    def _write(self, status: int, body: dict[str, Any] | str, headers: dict[str, str]) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        content_type = headers.pop("Content-Type", "application/json; charset=UTF-8")
        self.send(status, text.encode("utf-8"), [("Content-Type", content_type), *headers.items()])
