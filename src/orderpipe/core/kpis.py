"""KPI maths: exact sums in Polars decimals, rounding in Python `decimal`.

The input is the facts of some dates, each row tagged with its batch `seq`; the output is a
pure function of the current orders of each date (the latest batch's row per order id).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from orderpipe.core.schema import CENT, COUNT, KEY, MONEY, RATE_KIND, RATE_UNIT, KpiSchema, kpi

__all__ = [
    "CENT",
    "KPIS",
    "RATE",
    "CategoryKpi",
    "DateKpis",
    "OrderKpi",
    "compute_kpis",
    "current_orders",
    "customer_queries",
    "money",
    "rate",
    "unique_customers",
]

if TYPE_CHECKING:
    import polars as pl

RATE = RATE_UNIT
_EXACT = decimal.Context(prec=60, rounding=ROUND_HALF_EVEN)


def money(value: Decimal) -> Decimal:
    """Round half-even to cents."""
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN, context=_EXACT)


def rate(numerator: int, denominator: int) -> Decimal:
    """A fraction rounded half-even to 6 decimals."""
    return _EXACT.divide(Decimal(numerator), Decimal(denominator)).quantize(RATE, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class CategoryKpi:
    """KPIs of one category on one date (table CategoryKPIs)."""

    category: str = field(metadata=kpi(KEY))
    order_date: str = field(metadata=kpi(KEY, "date"))
    daily_revenue: Decimal = field(metadata=kpi(MONEY, "revenue"))
    avg_order_value: Decimal = field(metadata=kpi(MONEY, "avg_order"))
    avg_return_rate: Decimal = field(metadata=kpi(RATE_KIND, "return_rate"))
    orders: int = field(metadata=kpi(COUNT))
    returned_orders: int = field(metadata=kpi(COUNT, support=True))


@dataclass(frozen=True, slots=True)
class OrderKpi:
    """KPIs of all orders on one date (table OrderKPIs)."""

    order_date: str = field(metadata=kpi(KEY, "date"))
    total_orders: int = field(metadata=kpi(COUNT, "orders"))
    total_revenue: Decimal = field(metadata=kpi(MONEY, "revenue"))
    total_items_sold: int = field(metadata=kpi(COUNT, "items"))
    return_rate: Decimal = field(metadata=kpi(RATE_KIND))
    unique_customers: int = field(metadata=kpi(COUNT, "customers"))
    returned_orders: int = field(metadata=kpi(COUNT, support=True))


#: The one KPI schema: the stores, the command line, the API and the CSV export derive from it.
KPIS = KpiSchema(OrderKpi, CategoryKpi)


@dataclass(frozen=True, slots=True)
class DateKpis:
    """Everything stored for one date; `order` is None when the date has no orders left."""

    order_date: str
    order: OrderKpi | None
    categories: tuple[CategoryKpi, ...]


def current_orders(facts: pl.LazyFrame, multi_batch_dates: Collection[str]) -> pl.LazyFrame:
    """Keep the latest batch's row per (order_date, order_id).

    Dates touched by one batch need no de-duplication (order ids are unique within a file), so
    only dates shared by several batches pay for it.
    """
    import polars as pl  # here, not at import: the API reads the KPI dataclasses without Polars

    if not multi_batch_dates:
        return facts
    days = pl.Series([dt.date.fromisoformat(d) for d in sorted(multi_batch_dates)], dtype=pl.Date)
    shared = pl.col("order_date").is_in(days.implode())
    # The row whose seq is the highest for its key (a key is unique within a batch). Measured
    # 5x faster than sort + unique(keep="last") on 150,000 current orders.
    latest = pl.col("seq") == pl.col("seq").max().over("order_date", "order_id")
    merged = facts.filter(shared).filter(latest)
    return pl.concat([facts.filter(~shared), merged], how="vertical")


#: Rows per query counting distinct customers: the distinct (date, customer) pairs of one query
#: are held in memory (~100 bytes each).
CUSTOMER_QUERY_ROWS = 4_000_000


def customer_queries(rows: int) -> int:
    """How many queries `unique_customers` should split `rows` rows into."""
    return max(1, -(-rows // CUSTOMER_QUERY_ROWS))


def unique_customers(rows: pl.LazyFrame, queries: int = 1) -> dict[str, int]:
    """Distinct customer ids per date, exactly: distinct (date, customer) pairs, counted per
    date. Each of `queries` queries takes the dates whose day number modulo `queries` is its
    own, so the pairs held at once shrink with the number of queries (each one more scan)."""
    import polars as pl

    day = pl.col("order_date").cast(pl.Int32)  # days since 1970; `%` rounds down, so never negative
    counts: dict[str, int] = {}
    for query in range(queries):
        some = rows if queries == 1 else rows.filter(day % queries == query)
        counts.update(
            some.select("order_date", "customer_id")
            .unique()
            .group_by("order_date")
            .len()
            .with_columns(pl.col("order_date").cast(pl.String))
            .collect(engine="streaming")
            .iter_rows()
        )
    return counts


def compute_kpis(orders: pl.LazyFrame, dates: Collection[str], customer_queries: int = 1) -> dict[str, DateKpis]:
    """KPIs for each of `dates` from the current orders (columns of the facts schema).
    `customer_queries`: see `unique_customers`."""
    import polars as pl

    revenue = (pl.col("quantity").cast(pl.Decimal(38, 4)) * pl.col("unit_price")).sum()
    # Streaming queries. Day totals are sums of the category sums; distinct customers get
    # queries of their own (mixed with other aggregations, they would hold every row).
    by_category = (
        orders.group_by("order_date", "category")
        .agg(
            revenue.alias("revenue"),
            pl.len().alias("orders"),
            pl.col("returned").sum().alias("returned_orders"),
            pl.col("quantity").sum().alias("items"),
        )
        .with_columns(pl.col("order_date").cast(pl.String), pl.col("category").cast(pl.String))
        .collect(engine="streaming")
    )
    customers = unique_customers(orders, customer_queries)
    categories: dict[str, list[CategoryKpi]] = {d: [] for d in dates}
    sums: dict[str, list[Decimal | int]] = {}
    for row in by_category.iter_rows(named=True):
        exact: Decimal = row["revenue"]
        day = row["order_date"]
        categories.setdefault(day, []).append(
            CategoryKpi(
                category=row["category"],
                order_date=day,
                daily_revenue=money(exact),
                avg_order_value=money(_EXACT.divide(exact, Decimal(row["orders"]))),
                avg_return_rate=rate(row["returned_orders"], row["orders"]),
                orders=row["orders"],
                returned_orders=row["returned_orders"],
            )
        )
        total = sums.setdefault(day, [Decimal(0), 0, 0, 0])
        total[0] = _EXACT.add(total[0], exact)
        total[1] += row["orders"]
        total[2] += row["returned_orders"]
        total[3] += row["items"]
    totals = {
        day: OrderKpi(
            order_date=day,
            total_orders=int(n),
            total_revenue=money(Decimal(revenue_sum)),
            total_items_sold=int(items),
            return_rate=rate(int(returned), int(n)),
            unique_customers=customers[day],
            returned_orders=int(returned),
        )
        for day, (revenue_sum, n, returned, items) in sums.items()
    }
    return {
        d: DateKpis(d, totals.get(d), tuple(sorted(categories.get(d, []), key=lambda c: c.category)))
        for d in sorted(set(dates) | set(totals))
    }
