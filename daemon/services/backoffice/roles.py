"""Roles and what each may do; one table, checked by every mutating route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from storage.models import Role

ROLES: tuple[Role, ...] = get_args(Role)
STAFF: frozenset[Role] = frozenset({"cashier", "manager", "owner"})

Permission = Literal[
    "products.write",  # add, change, price, stock, delete (deactivate)
    "orders.read_all",  # see every customer's orders
    "orders.for_others",  # place an order for another account (a till sale)
    "reports.read",
    "accounts.read",
]

_GRANTS: dict[Role, frozenset[str]] = {
    "customer": frozenset(),
    "cashier": frozenset({"orders.read_all", "orders.for_others"}),
    "manager": frozenset(
        {"products.write", "orders.read_all", "orders.for_others", "reports.read", "accounts.read"}
    ),
    "owner": frozenset(
        {"products.write", "orders.read_all", "orders.for_others", "reports.read", "accounts.read"}
    ),
}

# Which roles each role may create: owners anyone, managers cashiers (never their peers or
# bosses), and nobody but staff creates staff; anyone may sign up as a customer.
_MAY_CREATE: dict[Role, frozenset[Role]] = {
    "customer": frozenset({"customer"}),
    "cashier": frozenset({"customer"}),
    "manager": frozenset({"customer", "cashier"}),
    "owner": frozenset(ROLES),
}

# Designations the supermarket backend's paths used, as aliases of our roles.
_DESIGNATIONS: dict[str, frozenset[Role]] = {
    "admin": frozenset({"owner"}),
    "staff": STAFF,
    "store": STAFF,
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking: an account (from a login token) or the shop's own programs (API token)."""

    account_id: int | None
    username: str
    role: Role

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


# The API token is the shop's own programs and the CLI: the owner's powers, no account.
API_TOKEN_ACTOR = Actor(account_id=None, username="api-token", role="owner")


def can(role: Role, permission: Permission) -> bool:
    return permission in _GRANTS[role]


def may_create(creator: Role | None, role: Role) -> bool:
    """Whether `creator` (None: someone not logged in) may create an account with `role`."""
    if creator is None:
        return role == "customer"
    return role in _MAY_CREATE[creator]


def designation_matches(designation: str, role: Role) -> bool:
    """The supermarket path's designation is only ever checked against the token's role."""
    wanted = designation.strip().lower()
    return wanted == role or role in _DESIGNATIONS.get(wanted, frozenset())
