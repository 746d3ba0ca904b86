"""The product catalog: which category each product belongs to.

With `[input] catalog = true`, order files carry a product id and no category; `products*.csv`
files are catalog batches, each row setting one product's category. The current catalog is the
latest row per product over the committed catalog batches (an upsert: a product a batch does
not name keeps its category), and a line's category is its product's category there, or
`Unknown` while no catalog names the product. Pure: the validator reads a stream, the rest are
Polars expressions over frames handed in.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

from orderpipe.core.header import catalog_layout, check_header
from orderpipe.core.report import ReportBuilder, ValidationReport
from orderpipe.core.rules import WHITESPACE, is_blank, shown
from orderpipe.core.shape import UNKNOWN, InputShape
from orderpipe.core.validate import UnreadableFile, _is_blank, _Lines

if TYPE_CHECKING:
    import polars as pl

__all__ = ["CATALOG_SCHEMA", "changed_products", "latest_catalog", "resolve_categories", "validate_catalog"]

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
    report = ReportBuilder(file)
    lines = _Lines(stream)
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(lines, strict=True)
    rows = 0
    explained = shape.explain_catalog()
    allowed = categories | {UNKNOWN}
    try:
        header = next(reader, None)
        if header is None:
            report.add("no-rows", 1, None, None, "the file is empty: expected a header and at least one product row")
            return report.build(0).explained(explained)
        names = [name.strip(WHITESPACE) for name in header]
        positions = check_header(names, catalog_layout(shape), report)
        if positions is None:
            return report.build(0).explained(explained)
        product_at, category_at = positions["product_id"], positions["category"]
        seen: dict[str, int] = {}
        blank_lines: list[int] = []
        while True:
            start = lines.count + 1
            record = next(reader, None)
            if record is None:
                break
            if _is_blank(record):
                blank_lines.append(start)
                continue
            rows += 1
            if len(record) != len(names):
                message = f"row has {len(record)} fields, the header has {len(names)}"
                report.add("wrong-field-count", start, None, None, message)
                continue
            product = record[product_at].strip(WHITESPACE)
            category = record[category_at].strip(WHITESPACE)
            clean = True
            for field, source, value in (
                ("product_id", shape.catalog_product_id, product),
                ("category", shape.catalog_category, category),
            ):
                if is_blank(value):
                    what = "is empty" if value == "" else "holds only invisible characters"
                    fed = f" ({shown(source)} is read as {field})" if source != field else ""
                    report.add("blank-value", start, source, value, f"{field} {what}{fed}")
                    clean = False
            if clean and category not in allowed:
                near = next((c for c in allowed if c.lower() == category.lower()), None)
                extra = f" (did you mean {shown(near)}? categories are case-sensitive)" if near else ""
                message = f"{shown(category)} is not an allowed category{extra}"
                report.add("unknown-category", start, shape.catalog_category, category, message)
                clean = False
            if clean:
                first = seen.setdefault(product, start)
                if first != start:
                    message = f"product {shown(product)} already appears at line {first}: give each product one row"
                    report.add("duplicate-product", start, shape.catalog_product_id, product, message)
                    clean = False
            if clean and on_row is not None:
                on_row(product, category)
    except csv.Error as exc:
        report.add("csv-error", lines.count, None, None, f"CSV cannot be parsed: {exc}")
        return report.build(rows).explained(explained)
    except UnreadableFile as exc:
        report.add(exc.code, exc.line, None, None, exc.message)
        return report.build(rows).explained(explained)
    if blank_lines:
        report.warnings.append(f"{len(blank_lines)} blank line(s) skipped, first at line {blank_lines[0]}")
    if rows == 0:
        report.add("no-rows", 2, None, None, "the file has a header but no product rows")
    return report.build(rows).explained(explained)


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
