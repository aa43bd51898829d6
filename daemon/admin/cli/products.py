"""`shopbell products`: the product catalogue in and out as CSV, on the database file."""

from __future__ import annotations

import asyncio
import csv
import io
import sys
from typing import TextIO

import click

from daemon.admin.cli.base import CONTEXT, fail, load
from daemon.runtime.paths import PathError
from daemon.services.backoffice import catalog_csv
from daemon.services.backoffice.admin import export_products, import_products
from storage.errors import StorageError


@click.group("products", context_settings=CONTEXT)
def products_group() -> None:
    """The product catalogue as CSV (sku,name,brand,category,price,stock,active)."""


@products_group.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.pass_context
def products_import(ctx: click.Context, file: TextIO) -> None:
    """Create or update products by SKU from FILE, all or nothing.

    Every row is checked first; a bad row is reported with its line number and nothing is
    written. Prices are in [shop] currency; a price change is recorded. Works on the
    database file, whether or not the daemon runs.
    """
    settings = load(ctx).settings
    text = file.read()
    rows: list[catalog_csv.ProductRow] = []
    try:
        with click.progressbar(
            length=max(1, text.count("\n")), label="checking", file=sys.stderr
        ) as bar:
            for row in catalog_csv.parse(io.StringIO(text), settings.shop.currency):
                bar.update(row.line - (rows[-1].line if rows else 1))
                rows.append(row)
    except catalog_csv.CsvError as exc:
        fail(f"{file.name} {exc}; nothing was imported")
    except csv.Error as exc:
        fail(f"{file.name}: not a CSV file shopbell can read ({exc}); nothing was imported")
    try:
        created, updated = asyncio.run(import_products(settings, rows))
    except (StorageError, PathError) as exc:
        fail(str(exc))
    click.echo(f"imported {len(rows)} products: {created} new, {updated} updated")


@products_group.command("export")
@click.argument("file", type=click.File("w", encoding="utf-8"), default="-")
@click.pass_context
def products_export(ctx: click.Context, file: TextIO) -> None:
    """Write every product as CSV to FILE (default: stdout), as `products import` reads it."""
    settings = load(ctx).settings
    try:
        found = asyncio.run(export_products(settings))
    except (StorageError, PathError) as exc:
        fail(str(exc))
    count = catalog_csv.write(found, settings.shop.currency, file)
    if getattr(file, "name", "-") not in ("-", "<stdout>"):
        click.echo(f"exported {count} products to {file.name}")
