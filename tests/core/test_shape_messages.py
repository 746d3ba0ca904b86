"""What the exact validator of a configured shape says about each rule of its own: the line,
the column as the file names it, the value and the words (with the column it is read as), and
the rows it hands on to be staged, in the seed's eight fields."""

from __future__ import annotations

import io

from orderpipe.core.report import ValidationReport
from orderpipe.core.rules import DEFAULT_CATEGORIES
from orderpipe.core.shape import InputShape
from orderpipe.core.shape_validate import validate_shaped

COLUMNS = {
    "order_id": "Name",
    "customer_id": "Email",
    "quantity": "Lineitem quantity",
    "unit_price": "Lineitem price",
    "product_id": "Lineitem sku",
    "order_timestamp": "Created at",
}
HEADER = "Name,Email,Created at,category,Lineitem sku,Lineitem quantity,Lineitem price,Financial Status"
Sample = tuple[int, str | None, str | None, str]


def shape(**columns: str) -> InputShape:
    return InputShape(
        grain="line",
        columns=tuple(sorted((COLUMNS | columns).items())),
        timezone="Asia/Kolkata",
        returned_column="Financial Status",
        returned_values=("refunded", "voided"),
        dates="any",
    )


def validated(
    data: str, read_as: InputShape
) -> tuple[ValidationReport, list[tuple[str, int, list[Sample]]], list[list[str]]]:
    staged: list[list[str]] = []
    report = validate_shaped(
        io.BytesIO(data.encode()), "orders.csv", read_as, frozenset(DEFAULT_CATEGORIES), staged.append
    )
    errors = [(i.code, i.count, [(s.line, s.column, s.value, s.message) for s in i.samples]) for i in report.errors]
    return report, errors, staged


def fed(column: str, field: str) -> str:
    return f" ({column!r} is read as {field})"


def test_each_rule_of_a_shape_names_its_line_column_value_and_fix() -> None:
    rows = [
        "#1001,a@x,2025-10-07T20:00:00Z,Books,P1,1,10.00,paid,L1",
        "#1001,a@x,2025-10-07T20:00:00Z,Books,P1,2,10.00,paid,L2",  # the same product, a line of its own
        "#1001,a@x,2025-10-07T20:00:00Z,Books,P2,1,5.00,paid,L1",
        "#1002,b@x,2025-10-07 09:50:26 +0200,Toys,P3,1,3.00,refunded,L1",
        "#1002,c@x,2025-10-07 09:50:26 +0200,Toys,P4,1,3.00,refunded,L2",
        "#1003,d@x,07/10/2025 09:50,Home,P5,1,3.00,paid,L1",
        "#1004,e@x,2025-10-07T10:00:00Z,Home,P6,1,3.00,,L1",
        "#1005,f@x,2025-10-07T10:00:00Z,Home,P7,1,3.00,paid,\u200b",
        "#1006,g@x,,Home,P8,1,3.00,paid,L1",
        "#1007,h@x,9999-12-31T23:00:00-05:00,Home,P9,1,3.00,paid,L1",
    ]
    report, errors, staged = validated(HEADER + ",Line\n" + "\n".join(rows) + "\n", shape(line_id="Line"))
    assert (report.valid, report.rows) == (False, 10)
    not_a_timestamp = (
        "'07/10/2025 09:50' is not a timestamp: write it as ISO 8601 (2025-10-07T09:50:26+02:00) or as"
        " 2025-10-07 09:50:26 +0200"
    )
    past_the_years = (
        "'9999-12-31T23:00:00-05:00' is a moment after 9999-12-31 in UTC: order dates run from 0001-01-01 to"
        " 9999-12-31, check its year"
    )
    assert errors == [
        (
            "duplicate-line",
            1,
            [
                (
                    4,
                    "Line",
                    "L1",
                    "order '#1001' already has a line with line_id 'L1' at line 2: a line appears once per file"
                    + fed("Line", "line_id"),
                )
            ],
        ),
        (
            "inconsistent-order",
            1,
            [
                (
                    6,
                    "Email",
                    "c@x",
                    "order '#1002' has customer_id 'c@x' here but 'b@x' on its first line 5: every line of an order"
                    " must agree" + fed("Email", "customer_id"),
                )
            ],
        ),
        (
            "invalid-timestamp",
            2,
            [
                (7, "Created at", "07/10/2025 09:50", not_a_timestamp + fed("Created at", "order_timestamp")),
                (11, "Created at", "9999-12-31T23:00:00-05:00", past_the_years + fed("Created at", "order_timestamp")),
            ],
        ),
        (
            "blank-value",
            3,
            [
                (8, "Financial Status", "", "returned is empty" + fed("Financial Status", "returned")),
                (9, "Line", "\u200b", "line_id holds only invisible characters" + fed("Line", "line_id")),
                (10, "Created at", "", "order_timestamp is empty" + fed("Created at", "order_timestamp")),
            ],
        ),
    ]
    # Lines that break no rule, as the seed's fields: the date local to the zone (20:00 UTC is the
    # next day in India), the status read as returned or not.
    assert staged == [
        ["#1001", "a@x", "2025-10-08", "Books", "P1", "1", "10.00", "false"],
        ["#1001", "a@x", "2025-10-08", "Books", "P1", "2", "10.00", "false"],
        ["#1002", "b@x", "2025-10-07", "Toys", "P3", "1", "3.00", "true"],
    ]


def test_without_a_line_id_a_line_is_its_product() -> None:
    rows = [
        "#1001,a@x,2025-10-07T10:00:00Z,Books,P1,1,10.00,paid",
        "#1001,a@x,2025-10-07T10:00:00Z,Books,P1,2,9.00,paid",
    ]
    report, errors, staged = validated(HEADER + "\n" + "\n".join(rows) + "\n", shape())
    assert (report.valid, report.rows) == (False, 2)
    message = "order '#1001' already has a line with product_id 'P1' at line 2: a line appears once per file"
    assert errors == [("duplicate-line", 1, [(3, "Lineitem sku", "P1", message + fed("Lineitem sku", "product_id"))])]
    assert staged == [["#1001", "a@x", "2025-10-07", "Books", "P1", "1", "10.00", "false"]]


def test_a_line_with_a_bad_value_is_still_checked_against_its_first_line() -> None:
    """Every order field of a later line is compared, also after one that is bad itself."""
    rows = [
        "#1001,a@x,2025-10-07T10:00:00Z,Books,P1,1,10.00,paid",
        "#1001,a@x,not a time,Books,P2,1,9.00,refunded",
    ]
    report, errors, staged = validated(HEADER + "\n" + "\n".join(rows) + "\n", shape())
    assert (report.valid, [(code, [s[0] for s in samples]) for code, _, samples in errors]) == (
        False,
        [("invalid-timestamp", [3]), ("inconsistent-order", [3])],
    )
    assert errors[1][2][0][1:] == (
        "Financial Status",
        "refunded",
        "order '#1001' has returned 'refunded' here but 'paid' on its first line 2: every line of an order must"
        " agree" + fed("Financial Status", "returned"),
    )
    assert staged == [["#1001", "a@x", "2025-10-07", "Books", "P1", "1", "10.00", "false"]]
