"""The subscribers mode: search, add, edit, delete, opt out and in, verify by OTP, TGTG login."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Static

from tui.modals.confirm import ConfirmModal
from tui.modals.otp_verify import OtpVerifyModal, Verified
from tui.modals.pin_entry import PinEntryModal
from tui.modals.subscriber_form import SubscriberFormModal
from tui.modals.subscriber_view import SubscriberViewModal
from tui.records import Subscriber, SubscriberDetails, TgtgAccount
from tui.screens.base import ModeScreen
from tui.widgets.subscriber_detail import SubscriberDetail, SubscriberFile
from tui.widgets.subscriber_table import SubscriberTable

# Rows per request; "m" asks for the next page (the table is never loaded whole).
PAGE = 100
# Push tokens shown per subscriber: a person has a handful of devices, not hundreds.
TOKENS_SHOWN = 20
# The purpose the daemon's OTP service records for proving a phone number.
OTP_PURPOSE = "verify-phone"


def matches(subscriber: Subscriber, query: str) -> bool:
    """Case-insensitive match of every word on name, e-mail or phone (digits match loosely)."""
    haystack = " ".join(
        x for x in (subscriber.name, subscriber.email, subscriber.phone) if x
    ).casefold()
    digits = "".join(c for c in (subscriber.phone or "") if c.isdigit())
    for word in query.casefold().split():
        word_digits = "".join(c for c in word if c.isdigit())
        if word in haystack or (word_digits and word_digits == word and word_digits in digits):
            continue
        return False
    return True


class SubscribersScreen(ModeScreen):
    """The table of subscribers, a search box, and the highlighted one's detail: beside the
    table on a wide terminal, in a modal (Enter) on a narrow one."""

    TITLE = "Subscribers"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    # The table, not the search box: keys typed into an Input (the mode digits too) stay there.
    AUTO_FOCUS = "#subscribers"
    BINDINGS = [
        Binding("a", "add_subscriber", "Add"),
        Binding("e", "edit_subscriber", "Edit"),
        Binding("d", "delete_subscriber", "Delete"),
        Binding("o", "toggle_opt_out", "Opt out"),
        Binding("v", "verify_subscriber", "Verify"),
        Binding("l", "start_tgtg_login", "TGTG"),
        Binding("p", "enter_tgtg_pin", "PIN"),
        Binding("m", "load_more", "More"),
        Binding("slash", "focus_search", "Search"),
        Binding("r", "refresh", "Reload", show=False),
        Binding("escape", "focus_table", "Table", show=False),
    ]
    DEFAULT_CSS = """
    SubscribersScreen #subscribers-body {
        height: 1fr;
    }
    SubscribersScreen #subscribers-left {
        width: 1fr;
    }
    SubscribersScreen #subscriber-search {
        margin: 0 0;
    }
    SubscribersScreen #subscribers {
        height: 1fr;
    }
    SubscribersScreen #subscribers-status {
        height: 1;
        color: $text-muted;
        padding: 0 1;
    }
    SubscribersScreen #subscriber-detail {
        width: 52;
        height: 1fr;
        border-left: vkey $primary 50%;
        padding: 0 1;
        overflow-y: auto;
    }
    SubscribersScreen.-narrow #subscriber-detail {
        display: none;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[Subscriber] = []
        self.next_after: int | None = None
        # The search the loaded rows answer ("" for none).
        self.loaded_query = ""
        self.file: SubscriberFile | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="subscribers-body"):
            with Vertical(id="subscribers-left"):
                yield Input(placeholder="Search name, e-mail or phone (/)", id="subscriber-search")
                yield SubscriberTable(id="subscribers")
                yield Static("", id="subscribers-status")
            yield SubscriberDetail(id="subscriber-detail")

    @property
    def table(self) -> SubscriberTable:
        return self.query_one(SubscriberTable)

    def refresh_data(self) -> None:
        self.load_subscribers(more=False)

    # -- loading ---------------------------------------------------------------------------

    @work(exclusive=True, group="subscribers-list", exit_on_error=False)
    async def load_subscribers(self, more: bool) -> None:
        """The first page again (keeping as many rows as were loaded), or the next page."""
        # The daemon searches the whole list (`q`), so a match beyond the pages seen is found.
        query = self.query_one("#subscriber-search", Input).value.strip()
        if more and query == self.loaded_query:
            if self.next_after is None:
                return
            page = await self.api.subscribers(limit=PAGE, after=self.next_after, search=query)
            # A subscriber added here since the last page may come again: keep it once.
            known = {s.id for s in self.loaded}
            found = self.loaded + [s for s in page.subscribers if s.id not in known]
        else:
            # A reload keeps as many rows as were loaded; a new search starts at one page.
            want = max(PAGE, len(self.loaded)) if query == self.loaded_query else PAGE
            page = await self.api.subscribers(limit=min(want, 500), after=0, search=query)
            found = list(page.subscribers)
        self.loaded = found
        self.loaded_query = query
        self.next_after = page.next_after
        self.show_rows()

    def show_rows(self) -> None:
        query = self.query_one("#subscriber-search", Input).value.strip()
        shown = [s for s in self.loaded if matches(s, query)] if query else self.loaded
        self.table.show(shown)
        more = " · m loads more" if self.next_after is not None else ""
        where = f"{len(shown)} found" if query else f"{len(shown)} loaded"
        self.query_one("#subscribers-status", Static).update(f"{where}{more}")
        if not shown:
            self.file = None
            self.query_one(SubscriberDetail).file = None
        else:
            self.show_detail_of_cursor()

    @on(Input.Changed, "#subscriber-search")
    def _search(self) -> None:
        # What is loaded is filtered at once; the daemon's answer (each key cancels the
        # previous ask) then brings the matches not loaded yet.
        self.show_rows()
        self.load_subscribers(more=False)

    @on(Input.Submitted, "#subscriber-search")
    def _to_table(self) -> None:
        self.table.focus()

    @on(DataTable.RowHighlighted, "#subscribers")
    def show_detail_of_cursor(self) -> None:
        subscriber_id = self.table.highlighted_id
        # A narrow terminal has no pane: the detail is read when Enter opens it.
        if subscriber_id is not None and self.has_class("-wide"):
            self.load_detail(subscriber_id, popup=False)

    @on(DataTable.RowSelected, "#subscribers")
    def _open(self) -> None:
        subscriber_id = self.table.highlighted_id
        if subscriber_id is not None and self.has_class("-narrow"):
            self.load_detail(subscriber_id, popup=True)

    @work(exclusive=True, group="subscribers-detail", exit_on_error=False)
    async def load_detail(self, subscriber_id: int, popup: bool) -> None:
        """The subscriber with their TGTG login, favourites and push tokens."""
        detail = await self.api.subscriber(subscriber_id)
        favorites = await self.api.favorites(subscriber_id)
        tokens = await self.api.push_tokens(subscriber_id, limit=TOKENS_SHOWN)
        self.file = SubscriberFile(
            subscriber=detail.subscriber, tgtg=detail.tgtg, favorites=favorites, tokens=tokens
        )
        pane = self.query_one(SubscriberDetail)
        pane.now = self.shop.clock()
        pane.file = self.file
        if popup:
            self.app.push_screen(SubscriberViewModal(self.file, self.shop.clock()))

    def selected(self) -> Subscriber | None:
        """The highlighted subscriber, or a notice that there is none."""
        subscriber_id = self.table.highlighted_id
        for subscriber in self.loaded:
            if subscriber.id == subscriber_id:
                return subscriber
        self.notify("No subscriber selected.", severity="warning")
        return None

    def _replace(self, saved: Subscriber) -> None:
        """Show a saved subscriber at once, without waiting for a reload."""
        for n, subscriber in enumerate(self.loaded):
            if subscriber.id == saved.id:
                self.loaded[n] = saved
                break
        else:
            # New ids are the highest: it belongs at the end, shown now even if pages follow.
            self.loaded.append(saved)
        self.show_rows()
        if str(saved.id) in self.table.rows:
            self.table.move_cursor(row=self.table.get_row_index(str(saved.id)))

    # -- actions ---------------------------------------------------------------------------

    def action_focus_search(self) -> None:
        self.query_one("#subscriber-search", Input).focus()

    def action_focus_table(self) -> None:
        self.table.focus()

    def action_refresh(self) -> None:
        self.refresh_data()

    def action_load_more(self) -> None:
        if self.next_after is None:
            self.notify("Every subscriber is loaded.")
            return
        self.load_subscribers(more=True)

    def action_add_subscriber(self) -> None:
        self.app.push_screen(SubscriberFormModal(None, self.api.add_subscriber), self._saved)

    def action_edit_subscriber(self) -> None:
        subscriber = self.selected()
        if subscriber is None:
            return

        async def save(details: SubscriberDetails) -> Subscriber:
            return await self.api.edit_subscriber(subscriber.id, details)

        self.app.push_screen(SubscriberFormModal(subscriber, save), self._saved)

    def _saved(self, saved: Subscriber | None) -> None:
        if saved is None:
            return
        self.notify(f"Saved {saved.name or saved.phone or saved.id}.")
        self._replace(saved)

    def action_delete_subscriber(self) -> None:
        subscriber = self.selected()
        if subscriber is None:
            return
        who = subscriber.name or subscriber.phone or f"subscriber {subscriber.id}"

        def answered(yes: bool | None) -> None:
            if yes:
                self.delete_subscriber(subscriber)

        self.app.push_screen(
            ConfirmModal(
                f"Delete {who}?\nTheir TGTG login, favourites and push tokens go too.",
                yes="Delete",
            ),
            answered,
        )

    @work(exclusive=True, group="subscribers-change", exit_on_error=False)
    async def delete_subscriber(self, subscriber: Subscriber) -> None:
        await self.api.delete_subscriber(subscriber.id)
        self.loaded = [s for s in self.loaded if s.id != subscriber.id]
        self.show_rows()
        self.notify(f"Deleted {subscriber.name or subscriber.phone or subscriber.id}.")

    @work(exclusive=True, group="subscribers-change", exit_on_error=False)
    async def action_toggle_opt_out(self) -> None:
        subscriber = self.selected()
        if subscriber is None:
            return
        opt_out = subscriber.opted_out_at is None
        saved = await self.api.set_opted_out(subscriber.id, opt_out)
        who = saved.name or saved.phone
        self.notify(f"{who} opted out: no more messages." if opt_out else f"{who} opted back in.")
        self._replace(saved)

    @work(exclusive=True, group="subscribers-change", exit_on_error=False)
    async def action_verify_subscriber(self) -> None:
        """Send a code by SMS, then ask for it; the daemon checks it, and the subscriber is
        marked verified only when it matched."""
        subscriber = self.selected()
        if subscriber is None:
            return
        if not subscriber.phone:
            self.notify("This subscriber has no phone number to verify.", severity="warning")
            return
        if subscriber.opted_out_at is not None:
            # The daemon sends an opted-out number nothing: the code would never arrive.
            self.notify("They opted out: opt them in (o) before verifying.", severity="warning")
            return
        phone = subscriber.phone
        sent = await self.api.send_otp(phone, OTP_PURPOSE)

        async def check(code: str) -> Verified:
            await self.api.verify_otp(phone, code, OTP_PURPOSE)
            self._replace(await self.api.mark_verified(subscriber.id))
            return Verified(phone)

        def done(verified: Verified | None) -> None:
            if verified is not None:
                self.notify(f"{verified.phone} is verified.")

        modal = OtpVerifyModal(phone, sent.expires_in, check)
        self.app.push_screen(modal, done)

    @work(exclusive=True, group="subscribers-change", exit_on_error=False)
    async def action_start_tgtg_login(self) -> None:
        """TGTG mails the subscriber a PIN; the login waits for it in state pending."""
        subscriber = self.selected()
        if subscriber is None:
            return
        if not subscriber.email:
            self.notify("Add an e-mail address first: TGTG logs in by e-mail.", severity="warning")
            return
        login = await self.api.start_tgtg_login(subscriber.id)
        self.notify(f"TGTG login {login.state}: TGTG mailed a PIN to {login.email}; press p.")
        self.load_detail(subscriber.id, popup=False)

    def action_enter_tgtg_pin(self) -> None:
        subscriber = self.selected()
        if subscriber is None:
            return
        email = subscriber.email or ""
        if self.file is not None and self.file.subscriber.id == subscriber.id and self.file.tgtg:
            email = self.file.tgtg.email

        async def submit(pin: str) -> TgtgAccount:
            return await self.api.enter_tgtg_pin(subscriber.id, pin)

        def done(login: TgtgAccount | None) -> None:
            if login is not None:
                self.notify(f"TGTG login {login.state} for {login.email}.")
                self.load_detail(subscriber.id, popup=False)

        self.app.push_screen(PinEntryModal(email, submit), done)
