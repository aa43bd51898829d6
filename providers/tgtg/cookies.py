"""One TGTG account's cookies: what every answer's Set-Cookie adds, sent back as one header.

One parsing rule serves the three places a cookie comes from (a stored Cookie header, a
`Set-Cookie` on an answer, the `cookie` string DataDome's SDK hands out): the text before the
first `;` is the cookie; `name=value` is keyed by its name, and text without `=` is a cookie
with an empty name whose value is the whole text (RFC 6265bis, "nameless" cookies). The
reference keeps such a cookie: its tests answer a refresh with `Set-Cookie: sweet sweet
cookie` and expect it back (ahivert/tgtg-python tests/test_login.py, test_login_with_tokens).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DATADOME = "datadome"


def _cookie(text: str) -> tuple[str, str] | None:
    """(name, value) of one cookie text; attributes after the first `;` are dropped."""
    pair = text.split(";", 1)[0].strip()
    if not pair:
        return None
    name, sep, value = pair.partition("=")
    if not sep:
        return "", pair
    return name.strip(), value.strip()


@dataclass(frozen=True, slots=True)
class CookieJar:
    """The cookies in the order first set; a newer cookie of the same name replaces the old."""

    cookies: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, header: str | None) -> CookieJar:
        """A jar from a stored Cookie header (`a=1; b=2`), None being an empty jar."""
        return cls().with_cookies((header or "").split(";"))

    def with_cookies(self, texts: Iterable[str]) -> CookieJar:
        """This jar with the cookies of `texts` (Set-Cookie values, or Cookie header parts)."""
        found = dict(self.cookies)
        for text in texts:
            cookie = _cookie(text)
            if cookie is not None:
                found[cookie[0]] = cookie[1]
        return CookieJar(tuple(found.items()))

    def has(self, name: str) -> bool:
        return any(known == name for known, _ in self.cookies)

    def header(self) -> str | None:
        """The Cookie header to send, None with no cookie."""
        parts = [f"{name}={value}" if name else value for name, value in self.cookies]
        return "; ".join(parts) or None
