"""One header check for every kind of file: the seed's columns, a configured shape, a catalog file;
and the fast path reads a file only when that check has nothing to report."""

from __future__ import annotations

import io

import pytest

from orderpipe.core.header import catalog_layout, check_header, order_layout, plain_header, read_plain_header
from orderpipe.core.report import ReportBuilder
from orderpipe.core.rules import COLUMNS
from orderpipe.core.shape import SEED_SHAPE, InputShape

SHOP = InputShape(grain="line", columns=(("line_id", "Line"), ("order_id", "Name")), catalog=True)


def checked(names: list[str], shape: InputShape, catalog: bool = False) -> tuple[object, list[tuple[str, str]], list]:
    report = ReportBuilder("f.csv")
    layout = catalog_layout(shape) if catalog else order_layout(shape)
    positions = check_header(names, layout, report)
    built = report.build(0)
    return positions, [(s.message, i.code) for i in built.errors for s in i.samples], list(built.warnings)


def test_the_seed_header_in_any_order_with_extra_columns() -> None:
    names = ["note", *reversed(COLUMNS), "note"]
    positions, errors, warnings = checked(names, SEED_SHAPE)
    assert positions == {c: names.index(c) for c in COLUMNS}
    assert list(positions) == list(COLUMNS)  # reading order: the report's order of problems
    assert errors == []
    assert warnings == ["extra columns ignored: 'note', 'note'"]


def test_order_files_report_each_repeat_then_each_missing_column() -> None:
    names = ["customer_id", "customer_id", "order_id", "order_id", "customer_id", "Category"]
    _, errors, _ = checked(names, SEED_SHAPE)
    assert errors[:3] == [
        ("column 'customer_id' appears more than once in the header", "duplicate-column"),
        ("column 'order_id' appears more than once in the header", "duplicate-column"),
        ("column 'customer_id' appears more than once in the header", "duplicate-column"),
    ]
    assert ("the header has no 'category' column (found 'Category'; names are case-sensitive)", "missing-column") in (
        errors
    )


def test_a_shape_names_the_field_a_missing_column_feeds_and_reads_an_optional_line_id() -> None:
    names = ["order_id", "Line", "category", *COLUMNS[1:]]
    positions, errors, warnings = checked(names, SHOP)
    assert errors == [
        ("the header has no 'Name' column, which feeds order_id (see orderpipe.toml [input])", "missing-column")
    ]
    assert warnings[0].startswith("column 'category' ignored: categories come from the product catalog")
    names[0] = "Name"
    positions, errors, warnings = checked(names, SHOP)
    assert positions is not None and positions["line_id"] == 1 and "category" not in positions
    assert warnings == ["column 'category' ignored: categories come from the product catalog ([input] catalog = true)"]


def test_catalog_files_report_a_doubled_column_once_with_its_field() -> None:
    shape = InputShape(catalog=True, catalog_product_id="SKU")
    _, errors, warnings = checked(["category", "category", "category", "Sku", "x"], shape, catalog=True)
    assert errors == [
        (
            "the header has no 'SKU' column, which feeds product_id (see orderpipe.toml [input.catalog_columns]) "
            "(found 'Sku'; names are case-sensitive)",
            "missing-column",
        ),
        ("column 'category' appears more than once", "duplicate-column"),
    ]
    assert warnings == ["extra columns ignored: 'Sku', 'x'"]


@pytest.mark.parametrize(
    ("first", "names"),
    [
        (b"\xef\xbb\xbfa, b ,c\r\nx\n", ["a", "b", "c"]),
        (b"a,b\n", ["a", "b"]),
        (b"a,b", ["a", "b"]),
        (b'"a", " b,c" ,"d""e"\r\nx\n', ["a", '" b', 'c"', 'd"e']),  # read as CSV reads it
        (b'\xef\xbb\xbf"a",b\n', ["a", "b"]),
        (b'"a\nb",c\n', None),  # a name running onto the next line: the exact validator's
        (b'"a"b,c\n', None),  # text after a closing quote: a csv-error, the exact validator's
        (b"a\rb,c\n", None),
        (b"a,\xff\n", None),
    ],
)
def test_the_plain_header_reader(first: bytes, names: list[str] | None) -> None:
    assert read_plain_header(io.BytesIO(first)) == names


def test_the_fast_path_takes_the_header_only_when_the_check_has_nothing_to_report() -> None:
    header = ",".join([*COLUMNS, "note"]).encode() + b"\n"
    plain = plain_header(io.BytesIO(header), order_layout(SEED_SHAPE))
    assert plain is not None and plain.width == 9 and plain.warnings == ("extra columns ignored: 'note'",)
    assert plain_header(io.BytesIO(b"order_id,order_id\n"), order_layout(SEED_SHAPE)) is None
