"""Both KPI stores keep the largest day the pipeline guarantees, to the cent.

The guarantee: up to 2^32 - 1 orders on one date (Polars' 32-bit row index), each at the
maximal quantity and price. That day's revenue is below 4.3 * 10^30 (33 digits with the
cents) and its items below 4.3 * 10^18 (within a signed 64-bit integer).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from orderpipe.adapters.dynamodb import TableNames
from orderpipe.adapters.dynamodb_kpis import DynamoKpiStore
from orderpipe.adapters.sqlite import SqliteDatabase, SqliteKpiStore
from orderpipe.core.kpis import CENT, RATE, CategoryKpi, DateKpis, OrderKpi
from orderpipe.errors import OrderpipeError
from orderpipe.ports import KpiStore

DATE = "2025-07-06"
MAX_ORDERS = 2**32 - 1
MAX_QUANTITY = 10**9 - 1
MAX_ROW = Decimal(MAX_QUANTITY) * Decimal("999999999999.9999")  # exact: 26 digits
WIDE = decimal.Context(prec=60)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=decimal.ROUND_HALF_EVEN, context=WIDE)


def rate(numerator: int, denominator: int) -> Decimal:
    return WIDE.divide(Decimal(numerator), Decimal(denominator)).quantize(RATE, rounding=decimal.ROUND_HALF_EVEN)


def largest_day() -> DateKpis:
    revenue = WIDE.multiply(MAX_ROW, Decimal(MAX_ORDERS))
    returned = MAX_ORDERS // 3
    category = CategoryKpi(
        "Electronics", DATE, money(revenue), money(MAX_ROW), rate(returned, MAX_ORDERS), MAX_ORDERS, returned
    )
    total = OrderKpi(
        DATE, MAX_ORDERS, money(revenue), MAX_ORDERS * MAX_QUANTITY, rate(returned, MAX_ORDERS), MAX_ORDERS, returned
    )
    return DateKpis(DATE, total, (category,))


def dynamo_store(env: dict[str, str]) -> DynamoKpiStore:
    import boto3

    names = TableNames(
        env["ORDERPIPE_AWS_LEDGER_TABLE"], env["ORDERPIPE_AWS_CATEGORY_TABLE"], env["ORDERPIPE_AWS_ORDER_TABLE"]
    )
    return DynamoKpiStore(names, boto3.client("dynamodb"))


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KpiStore]:
    if request.param == "sqlite":
        db = SqliteDatabase(tmp_path / "kpis.db")
        yield SqliteKpiStore(db)
        db.close()
    else:
        yield dynamo_store(request.getfixturevalue("aws_env"))


def test_the_largest_guaranteed_day_round_trips_exactly(store: KpiStore) -> None:
    kpis = largest_day()
    assert kpis.order is not None
    assert len(str(kpis.order.total_revenue).replace(".", "")) == 33
    assert kpis.order.total_items_sold < 2**63
    assert store.write({DATE: (1, kpis)}) == []
    [daily] = store.daily(DATE, DATE)
    [category] = store.category("Electronics", None, None)
    o, c = kpis.order, kpis.categories[0]
    assert daily == {
        "order_date": DATE,
        "total_orders": o.total_orders,
        "total_revenue": o.total_revenue,
        "total_items_sold": o.total_items_sold,
        "return_rate": o.return_rate,
        "unique_customers": o.unique_customers,
        "returned_orders": o.returned_orders,
    }
    assert category == {
        "category": "Electronics",
        "order_date": DATE,
        "daily_revenue": c.daily_revenue,
        "avg_order_value": c.avg_order_value,
        "avg_return_rate": c.avg_return_rate,
        "orders": c.orders,
        "returned_orders": c.returned_orders,
    }
    for stored, written in [
        (daily["total_revenue"], o.total_revenue),
        (category["daily_revenue"], c.daily_revenue),
        (category["avg_order_value"], c.avg_order_value),
        (daily["return_rate"], o.return_rate),
    ]:
        assert str(stored) == str(written)


def test_dynamodb_refuses_a_number_it_would_round(aws_env: dict[str, str]) -> None:
    """DynamoDB keeps 38 significant digits; a longer number must fail loudly, never round
    (moto, unlike DynamoDB, would store it)."""
    store = dynamo_store(aws_env)
    too_long = Decimal("1" * 37 + ".01")  # 39 significant digits
    day = DateKpis(DATE, OrderKpi(DATE, 1, too_long, 1, Decimal("0.000000"), 1, 0), ())
    with pytest.raises(OrderpipeError, match="38 significant digits"):
        store.write({DATE: (1, day)})
    assert store.daily(None, None) == []


def test_a_write_of_thousands_of_dates_keeps_each_newer_version(tmp_path: Path) -> None:
    """SQLite reads the stored versions of many dates in several queries: every one counts."""
    import datetime as dt

    db = SqliteDatabase(tmp_path / "kpis.db")
    store = SqliteKpiStore(db)
    days = [(dt.date(2020, 1, 1) + dt.timedelta(days=n)).isoformat() for n in range(2_000)]

    def day(date: str, orders: int) -> DateKpis:
        total = OrderKpi(date, orders, money(Decimal(orders)), orders, rate(0, orders), 1, 0)
        category = CategoryKpi("Books", date, money(Decimal(orders)), money(Decimal(1)), rate(0, orders), orders, 0)
        return DateKpis(date, total, (category,))

    assert store.write({d: (5, day(d, 5)) for d in days}) == []
    newer = set(days[1_500:1_510])  # stored at a newer version meanwhile: beyond the first read
    assert store.write({d: (7, day(d, 7)) for d in newer}) == []
    assert store.write({d: (6, day(d, 6)) for d in days}) == sorted(newer)
    orders = {row["order_date"]: row["total_orders"] for row in store.daily(None, None)}
    assert orders == {d: 7 if d in newer else 6 for d in days}
    assert len(store.category("Books", None, None)) == 2_000
    db.close()
