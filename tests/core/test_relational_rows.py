"""The rules of a relational header row and line row, each with its located message, and the
values handed on to be staged (`core/relational.py`), read straight through `exact.read_rows`."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from orderpipe.core.exact import read_rows
from orderpipe.core.relational import HeaderRows, LineRows
from orderpipe.core.shape import InputShape
from orderpipe.core.window import evaluate

#: The lab preset's shape (timestamps in UTC, `returned` from a status).
LAB = InputShape(
    grain="relational",
    catalog=True,
    timezone="UTC",
    columns=(
        ("customer_id", "user_id"),
        ("items_expected", "num_of_item"),
        ("line_id", "id"),
        ("order_timestamp", "created_at"),
        ("unit_price", "sale_price"),
    ),
    returned_column="status",
    returned_values=("returned",),
)
#: Plain columns: a date, a `returned` flag, our own names.
PLAIN = InputShape(grain="relational", catalog=True)
NOW = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)


def headers(shape: InputShape, text: str) -> tuple[list[tuple[str, int, str, str, str]], list[list[str]]]:
    """(code, line, column, value, message) of every problem, and the rows handed on."""
    rows: list[list[str]] = []
    rules = HeaderRows(shape, evaluate(shape.dates, shape.earliest_date, shape.latest_date, shape.timezone, NOW))
    report = read_rows(io.BytesIO(text.encode()), "orders_1.csv", rules, rows.append)
    found = [(i.code, s.line, s.column, s.value, s.message) for i in report.errors for s in i.samples]
    return found, rows


def lines(text: str) -> tuple[list[tuple[str, int, str, str, str]], list[list[str]]]:
    rows: list[list[str]] = []
    report = read_rows(io.BytesIO(text.encode()), "order_items_1.csv", LineRows(LAB), rows.append)
    return [(i.code, s.line, s.column, s.value, s.message) for i in report.errors for s in i.samples], rows


def test_a_clean_header_row_is_handed_on_as_its_canonical_values() -> None:
    found, rows = headers(
        LAB,
        "order_id,user_id,status,created_at,num_of_item\n"
        "O1,7,Returned,2025-03-01T23:30:00-02:00,0012\n"  # 01:30 UTC the next day
        "O2,8,delivered,2025-03-01T10:00:00,\n",
    )
    assert found == []
    assert rows == [["O1", "7", "2025-03-02", "true", "12"], ["O2", "8", "2025-03-01", "false", ""]]


def test_a_header_file_without_the_line_count_column_says_nothing_of_it() -> None:
    found, rows = headers(LAB, "order_id,user_id,status,created_at\nO1,7,returned,2025-03-01T10:00:00\n")
    assert found == [] and rows == [["O1", "7", "2025-03-01", "true", ""]]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (",7,delivered,2025-03-01T10:00:00,1", ("blank-value", 2, "order_id", "", "order_id is empty")),
        (
            "O1,\u200b,delivered,2025-03-01T10:00:00,1",
            (
                "blank-value",
                2,
                "user_id",
                "\u200b",
                "customer_id holds only invisible characters ('user_id' is read as customer_id)",
            ),
        ),
        (
            "O1,7,,2025-03-01T10:00:00,1",
            ("blank-value", 2, "status", "", "returned is empty ('status' is read as returned)"),
        ),
        (
            "O1,7,delivered,,1",
            ("blank-value", 2, "created_at", "", "order_timestamp is empty ('created_at' is read as order_timestamp)"),
        ),
        (
            "O1,7,delivered,soon,1",
            (
                "invalid-timestamp",
                2,
                "created_at",
                "soon",
                "'soon' is not a timestamp: write it as ISO 8601 (2025-10-07T09:50:26+02:00) or as 2025-10-07"
                " 09:50:26 +0200 ('created_at' is read as order_timestamp)",
            ),
        ),
        (
            "O1,7,delivered,1999-12-31T23:00:00,1",
            (
                "implausible-date",
                2,
                "created_at",
                "1999-12-31T23:00:00",
                "'1999-12-31T23:00:00' (the order date 1999-12-31 in UTC) is before 2000-01-01, the earliest"
                " order date allowed: check its year, or set input.earliest_date ('created_at' is read as"
                " order_timestamp)",
            ),
        ),
        (
            "O1,7,delivered,2025-03-01T10:00:00,1234567890",
            (
                "invalid-integer",
                2,
                "num_of_item",
                "1234567890",
                "'1234567890' is not a number of lines (whole, at most 9 digits), nor empty"
                " ('num_of_item' is read as items_expected)",
            ),
        ),
        (
            "O1,7,delivered,2025-03-01T10:00:00,-1",
            (
                "invalid-integer",
                2,
                "num_of_item",
                "-1",
                "'-1' is not a number of lines (whole, at most 9 digits), nor empty ('num_of_item' is read as"
                " items_expected)",
            ),
        ),
    ],
    ids=["order-id", "customer", "status", "timestamp", "not-a-timestamp", "too-early", "too-many-digits", "sign"],
)
def test_each_header_rule_is_reported_at_its_line_and_column(row: str, problem: tuple[str, ...]) -> None:
    found, rows = headers(LAB, f"order_id,user_id,status,created_at,num_of_item\n{row}\n")
    assert found == [problem] and rows == []


def test_nine_digits_of_lines_are_a_count_and_leading_zeros_are_dropped() -> None:
    found, rows = headers(LAB, "order_id,user_id,status,created_at,num_of_item\nO1,7,x,2025-03-01T10:00:00,123456789\n")
    assert found == [] and rows[0][4] == "123456789"


def test_a_header_file_with_a_date_and_a_returned_flag() -> None:
    found, rows = headers(
        PLAIN,
        "order_id,customer_id,order_date,returned\nO1,7,2025-03-01,TRUE\nO2,8,2025-03-02,false\n",
    )
    assert found == [] and rows == [["O1", "7", "2025-03-01", "true", ""], ["O2", "8", "2025-03-02", "false", ""]]
    found, rows = headers(
        PLAIN,
        "order_id,customer_id,order_date,returned\nO1,7,2025-02-30,yes\nO2,8,2030-01-01,false\nO2,9,2025-03-01,\n",
    )
    assert found == [
        ("invalid-date", 2, "order_date", "2025-02-30", "'2025-02-30' is not a real calendar date"),
        ("invalid-boolean", 2, "returned", "yes", "'yes' is not true or false"),
        (
            "implausible-date",
            3,
            "order_date",
            "2030-01-01",
            "'2030-01-01' is after 2025-03-11, the latest order date allowed (tomorrow in UTC): check its year,"
            " or set input.latest_date",
        ),
        ("blank-value", 4, "returned", "", "returned is empty"),
        ("duplicate-order-id", 4, "order_id", "O2", "order_id 'O2' already appears at line 3: give each order one row"),
    ]
    assert rows == []


def test_a_line_row_and_its_rules() -> None:
    found, rows = lines("id,order_id,product_id,sale_price\n1,O1,P1,10.50\n 2 ,O1,P1,0.01\n")
    assert found == [] and rows == [["1", "O1", "P1", "10.50"], ["2", "O1", "P1", "0.01"]]
    found, rows = lines("id,order_id,product_id,sale_price\n,O1,P1,1\n2,,P1,1\n3,O1,,1\n4,O1,P1,1.00001\n4,O2,P2,2\n")
    assert found == [
        ("blank-value", 2, "id", "", "line_id is empty ('id' is read as line_id)"),
        ("blank-value", 3, "order_id", "", "order_id is empty"),
        ("blank-value", 4, "product_id", "", "product_id is empty"),
        (
            "invalid-decimal",
            5,
            "sale_price",
            "1.00001",
            "'1.00001' is not a price with digits and at most 4 decimals ('sale_price' is read as unit_price)",
        ),
        (
            "duplicate-line",
            6,
            "id",
            "4",
            "line_id '4' already appears at line 5: give each line one row ('id' is read as line_id)",
        ),
    ]
    assert rows == [], "an invalid file hands on nothing"


def test_how_a_header_and_a_line_file_are_read_is_explained() -> None:
    from orderpipe.core.validate import validate

    header = validate(
        io.BytesIO(b"order_id,user_id,status,created_at\nO1,7,x,2025-03-01T10:00:00\n"),
        "orders_1.csv",
        LAB,
        frozenset(),
    )
    assert header.shape == (
        "headers: a orders*.csv file, one row per order; a header sent again replaces its order's (dates,"
        " customer, status)",
        "order_id <- 'order_id'",
        "customer_id <- 'user_id'",
        "order_date <- local date in UTC of the timestamp in 'created_at'",
        "returned <- 'status' is one of 'returned' (any case)",
        "items_expected <- 'num_of_item' if the file has it (fewer lines: incomplete)",
    )
    line = validate(
        io.BytesIO(b"id,order_id,product_id,sale_price\n1,O1,P1,1\n"), "order_items_1.csv", LAB, frozenset()
    )
    assert line.shape == (
        "lines: a order_items*.csv file, one row per item (quantity 1); a line sent again (same line id)"
        " replaces it; it counts once its order's header is in",
        "line_id <- 'id'",
        "order_id <- 'order_id'",
        "product_id <- 'product_id'",
        "unit_price <- 'sale_price'",
    )
    plain = validate(
        io.BytesIO(b"order_id,customer_id,order_date,returned\nO1,7,2025-03-01,true\n"),
        "orders_1.csv",
        PLAIN,
        frozenset(),
    )
    assert plain.valid and plain.shape[1:5] == (
        "order_id <- 'order_id'",
        "customer_id <- 'customer_id'",
        "order_date <- 'order_date'",
        "returned <- 'returned'",
    )


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("orders_1.csv", b"", "the file is empty: expected a header and at least one order row"),
        ("orders_1.csv", b"order_id,user_id,status,created_at\n", "the file has a header but no order rows"),
        ("order_items_1.csv", b"", "the file is empty: expected a header and at least one line row"),
        ("order_items_1.csv", b"id,order_id,product_id,sale_price\n", "the file has a header but no line rows"),
        (
            "orders_1.csv",
            b"order_id,customer,status,created_at\nO1,7,x,2025-03-01T10:00:00\n",
            "the header has no 'user_id' column, which feeds customer_id (see orderpipe.toml [input.columns])",
        ),
        (
            "order_items_1.csv",
            b"ID,order_id,product_id,sale_price\n1,O1,P1,1\n",
            "the header has no 'id' column, which feeds line_id (see orderpipe.toml [input.columns]) (found 'ID';"
            " names are case-sensitive)",
        ),
    ],
    ids=["empty-headers", "no-orders", "empty-lines", "no-lines", "missing-customer", "mis-cased-id"],
)
def test_a_relational_file_without_rows_or_a_column_says_which(name: str, data: bytes, message: str) -> None:
    from orderpipe.core.validate import validate

    report = validate(io.BytesIO(data), name, LAB, frozenset())
    assert not report.valid
    assert [s.message for i in report.errors for s in i.samples] == [message]
