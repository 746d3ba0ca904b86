"""KPI maths at line grain: orders that span rows.

The facts hold one row per line. A later batch replaces an order whole — every line of it —
so the current lines of a date are all the lines of the latest batch per (order_date,
order_id). Then: orders are distinct order ids; revenue and items sum over lines; in each
category an order counts once, with the revenue of its lines there, and is a returned order of
that category when one of its lines there is returned; an order is returned when any line is.
With one row per order these are exactly the order-grain KPIs (`kpis.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

import polars as pl

from orderpipe.core.kpis import DateKpis, date_kpis, unique_customers

__all__ = ["compute_line_kpis", "current_lines"]


def current_lines(facts: pl.LazyFrame, multi_batch_dates: Collection[str]) -> pl.LazyFrame:
    """Keep every line of the latest batch's version of each (order_date, order_id)."""
    if not multi_batch_dates:
        return facts
    days = pl.Series([dt.date.fromisoformat(d) for d in sorted(multi_batch_dates)], dtype=pl.Date)
    shared = pl.col("order_date").is_in(days.implode())
    latest = facts.filter(shared).filter(pl.col("seq") == pl.col("seq").max().over("order_date", "order_id"))
    return pl.concat([facts.filter(~shared), latest], how="vertical")


def compute_line_kpis(lines: pl.LazyFrame, dates: Collection[str], customer_queries: int = 1) -> dict[str, DateKpis]:
    """KPIs for each of `dates` from the current lines (columns of the facts schema).
    `customer_queries`: see `unique_customers`."""
    revenue = (pl.col("quantity").cast(pl.Decimal(38, 4)) * pl.col("unit_price")).sum()
    per_category = (
        lines.group_by("order_date", "order_id", "category")
        .agg(
            revenue.alias("revenue"),
            pl.col("returned").any().alias("returned"),
            pl.col("quantity").sum().alias("items"),
        )
        .collect(engine="streaming")
    )
    customers = unique_customers(lines, customer_queries)
    by_category = per_category.group_by("order_date", "category").agg(
        pl.col("revenue").sum(), pl.len().alias("orders"), pl.col("returned").sum().alias("returned_orders")
    )
    by_date = (
        per_category.group_by("order_date", "order_id")
        .agg(
            pl.col("revenue").sum(),
            pl.col("items").sum(),
            pl.col("returned").any(),
        )
        .group_by("order_date")
        .agg(
            pl.col("revenue").sum(),
            pl.len().alias("orders"),
            pl.col("items").sum(),
            pl.col("returned").sum().alias("returned_orders"),
        )
    )
    return date_kpis(by_category, by_date, customers, dates)
