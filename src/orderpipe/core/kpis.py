"""KPI maths: exact sums in Polars decimals, rounded half-even on their digits as integers.

The input is the facts of some dates, each row tagged with its batch `seq`; the output is a
pure function of the current orders of each date (the latest batch's row per order id).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from orderpipe.core.schema import CENT, COUNT, KEY, MONEY, RATE_KIND, RATE_UNIT, KpiSchema, kpi

__all__ = [
    "CENT",
    "KPIS",
    "RATE",
    "CategoryKpi",
    "DateKpis",
    "KpiSums",
    "OrderKpi",
    "adjusted",
    "category_sums",
    "compute_kpis",
    "current_orders",
    "customer_queries",
    "date_kpis",
    "half_even",
    "kpi_sums",
    "kpis_from_categories",
    "kpis_from_sums",
    "unique_customers",
]

if TYPE_CHECKING:
    import polars as pl

RATE = RATE_UNIT


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
    """Distinct customer ids per date, exactly: the distinct ids of each date, counted. Each of
    `queries` queries takes the dates whose day number modulo `queries` is its own, so the
    (date, customer) pairs held at once shrink with the number of queries (each one more
    scan). Counted per date (`n_unique`), not as distinct pairs then grouped: measured 30 %
    less CPU for the same memory (4.5 M rows)."""
    import polars as pl

    day = pl.col("order_date").cast(pl.Int32)  # days since 1970; `%` rounds down, so never negative
    counts: dict[str, int] = {}
    for query in range(queries):
        some = rows if queries == 1 else rows.filter(day % queries == query)
        counts.update(
            some.group_by("order_date")
            .agg(pl.col("customer_id").n_unique())
            .with_columns(pl.col("order_date").cast(pl.String))
            .collect(engine="streaming")
            .iter_rows()
        )
    return counts


def _revenue() -> pl.Expr:
    """A row's revenue, exact: unit price (Decimal(38, 4)) times quantity (an integer), in
    Decimal(38, 4). The integer multiplies the price's digits as they are: measured a third
    cheaper than casting every quantity to a decimal first, for the same digits."""
    import polars as pl

    return pl.col("unit_price") * pl.col("quantity")


def category_sums(rows: pl.LazyFrame, orders: pl.Expr, returned_orders: pl.Expr) -> pl.LazyFrame:
    """Per (date, category): the exact revenue, the orders and the returned orders (counted by
    the given expressions) and the items. The one query of the category KPIs for both grains:
    a row is an order here (`pl.len()`), a line at line grain (`core/lines.py`)."""
    import polars as pl

    return rows.group_by("order_date", "category").agg(
        _revenue().sum().alias("revenue"),
        orders.alias("orders"),
        returned_orders.alias("returned_orders"),
        pl.col("quantity").sum().alias("items"),
    )


def compute_kpis(orders: pl.LazyFrame, dates: Collection[str], customer_queries: int = 1) -> dict[str, DateKpis]:
    """KPIs for each of `dates` from the current orders (columns of the facts schema), by
    streaming queries for inputs too big to hold. `customer_queries`: see `unique_customers`."""
    import polars as pl

    # Distinct customers get queries of their own (mixed with other aggregations, they would
    # hold every row).
    by_category = category_sums(orders, pl.len(), pl.col("returned").sum()).collect(engine="streaming")
    return kpis_from_categories(by_category, unique_customers(orders, customer_queries), dates)


@dataclass(frozen=True, slots=True)
class KpiSums:
    """The additive parts of the KPIs of some dates' current orders: per (date, category) the
    exact revenue, the orders, the returned orders and the items; per (date, customer) the
    orders. When a batch replaces some orders, the sums of the new current orders are the old
    sums minus those of the replaced rows plus those of the new rows (`adjusted`): a small batch
    on a busy date costs its own rows, not a pass over every current order."""

    categories: pl.DataFrame  # order_date, category, revenue, orders, returned_orders, items
    customers: pl.DataFrame  # order_date, customer_id, orders

    @staticmethod
    def joined(parts: Sequence[KpiSums]) -> KpiSums:
        """The sums of disjoint sets of dates, together."""
        import polars as pl

        return KpiSums(pl.concat([p.categories for p in parts]), pl.concat([p.customers for p in parts]))

    def of(self, days: pl.Series) -> KpiSums:
        """The sums of the dates in `days` (a Date series) only."""
        import polars as pl

        on = pl.col("order_date").is_in(days.implode())
        return KpiSums(self.categories.filter(on), self.customers.filter(on))


def kpi_sums(orders: pl.LazyFrame) -> KpiSums:
    """The sums of current orders held in memory (see `KpiSums`)."""
    import polars as pl

    categories, customers = pl.collect_all(
        [
            orders.group_by("order_date", "category").agg(
                _revenue().sum().alias("revenue"),
                pl.len().cast(pl.Int64).alias("orders"),
                pl.col("returned").cast(pl.Int64).sum().alias("returned_orders"),
                pl.col("quantity").sum().alias("items"),
            ),
            orders.group_by("order_date", "customer_id").agg(pl.len().cast(pl.Int64).alias("orders")),
        ]
    )
    return KpiSums(categories, customers)


def adjusted(sums: KpiSums, lost: pl.LazyFrame, gained: pl.LazyFrame) -> KpiSums:
    """The sums after the current orders lose the rows `lost` and gain the rows `gained`. A
    category or customer left with no order has no row, as in the sums of a full pass."""
    import polars as pl

    columns = ["order_date", "category", "customer_id", "quantity", "unit_price", "returned"]
    # A batch's rows and those they replace: few, so eager queries (a lazy one costs more to
    # plan than to run on them).
    changes = pl.concat(
        [gained.select(columns).with_columns(sign=pl.lit(1)), lost.select(columns).with_columns(sign=pl.lit(-1))]
    ).collect()
    sign = pl.col("sign")
    numbers = ["revenue", "orders", "returned_orders", "items"]
    categories = changes.group_by("order_date", "category").agg(
        pl.when(sign > 0).then(_revenue()).otherwise(-_revenue()).sum().alias("revenue"),
        sign.cast(pl.Int64).sum().alias("orders"),
        (pl.col("returned").cast(pl.Int64) * sign).sum().alias("returned_orders"),
        (pl.col("quantity") * sign).sum().alias("items"),
    )
    customers = changes.group_by("order_date", "customer_id").agg(sign.cast(pl.Int64).sum().alias("orders"))
    return KpiSums(
        pl.concat([sums.categories, categories])
        .group_by("order_date", "category")
        .agg(pl.col(c).sum() for c in numbers)
        .filter(pl.col("orders") > 0),
        pl.concat([sums.customers, customers])
        .group_by("order_date", "customer_id")
        .agg(pl.col("orders").sum())
        .filter(pl.col("orders") > 0),
    )


def kpis_from_sums(sums: KpiSums, dates: Collection[str]) -> dict[str, DateKpis]:
    """KPIs for each of `dates` from the sums of their current orders."""
    import polars as pl

    customers = (
        sums.customers.group_by("order_date").len().with_columns(pl.col("order_date").cast(pl.String)).iter_rows()
    )
    return kpis_from_categories(sums.categories, dict(customers), dates)


def kpis_from_categories(
    by_category: pl.DataFrame,
    customers: dict[str, int],
    dates: Collection[str],
    orders: pl.DataFrame | None = None,
) -> dict[str, DateKpis]:
    """The KPIs from the sums per (date, category) and the distinct customers per date: a day's
    revenue and items are the sums of its categories'; so are its orders and returned orders
    when each order is in one category, else `orders` gives them per date (order_date, orders,
    returned_orders: line grain, where an order's lines may span categories)."""
    import polars as pl

    # Counts summed as 64-bit: a group-by's counts are 32-bit unsigned, and a sum keeps the type.
    summed = ("revenue", "items") if orders is not None else ("revenue", "orders", "returned_orders", "items")
    by_date = by_category.group_by("order_date").agg(
        pl.col(c).sum() if c == "revenue" else pl.col(c).cast(pl.Int64).sum() for c in summed
    )
    if orders is not None:
        by_date = by_date.join(orders, on="order_date", how="left")
    return date_kpis(by_category, by_date, customers, dates)


def half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-even to a whole number, exactly (denominator > 0)."""
    quotient, remainder = divmod(numerator, denominator)  # rounded down: remainder in [0, d)
    twice = 2 * remainder
    return quotient + 1 if twice > denominator or (twice == denominator and quotient % 2) else quotient


#: Wide enough for every amount the bounds allow (Python's default context keeps 28 digits).
_WIDE = decimal.Context(prec=80)
_PER_RATE = int(1 / RATE)


def _cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2, _WIDE)  # exponent -2: 0 is "0.00"


def _share(part: int, whole: int) -> Decimal:
    """part / whole to six decimals, half-even."""
    return Decimal(half_even(part * _PER_RATE, whole)).scaleb(-6, _WIDE)


def date_kpis(
    by_category: pl.DataFrame, by_date: pl.DataFrame, customers: dict[str, int], dates: Collection[str]
) -> dict[str, DateKpis]:
    """The KPI objects of `dates` from exact sums: per (date, category) the revenue, orders and
    returned orders; per date also the items. Rounded on the decimals' integer form (their
    digits, as Python integers): exact whatever their size, and a few microseconds a row, where
    ~30,000 category rows of a file of 3,650 dates took 0.2 s in `decimal`. The counts come
    back as Python integers, whatever their width in the frames."""
    import polars as pl

    revenue = by_category.schema["revenue"]
    scale = getattr(revenue, "scale", None)
    if by_date.schema["revenue"] != revenue or scale is None or scale < 2:
        raise ValueError(f"revenue must be a decimal of the same scale (at least 2) in both frames, got {revenue}")
    per_cent = 10 ** (scale - 2)  # the revenue's digits per cent
    units = pl.col("revenue").to_physical()  # the decimal's digits: 10**scale per unit of money
    day = pl.col("order_date").cast(pl.String)
    categories: dict[str, list[CategoryKpi]] = {d: [] for d in dates}
    # Sorted by date, then category (UTF-8 bytes sort as code points, as Python's strings do).
    for category, date, digits, n, back in (
        by_category.sort("order_date", "category")
        .select("category", day, units, "orders", "returned_orders")
        .iter_rows()
    ):
        revenue_cents, average_cents = half_even(digits, per_cent), half_even(digits, per_cent * n)
        kpi = CategoryKpi(category, date, _cents(revenue_cents), _cents(average_cents), _share(back, n), n, back)
        categories.setdefault(date, []).append(kpi)
    totals = {
        date: OrderKpi(date, n, _cents(half_even(digits, per_cent)), items, _share(back, n), customers[date], back)
        for date, n, digits, items, back in by_date.select(day, "orders", units, "items", "returned_orders").iter_rows()
    }
    return {d: DateKpis(d, totals.get(d), tuple(categories.get(d, ()))) for d in sorted(set(dates) | set(totals))}
