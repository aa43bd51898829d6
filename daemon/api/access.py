"""Who may call what: one row per route, read by the auth layer and printed in the README.

Kinds of access:
- public: anyone who reaches the port. Each such route either is harmless (health, docs),
  checks the caller itself (a Twilio signature, a password), or is limited per client.
- local: the old SMS backend's send routes. Its programs call them without a token from
  the shop PC, so a caller in `[api] trusted_networks` needs none, unless it looks like a
  web page or a rebinding DNS name (see daemon/api/auth.py); from anywhere else the token.
- token: the API token only (`shopbell token` prints it).
- login: the API token or a back-office login (a JWT from a login route); the route then
  checks the login's role.

A route without a row is refused to everyone but the API token, and a test walks the app's
routes and its OpenAPI document so a new route cannot ship without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

# A per-client limit of [limits], by its setting's name.
LimitName = Literal["otp_sends", "signups", "logins", "subscribes"]


class Access(StrEnum):
    PUBLIC = "public"
    LOCAL = "local"
    TOKEN = "token"  # noqa: S105 -- an access kind, not a secret
    LOGIN = "login + role"


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may call `method` on `path` (a route template, as in the OpenAPI document)."""

    method: str
    path: str
    access: Access
    limit: LimitName | None = None
    note: str = ""


def _rows(
    access: Access, *routes: str, limit: LimitName | None = None, note: str = ""
) -> list[Rule]:
    rules = []
    for route in routes:
        method, _, path = route.partition(" ")
        rules.append(Rule(method, path, access, limit, note))
    return rules


PUBLIC, LOCAL, TOKEN, LOGIN = Access.PUBLIC, Access.LOCAL, Access.TOKEN, Access.LOGIN

