"""The TUI's records and routes against the daemon's own /api/openapi.json: a field the TUI
reads that the API renames, retypes or makes optional fails here, before a shopkeeper sees it.
And when a daemon of another version answers anyway, the TUI says so in plain words."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.api.app import ApiContext, create_app
from daemon.runtime.clock import ManualClock
from storage.database import Database
from tests.tui.conftest import FIXED_NOW, canned, make_app
from tests.tui.conftest import until as _until
from tests.tui.contract import Read, check
from tests.tui.test_snapshots_dashboard import ROUTES as DASHBOARD_ROUTES
from tests.tui.test_snapshots_dashboard import STATS
from tests.tui.test_snapshots_inventory import PRODUCTS as INVENTORY_PRODUCTS
from tests.tui.test_snapshots_inventory import ROUTES as INVENTORY_ROUTES
from tui import client
from tui.client import ROUTES, Route
from tui.modals.form import FormModal
from tui.widgets.connection_bar import ConnectionBar
from tui.widgets.job_table import JobTable
from tui.widgets.product_table import ProductTable

Document = dict[str, Any]


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Document]:
    """The OpenAPI document of the daemon's app as `shopbell run` builds it (the database is
    never opened: the document does not need it)."""
    clock = ManualClock()
    ctx = ApiContext(
        db=Database(Path(tmp_path_factory.mktemp("contract")) / "shopbell.db"),
        clock=clock,
        api_token="contract-test-token-0123456789",
        version="9.9.9-test",
        started_at=clock.now(),
        started_monotonic=clock.monotonic(),
    )
    yield create_app(ctx).openapi()


def _schemas(document: Document) -> dict[str, Any]:
    return dict(document["components"]["schemas"])


def _at(document: Document, pointer: tuple[str, ...]) -> Any:
    node: Any = document
    for key in pointer:
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def _rename(document: Document, properties: tuple[str, ...], old: str, new: str) -> Document:
    """A copy of `document` with the property `old` of the object at `properties` renamed."""
    changed = copy.deepcopy(document)
    props = _at(changed, properties)
    props[new] = props.pop(old)
    parent = _at(changed, properties[:-1])
    parent["required"] = [new if name == old else name for name in parent.get("required", [])]
    return changed


def test_every_route_and_record_the_tui_uses_fits_the_daemons_api(document: Document) -> None:
    contract = check(document, ROUTES)

    assert contract.problems == []
    # Not vacuous: it held the fields a shopkeeper sees on every screen.
    read = {(r.call, r.field) for r in contract.reads}
    assert ("GET /api/v1/stats", "today.by_status") in read
    assert ("GET /api/health", "components.*.state") in read
    assert ("GET /api/v1/products", "products[].name") in read
    assert ("GET /api/v1/stats", "jobs[].last_run.outcome") in read
    assert ("POST /api/v1/products/{product_id}/stock", "body delta") in read


def test_every_route_of_the_client_is_in_routes() -> None:
    # A route left out of ROUTES would escape the contract.
    defined = {value for value in vars(client).values() if isinstance(value, Route)}

    assert defined == set(ROUTES)


def test_a_renamed_field_is_reported_with_its_route_and_field(document: Document) -> None:
    renamed = _rename(
        document, ("components", "schemas", "ProductOut", "properties"), "name", "title"
    )

    problems = check(renamed, ROUTES).problems

    assert (
        "GET /api/v1/products: products[].name is not in the API (the TUI reads Product.name)"
        in problems
    )
    # The orders mode reads one product for its name only: that route is named too.
    assert (
        "GET /api/v1/products/{product_id}: product.name is not in the API"
        " (the TUI reads ProductName.name)"
    ) in problems


def test_renaming_any_field_the_tui_reads_or_sends_is_reported(document: Document) -> None:
    """Every field the check held, renamed one at a time: each rename is reported for every
    route that reads (or sends) the field, so no field of any record escapes the check."""
    reads = check(document, ROUTES).reads
    by_place: dict[tuple[tuple[str, ...], str], list[Read]] = {}
    for read in reads:
        by_place.setdefault((read.properties, read.name), []).append(read)
    assert len(by_place) > 100

    missed = []
    for (properties, name), readers in by_place.items():
        problems = check(_rename(document, properties, name, f"{name}_renamed"), ROUTES).problems
        for read in readers:
            if read.field.startswith("body "):
                expected = f"{read.call}: the API's body has no field {name!r}"
            else:
                expected = f"{read.call}: {read.field} is not in the API"
            if not any(problem.startswith(expected) for problem in problems):
                missed.append((read.call, read.field))

    assert missed == []


def _retype(schema: str, name: str, kind: str) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        _schemas(document)[schema]["properties"][name] = {"type": kind}

    return change


def _make_optional(schema: str, name: str) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        _schemas(document)[schema]["required"].remove(name)

    return change


def _make_nullable(schema: str, name: str) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        properties = _schemas(document)[schema]["properties"]
        properties[name] = {"anyOf": [properties[name], {"type": "null"}]}

    return change


def _drop_route(path: str) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        del document["paths"][path]

    return change


def _rename_query(path: str, old: str, new: str) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        for parameter in document["paths"][path]["get"]["parameters"]:
            if parameter["name"] == old:
                parameter["name"] = new

    return change


def _require_in_body(schema: str, name: str) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        body = _schemas(document)[schema]
        body["properties"][name] = {"type": "string"}
        body.setdefault("required", []).append(name)

    return change


def _close_extra_keys(schema: str) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        _schemas(document)[schema].pop("additionalProperties")

    return change


@pytest.mark.parametrize(
    ("change", "reported"),
    [
        (
            _retype("Today", "sent", "string"),
            "GET /api/v1/stats: today.sent is string in the API; the TUI reads int",
        ),
        (
            _make_optional("Today", "date"),
            "GET /api/v1/stats: today.date is optional in the API;"
            " the TUI requires it (Today.date)",
        ),
        (
            _make_nullable("OrderOut", "total"),
            "GET /api/v1/orders: orders[].total may be null in the API;"
            " the TUI reads it as never null",
        ),
        (
            _retype("LineOut", "quantity", "number"),
            "GET /api/v1/orders: orders[].lines[].quantity is number in the API; the TUI reads int",
        ),
        (_drop_route("/api/v1/stats"), "GET /api/v1/stats: the API has no such route"),
        (
            _rename_query("/api/v1/orders", "offset", "skip"),
            "GET /api/v1/orders: the API has no query parameter 'offset' (sent by the TUI)",
        ),
        (
            _require_in_body("StockIn", "reason"),
            "POST /api/v1/products/{product_id}/stock: the API requires the body field 'reason';"
            " the TUI never sends it",
        ),
        (
            _close_extra_keys("ComponentHealth"),
            "GET /api/health: components.*.providers is not in the API and the object takes no"
            " extra keys",
        ),
    ],
    ids=[
        "retyped",
        "made-optional",
        "made-nullable",
        "retyped-deep",
        "route-gone",
        "query-renamed",
        "body-field-required",
        "extra-keys-closed",
    ],
)
def test_each_kind_of_change_is_reported(
    document: Document, change: Callable[[Document], None], reported: str
) -> None:
    changed = copy.deepcopy(document)
    change(changed)

    assert reported in check(changed, ROUTES).problems


# -- at runtime: an answer that does not fit ------------------------------------------------------


async def test_an_answer_that_does_not_fit_is_explained_not_a_traceback() -> None:
    today = {key: value for key, value in STATS["today"].items() if key != "date"}
    routes = {**DASHBOARD_ROUTES, "GET /api/v1/stats": {**STATS, "today": today}}
    app = make_app("http://daemon.test", transport=canned(routes), clock=lambda: FIXED_NOW)
    async with app.run_test(size=(100, 40)) as pilot:
        await _until(lambda: app._notifications, pilot)
        note = next(iter(app._notifications))
        assert note.title == "The daemon's answer does not fit"
        assert note.message.startswith(
            "the daemon's answer to GET /api/v1/stats does not fit this version of the TUI: "
            "today.date is missing."
        )
        assert note.severity == "error"
        # The app runs on; nothing else was drawn from the answer that did not fit.
        assert app.is_running
        assert app.screen.query_one(JobTable).row_count == 0


async def test_a_health_answer_that_does_not_fit_is_shown_in_the_connection_bar() -> None:
    health = {"status": "ok", "version": 9}
    routes = {**DASHBOARD_ROUTES, "GET /api/health": health}
    app = make_app("http://daemon.test", transport=canned(routes), clock=lambda: FIXED_NOW)
    async with app.run_test(size=(100, 40)) as pilot:
        bar = app.screen.query_one(ConnectionBar)
        await _until(lambda: bar.display, pilot)
        assert app.connected is False
        assert "GET /api/health" in app.problem
        assert "version should be text, is a whole number" in app.problem
        assert app.problem in str(bar.render())


async def test_a_save_whose_answer_does_not_fit_keeps_the_form_open_and_says_why() -> None:
    # The stock was changed, but this daemon answers without the product's stock.
    product = dict(INVENTORY_PRODUCTS[0])
    del product["stock"]
    routes = {
        **INVENTORY_ROUTES,
        "POST /api/v1/products/1/stock": {"success": True, "product": product},
    }
    app = make_app("http://daemon.test", transport=canned(routes), clock=lambda: FIXED_NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await _until(lambda: app.screen.query(ProductTable), pilot)
        await _until(lambda: app.screen.query_one(ProductTable).row_count == 5, pilot)
        await pilot.press("s")
        await _until(lambda: isinstance(app.screen, FormModal), pilot)
        form = app.screen
        assert isinstance(form, FormModal)
        await pilot.press(*"12", "enter")
        await _until(lambda: "form" in form.errors(), pilot)
        assert app.screen is form
        assert "POST /api/v1/products/{product_id}/stock" in form.errors()["form"]
        assert "product.stock is missing" in form.errors()["form"]
