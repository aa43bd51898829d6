"""Login tokens: short-lived JWTs (PyJWT, HS256) signed with a key kept in the data folder."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType

from daemon.runtime.clock import Clock
from daemon.runtime.paths import ensure_secret_key
from daemon.services.backoffice.roles import ROLES, Actor

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
ISSUER = "shopbell"
KEY_FILENAME = "jwt_key"
KEY_BYTES = 32
DEFAULT_TTL = timedelta(minutes=15)


def ensure_jwt_key(path: Path) -> bytes:
    """The signing key at `path`, generated (0600) on first use; see ensure_secret_key."""
    return ensure_secret_key(
        path,
        size=KEY_BYTES,
        what="access-token signing key",
        log_name="accounts",
        lost="everyone logged in must log in again",
    )


class TokenIssuer:
    """Issues and checks login tokens; time comes from the injected clock."""

    def __init__(self, key: bytes, clock: Clock, *, ttl: timedelta = DEFAULT_TTL) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"the signing key must be at least {KEY_BYTES} bytes")
        self._key = key
        self._clock = clock
        self.ttl = ttl

    def issue(self, actor: Actor) -> tuple[str, datetime]:
        """A token for `actor` (an account) and when it expires."""
        if actor.account_id is None:
            raise ValueError("only accounts get login tokens")
        now = self._clock.now()
        expires = now + self.ttl
        claims = {
            "iss": ISSUER,
            "sub": str(actor.account_id),
            "name": actor.username,
            "role": actor.role,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
        }
        jwt = _jwt()
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), expires

    def verify(self, token: str) -> Actor | None:
        """The actor a valid token names; None when it is forged, expired or malformed.

        Only HS256 is accepted, so a token signed with "none" or another algorithm fails.
        Expiry is checked against the injected clock, not PyJWT's own time.
        """
        if token.count(".") != 2:
            return None
        jwt = _jwt()
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={
                    "require": ["exp", "iat", "sub", "role", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            log.debug("login token refused: %s", exc)
            return None
        exp, role, sub = claims.get("exp"), claims.get("role"), claims.get("sub")
        if not isinstance(exp, int) or exp <= self._clock.now().timestamp():
            return None
        if role not in ROLES or not isinstance(sub, str) or not sub.isdigit():
            return None
        return Actor(account_id=int(sub), username=str(claims.get("name", "")), role=role)


def _jwt() -> ModuleType:
    """PyJWT, loaded at the first login: it brings in `cryptography` (~9 MB resident), which
    a daemon that never sees a back-office login should not carry."""
    import jwt

    return jwt