# In the order of the README's table: the seeds' paths first, then shopbell's own API.
ACCESS: tuple[Rule, ...] = (
    *_rows(PUBLIC, "GET /", note="home page; provider detail only with the token"),
    *_rows(PUBLIC, "GET /api/health", note="up/down and versions; detail only with the token"),
    *_rows(PUBLIC, "GET /api", "GET /api/openapi.json", note="the API's index and schema"),
    *_rows(
        PUBLIC,
        "GET /api/docs",
        "GET /api/docs/oauth2-redirect",
        "GET /api/docs/assets",
        "GET /api/redoc",
        note="API docs, served offline",
    ),
    # Seed 1, the SMS and push backend: its programs send from the shop PC.
    *_rows(LOCAL, "POST /smss", "POST /notifications/tokens", "POST /notifications/topic"),
    # Seed 1's other half and the shop's OTP clients: codes by SMS, limited per client
    # address here and per phone by [otp].
    *_rows(PUBLIC, "POST /api/send-otp", limit="otp_sends"),
    *_rows(PUBLIC, "POST /api/verify-otp", "GET /api/otp-status/{phone}"),
    *_rows(PUBLIC, "POST /sms", "POST /twilio/status", note="Twilio's webhooks, signed"),
    # Seed 0, the TGTG alerts front end, posts straight from the page.
    *_rows(PUBLIC, "POST /submit_subscriber_info", limit="subscribes"),
    *_rows(PUBLIC, "GET /process_subscriber/{subscriber_id}", note="the TGTG login's state"),
    # Seeds 2 and 4: sign-up and login (the password is the check), and the catalogue.
    *_rows(
        PUBLIC,
        "POST /signup",
        "POST /store/signup",
        "POST /api/users/register",
        "POST /api/v1/accounts",
        "POST /register",
        limit="signups",
        note="staff roles need a manager's login",
    ),
    *_rows(
        PUBLIC,
        "POST /login",
        "POST /store/login",
        "POST /api/users/login",
        "POST /api/v1/accounts/login",
        limit="logins",
    ),
    *_rows(
        PUBLIC,
        "GET /api/products",
        "GET /api/products/{product_id}",
        "GET /phones",
        "GET /laptops",
        "GET /accessories",
        "GET /sounddevices",
        note="the catalogue",
    ),
    *_rows(LOGIN, "GET /user", note="the login's own account"),
    *_rows(
        LOGIN,
        "POST /add_item/{designation}",
        "POST /delete_item/{item_id}/{designation}",
        "DELETE /delete_item/{item_id}/{designation}",
        "PUT /update_item_rate/{item_id}/{designation}",
        "POST /update_item_rate/{item_id}/{designation}",
        "POST /purchase",
        "POST /api/orders/create",
        "GET /api/orders",
        "GET /api/orders/{order_id}",
        "GET /total_items_purchased",
        "GET /high_value_users",
        "GET /total_sales_shampoo_last_7_days",
        "GET /total_shampoo_sales_last_week",
    ),
    # shopbell's own API.
    *_rows(
        TOKEN,
        "POST /api/v1/messages",
        "GET /api/v1/messages",
        "GET /api/v1/messages/{message_id}",
        "POST /api/v1/messages/{message_id}/cancel",
        "POST /api/v1/messages/{message_id}/retry",
        "POST /api/v1/notifications",
        "GET /api/v1/notifications",
        "GET /api/v1/notifications/{notification_id}",
        "POST /api/v1/push-tokens",
        "GET /api/v1/push-tokens",
        "GET /api/v1/push-tokens/{token_id}",
        "DELETE /api/v1/push-tokens/{token_id}",
    ),
    *_rows(
        LOGIN,
        "GET /api/v1/accounts",
        "GET /api/v1/accounts/me",
        "GET /api/v1/products",
        "POST /api/v1/products",
        "GET /api/v1/products/categories",
        "GET /api/v1/products/{product_id}",
        "PATCH /api/v1/products/{product_id}",
        "POST /api/v1/products/{product_id}/stock",
        "DELETE /api/v1/products/{product_id}",
        "POST /api/v1/orders",
        "GET /api/v1/orders",
        "GET /api/v1/orders/{order_id}",
        "GET /api/v1/reports/category-sales",
        "GET /api/v1/reports/top-products",
        "GET /api/v1/reports/daily-totals",
        "GET /api/v1/reports",
        "GET /api/v1/reports/{report_id}",
        "POST /api/v1/reports/send",
    ),
    *_rows(
        TOKEN,
        "GET /api/v1/subscribers",
        "POST /api/v1/subscribers",
        "GET /api/v1/subscribers/{subscriber_id}",
        "PATCH /api/v1/subscribers/{subscriber_id}",
        "DELETE /api/v1/subscribers/{subscriber_id}",
        "POST /api/v1/subscribers/{subscriber_id}/tgtg/login",
        "POST /api/v1/subscribers/{subscriber_id}/tgtg/pin",
        "GET /api/v1/subscribers/{subscriber_id}/tgtg",
        "GET /api/v1/tgtg/accounts",
        "GET /api/v1/tgtg/favorites",
        "GET /api/v1/stats",
    ),
    # The route asks for the token itself, unless [metrics] public = true opens it.
    *_rows(PUBLIC, "GET /metrics", note="the token, unless [metrics] public = true"),
)

_BY_ROUTE: dict[tuple[str, str], Rule] = {(rule.method, rule.path): rule for rule in ACCESS}
if len(_BY_ROUTE) != len(ACCESS):
    raise RuntimeError("daemon/api/access.py lists a route twice")


def rule_for(method: str, path: str) -> Rule | None:
    """The row for `method` on the route template `path`; HEAD follows GET."""
    method = method.upper()
    rule = _BY_ROUTE.get((method, path))
    if rule is None and method == "HEAD":
        rule = _BY_ROUTE.get(("GET", path))
    return rule


def is_public(method: str, path: str) -> bool:
    """True when `method` on the route template `path` needs no credentials from anyone."""
    rule = rule_for(method, path)
    return rule is not None and rule.access is Access.PUBLIC


def markdown_table() -> str:
    """The table as the README prints it (a test keeps the two the same)."""
    lines = ["| Method | Path | Access | Limit per client | Note |", "|---|---|---|---|---|"]
    for rule in ACCESS:
        limit = f"`[limits] {rule.limit}`" if rule.limit else ""
        lines.append(
            f"| {rule.method} | `{rule.path}` | {rule.access.value} | {limit} | {rule.note} |"
        )
    return "\n".join(lines)
