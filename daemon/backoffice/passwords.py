"""Password hashing with argon2id (argon2-cffi's PasswordHasher, OWASP's parameters)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_LENGTH = 8
MAX_LENGTH = 128
# OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane) rather than argon2-cffi's
# default (64 MiB, 3 passes, 4 lanes): each login briefly takes this much memory, and the
# daemon shares a small Raspberry Pi. Hashes made with other parameters still verify and are
# rehashed at the next login (needs_rehash).
MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1


class Passwords:
    """Hashes and checks passwords; tests pass a cheaper PasswordHasher."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._given = hasher
        # Checked against when the login names nobody, so an unknown user costs the same
        # time as a wrong password and timing does not tell which it was. Made at the first
        # such login, not at startup.
        self._dummy: str | None = None

    @property
    def _hasher(self) -> PasswordHasher:
        # Made (and argon2-cffi imported, ~0.4 MiB) at the first password, not at startup:
        # many shops never log in to the back office.
        if self._given is None:
            from argon2 import PasswordHasher

            self._given = PasswordHasher(
                time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM
            )
        return self._given

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        hasher = self._hasher
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        try:
            return hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def burn(self, password: str) -> None:
        """Spend the time of one verify, for a login that names no account."""
        if self._dummy is None:
            self._dummy = self._hasher.hash("shopbell-no-such-user")
        self.verify(self._dummy, password)


def check_password(password: str) -> str | None:
    """Why `password` is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    return None
