"""One subscriber in full: contact, status, TGTG login, favourites with last counts, push tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from tui.format import ago, money, when
from tui.records import Favorite, PushToken, Subscriber, TgtgAccount

# What each TGTG login state asks of the shopkeeper.
TGTG_HINTS = {
    "pending": "TGTG mailed a PIN: press p to enter it",
    "active": "logged in; favourites are watched",
    "blocked": "TGTG is blocking requests (captcha); the watcher waits",
    "error": "the login failed: press l to start it again",
    "disabled": "not watched",
}


@dataclass(frozen=True, slots=True)
class SubscriberFile:
    """Everything the detail shows about one subscriber, loaded together."""

    subscriber: Subscriber
    tgtg: TgtgAccount | None
    favorites: tuple[Favorite, ...]
    tokens: tuple[PushToken, ...]


def render_file(file: SubscriberFile | None, now: datetime) -> RenderableType:
    """The detail as Rich renderables; also used by the detail modal at 80 columns."""
    if file is None:
        return Text("No subscriber selected.", style="dim")
    s = file.subscriber
    facts = Table.grid(padding=(0, 1))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row("Phone", s.phone or "—")
    facts.add_row("E-mail", s.email or "—")
    facts.add_row("Channels", ", ".join(s.channels) or "—")
    if s.opted_out_at is not None:
        facts.add_row("Opted out", Text(when(s.opted_out_at, now), style="bold red"))
    else:
        facts.add_row("Opted out", "no")
    verified = when(s.verified_at, now) if s.verified_at else "not yet (press v)"
    facts.add_row("Verified", verified)
    facts.add_row("Watches", ", ".join(s.watch_items) or "every favourite")
    facts.add_row("Price drops", "alerted" if s.price_drop_alerts else "not alerted")
    if file.tgtg is None:
        facts.add_row("TGTG", Text("no login (press l to start one)", style="dim"))
    else:
        login = file.tgtg
        facts.add_row("TGTG", f"{login.state} · {login.email}")
        hint = login.state_detail or TGTG_HINTS.get(login.state, "")
        if hint:
            facts.add_row("", Text(hint, style="italic"))
        if login.last_poll_at:
            facts.add_row("Last poll", f"{ago(login.last_poll_at, now)} ago")
    parts: list[RenderableType] = [Text(s.name or f"Subscriber {s.id}", style="bold"), facts]
    parts.append(Text(f"\nFavourites ({len(file.favorites)})", style="bold"))
    if file.favorites:
        favorites = Table.grid(padding=(0, 1))
        favorites.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
        favorites.add_column(justify="right", no_wrap=True)
        favorites.add_column(justify="right", no_wrap=True)
        for item in file.favorites:
            name = " — ".join(x for x in (item.store_name, item.display_name) if x) or item.item_id
            style = "green" if item.items_available else "dim"
            count = Text(f"{item.items_available} left", style=style)
            favorites.add_row(name, count, money(item.price_minor, item.currency or ""))
        parts.append(favorites)
    parts.append(Text(f"\nPush tokens ({len(file.tokens)})", style="bold"))
    if file.tokens:
        tokens = Table.grid(padding=(0, 1))
        for token in file.tokens:
            seen = f"seen {ago(token.last_seen_at, now)} ago" if token.last_seen_at else ""
            state = Text("valid", style="green") if token.valid else Text("dead", style="red")
            tokens.add_row(token.platform or "?", f"…{token.tail}", state, seen)
        parts.append(tokens)
    return Group(*parts)


class SubscriberDetail(Static):
    """Shows `file` as of `now`; the screen sets both, the widget only draws."""

    file: reactive[SubscriberFile | None] = reactive(None)
    now: reactive[datetime] = reactive(lambda: datetime(1970, 1, 1, tzinfo=UTC))

    def watch_file(self) -> None:
        self.update(render_file(self.file, self.now))
