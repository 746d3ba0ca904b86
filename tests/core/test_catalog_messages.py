"""What the catalog's exact validator says about each row rule: the line, the column as the
file names it, the value and the words, and the rows it hands on to be staged."""

from __future__ import annotations

import io

import pytest

from orderpipe.core.catalog import validate_catalog
from orderpipe.core.rules import DEFAULT_CATEGORIES
from orderpipe.core.shape import InputShape

#: One row per rule, each on a line of its own, beside rows that break none (padding trimmed,
#: `Unknown` always allowed).
ROWS = (
    "P1,Books\n,Toys\nP2,\u200b\nP3,books\nP4,Gadgets\nP1,Toys\n"
    "\u00a0P5\u00a0,\u2003Home\u2003\nP5,Unknown\nP6,Unknown\n"
)

Sample = tuple[int, str | None, str | None, str]


def report(shape: InputShape) -> tuple[bool, int, list[tuple[str, int, list[Sample]]], list[tuple[str, str]]]:
    header = f"{shape.catalog_product_id},{shape.catalog_category}\n"
    staged: list[tuple[str, str]] = []
    found = validate_catalog(
        io.BytesIO((header + ROWS).encode()),
        "products.csv",
        shape,
        frozenset(DEFAULT_CATEGORIES),
        lambda product, category: staged.append((product, category)),
    )
    errors = [(i.code, i.count, [(s.line, s.column, s.value, s.message) for s in i.samples]) for i in found.errors]
    return found.valid, found.rows, errors, staged


@pytest.mark.parametrize(
    ("product_id", "category", "fed"),
    [
        ("product_id", "category", ("", "")),
        ("Variant SKU", "Type", (" ('Variant SKU' is read as product_id)", " ('Type' is read as category)")),
    ],
    ids=["plain", "renamed"],
)
def test_each_row_rule_names_its_line_column_value_and_fix(
    product_id: str, category: str, fed: tuple[str, str]
) -> None:
    shape = InputShape(catalog=True, catalog_product_id=product_id, catalog_category=category)
    valid, rows, errors, staged = report(shape)
    assert (valid, rows) == (False, 9)
    assert errors == [
        (
            "blank-value",
            2,
            [
                (3, product_id, "", f"product_id is empty{fed[0]}"),
                (4, category, "\u200b", f"category holds only invisible characters{fed[1]}"),
            ],
        ),
        (
            "unknown-category",
            2,
            [
                (
                    5,
                    category,
                    "books",
                    "'books' is not an allowed category (did you mean 'Books'? categories are case-sensitive)",
                ),
                (6, category, "Gadgets", "'Gadgets' is not an allowed category"),
            ],
        ),
        (
            "duplicate-product",
            2,
            [
                (7, product_id, "P1", "product 'P1' already appears at line 2: give each product one row"),
                (9, product_id, "P5", "product 'P5' already appears at line 8: give each product one row"),
            ],
        ),
    ]
    # Only the rows that break no rule are handed on, trimmed; a product's second row is not.
    assert staged == [("P1", "Books"), ("P5", "Home"), ("P6", "Unknown")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty: expected a header and at least one product row"),
        ("product_id,category\n", "the file has a header but no product rows"),
    ],
)
def test_an_empty_or_header_only_catalog_says_it_holds_no_product(text: str, message: str) -> None:
    found = validate_catalog(io.BytesIO(text.encode()), "products.csv", InputShape(), frozenset(DEFAULT_CATEGORIES))
    assert not found.valid
    assert [s.message for i in found.errors for s in i.samples] == [message]
