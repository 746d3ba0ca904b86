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

from orderpipe.core.kpis import DateKpis, category_sums, kpis_from_categories, unique_customers

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
    `customer_queries`: see `unique_customers`.

    The order-grain queries with orders counted as distinct order ids, each streamed over the
    lines: per (date, category) (`category_sums`), and per date, since an order whose lines
    span categories is one order of the day. Revenue and items are sums over lines, so a day's
    are its categories'. Counting distinct ids per small group costs a third of grouping every
    line by its order and then the orders again (measured on 4.5 M lines).
    """
    order = pl.col("order_id")
    returned = order.filter(pl.col("returned"))  # the orders with a returned line
    # Collected together: 15 % less CPU than one after the other, for the same peak memory.
    by_category, by_date = pl.collect_all(
        [
            category_sums(lines, order.n_unique(), returned.n_unique()),
            lines.group_by("order_date").agg(
                order.n_unique().alias("orders"), returned.n_unique().alias("returned_orders")
            ),
        ],
        engine="streaming",
    )
    return kpis_from_categories(by_category, unique_customers(lines, customer_queries), dates, by_date)
