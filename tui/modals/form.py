"""A form in a modal: labelled inputs, a save the daemon may refuse field by field, kept values."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from rich.console import RenderableType
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tui.client import ApiError, Unreachable
from tui.records import RecordError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FormField:
    """One input; `name` is the API's field name, so the daemon's rule for it shows under it."""

    name: str
    label: str
    value: str = ""
    placeholder: str = ""
    password: bool = False


class FormModal(ModalScreen[T | None], Generic[T]):
    """Asks for values, hands them to `save` (which calls the daemon) and dismisses with what
    `save` returned; a refusal keeps the form open with each rule next to its field."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]
    DEFAULT_CSS = """
    FormModal {
        align: center middle;
    }
    FormModal > VerticalScroll {
        width: 72;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary 60%;
        background: $surface;
        padding: 0 1;
    }
    FormModal .form-title {
        text-style: bold;
        width: 1fr;
    }
    FormModal .form-note {
        color: $text-muted;
        margin-bottom: 1;
    }
    FormModal .form-row {
        height: 3;
    }
    FormModal .form-row Label {
        width: 14;
        padding: 1 1 0 0;
    }
    FormModal .form-row Input {
        width: 1fr;
    }
    FormModal .field-error {
        color: $error;
        padding-left: 14;
        display: none;
    }
    FormModal .field-error.-shown {
        display: block;
    }
    FormModal #form-error {
        padding-left: 0;
    }
    FormModal .form-buttons {
        height: 3;
        align-horizontal: right;
    }
    FormModal .form-buttons Button {
        margin-left: 1;
    }
    """

    def __init__(
        self,
        title: str,
        fields: list[FormField],
        save: Callable[[dict[str, str]], Awaitable[T]],
        *,
        note: RenderableType = "",
        submit: str = "Save",
    ) -> None:
        super().__init__()
        self.form_title = title
        self.fields = fields
        self._save = save
        self.note = note
        self.submit_label = submit

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Label(self.form_title, classes="form-title")
            if self.note:
                yield Static(self.note, classes="form-note", id="form-note")
            for field in self.fields:
                with Horizontal(classes="form-row"):
                    yield Label(field.label)
                    yield Input(
                        field.value,
                        placeholder=field.placeholder,
                        password=field.password,
                        id=f"field-{field.name}",
                    )
                yield Static("", id=f"error-{field.name}", classes="field-error")
            yield Static("", id="form-error", classes="field-error")
            with Horizontal(classes="form-buttons"):
                yield Button(self.submit_label, variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        if self.fields:
            self.query_one(f"#field-{self.fields[0].name}", Input).focus()

    def values(self) -> dict[str, str]:
        """What the shopkeeper typed, by field name, trimmed."""
        inputs = {f.name: self.query_one(f"#field-{f.name}", Input) for f in self.fields}
        return {name: widget.value.strip() for name, widget in inputs.items()}

    def errors(self) -> dict[str, str]:
        """The rules shown now, by field name ("form" for the ones that belong to no field)."""
        shown: dict[str, str] = {}
        for widget in self.query(".field-error.-shown").results(Static):
            name = (widget.id or "").removeprefix("error-").removeprefix("form-error")
            shown[name or "form"] = str(widget.render())
        return shown

    @on(Button.Pressed, "#save")
    @on(Input.Submitted)
    def action_save(self) -> None:
        self.submit()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    def _show(self, widget_id: str, text: str) -> None:
        widget = self.query_one(f"#{widget_id}", Static)
        widget.update(text)
        widget.set_class(bool(text), "-shown")

    @work(exclusive=True, group="form-save", exit_on_error=False)
    async def submit(self) -> None:
        """Save through the daemon. A refusal is shown inside the form, which keeps its values:
        this is the one place a TUI worker catches the API's errors itself."""
        for field in self.fields:
            self._show(f"error-{field.name}", "")
        self._show("form-error", "")
        button = self.query_one("#save", Button)
        button.disabled = True
        try:
            result = await self._save(self.values())
        except ApiError as exc:
            self._refused(exc)
            return
        except Unreachable as exc:
            self._show("form-error", f"{exc}; your values are kept: try again")
            return
        except RecordError as exc:
            self._show("form-error", str(exc))
            return
        finally:
            button.disabled = False
        self.dismiss(result)

    def _refused(self, exc: ApiError) -> None:
        names = {field.name for field in self.fields}
        elsewhere: list[str] = []
        for name, rule in exc.fields.items():
            # "channels.0" is the first channel: its rule belongs under the channels field.
            base = name if name in names else name.split(".", 1)[0]
            if base in names:
                self._show(f"error-{base}", f"{base}: {rule}")
            else:
                elsewhere.append(f"{name}: {rule}")
        if elsewhere or not exc.fields:
            self._show("form-error", "; ".join(elsewhere) or exc.message)
