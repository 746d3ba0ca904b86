"""The product catalog: which category each product belongs to.

With `[input] catalog = true`, order files carry a product id and no category; `products*.csv`
files are catalog batches, each row setting one product's category. The current catalog is the
latest row per product over the committed catalog batches (an upsert: a product a batch does
not name keeps its category), and a line's category is its product's category there, or
`Unknown` while no catalog names the product. Pure: the validator reads a stream, the rest are
Polars expressions over frames handed in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

from orderpipe.core.exact import read_rows
from orderpipe.core.header import catalog_layout
from orderpipe.core.report import ReportBuilder, ValidationReport
from orderpipe.core.rules import WHITESPACE, is_blank, shown
from orderpipe.core.shape import UNKNOWN, InputShape

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "CATALOG_SCHEMA",
    "CatalogRows",
    "changed_products",
    "latest_catalog",
    "resolve_categories",
    "validate_catalog",
]

#: A catalog batch's staged rows.
CATALOG_SCHEMA = {"product_id": "String", "category": "String"}


def validate_catalog(
    stream: BinaryIO,
    file: str,
    shape: InputShape,
    categories: frozenset[str],
    on_row: Callable[[str, str], None] | None = None,
) -> ValidationReport:
    """Validate one catalog file; never raises for bad data. `on_row` gets (product, category)
    of every clean row, so what is staged is what was validated."""
    each = None if on_row is None else (lambda values: on_row(values[0], values[1]))
    return read_rows(stream, file, CatalogRows(shape, categories), each)


class CatalogRows:
    """The rules of a catalog row (see `exact.RowRules`): a product and its category, neither
    blank, the category allowed (or `Unknown`), each product once per file."""

    def __init__(self, shape: InputShape, categories: frozenset[str]) -> None:
        self.shape = shape
        self.allowed = categories | {UNKNOWN}
        self.layout = catalog_layout(shape)
        self.explained = shape.explain_catalog()
        self.report = ReportBuilder("")
        self._at = (0, 1)
        self._seen: dict[str, int] = {}

    def bind(self, positions: dict[str, int], report: ReportBuilder) -> None:
        self.report = report
        self._at = (positions["product_id"], positions["category"])
        self._seen = {}

    def dates(self) -> tuple[str, ...]:
        return ()

    def check(self, record: list[str], line: int) -> list[str] | None:
        """[product, category] when the row breaks no rule, else None (the report says why)."""
        shape, report = self.shape, self.report
        product = record[self._at[0]].strip(WHITESPACE)
        category = record[self._at[1]].strip(WHITESPACE)
        clean = True
        for field, source, value in (
            ("product_id", shape.catalog_product_id, product),
            ("category", shape.catalog_category, category),
        ):
            if is_blank(value):
                what = "is empty" if value == "" else "holds only invisible characters"
                fed = f" ({shown(source)} is read as {field})" if source != field else ""
                report.add("blank-value", line, source, value, f"{field} {what}{fed}")
                clean = False
        if clean and category not in self.allowed:
            near = next((c for c in self.allowed if c.lower() == category.lower()), None)
            extra = f" (did you mean {shown(near)}? categories are case-sensitive)" if near else ""
            message = f"{shown(category)} is not an allowed category{extra}"
            report.add("unknown-category", line, shape.catalog_category, category, message)
            clean = False
        if clean:
            first = self._seen.setdefault(product, line)
            if first != line:
                message = f"product {shown(product)} already appears at line {first}: give each product one row"
                report.add("duplicate-product", line, shape.catalog_product_id, product, message)
                clean = False
        return [product, category] if clean else None


def latest_catalog(entries: pl.LazyFrame) -> pl.LazyFrame:
    """The current catalog from the rows of several catalog batches tagged with their `seq`:
    per product, the row of the highest seq."""
    import polars as pl

    return entries.filter(pl.col("seq") == pl.col("seq").max().over("product_id")).select("product_id", "category")


def resolve_categories(facts: pl.LazyFrame, catalog: pl.LazyFrame) -> pl.LazyFrame:
    """The facts with each line's category taken from the catalog (`Unknown` when it does not
    name the product): categories are resolved when KPIs are computed, never stored."""
    import polars as pl

    named = catalog.select("product_id", pl.col("category").alias("__catalog"))
    return (
        facts.join(named, on="product_id", how="left", maintain_order="left")
        .with_columns(pl.col("__catalog").fill_null(UNKNOWN).alias("category"))
        .drop("__catalog")
    )


def changed_products(batch: pl.DataFrame, before: pl.DataFrame) -> list[str]:
    """The products of a catalog batch whose category differs from the catalog before it
    (a product the earlier catalog does not name was `Unknown`)."""
    import polars as pl

    joined = batch.join(before.rename({"category": "__before"}), on="product_id", how="left")
    changed = joined.filter(pl.col("category") != pl.col("__before").fill_null(UNKNOWN))
    return sorted(changed["product_id"].to_list())
