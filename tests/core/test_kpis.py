"""KPI maths and upsert semantics against a small, straightforward `decimal` reference."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from orderpipe.core.kpis import compute_kpis, current_orders, money, rate
from orderpipe.core.screen import FACT_SCHEMA

CATEGORIES = ["Electronics", "Books", "Toys"]
DATES = ["2025-07-06", "2025-07-07", "2025-07-08"]

orders = st.fixed_dictionaries(
    {
        "order_id": st.sampled_from([f"O{i}" for i in range(12)]),
        "customer_id": st.sampled_from(["C1", "C2", "C3", "C4"]),
        "order_date": st.sampled_from(DATES),
        "category": st.sampled_from(CATEGORIES),
        "product_id": st.just("P"),
        "quantity": st.integers(1, 10_000),
        "unit_price": st.decimals(Decimal("0.0001"), Decimal("99999999.9999"), places=4),
        "returned": st.booleans(),
    }
)
# A batch: unique order ids per date, as validation guarantees.
batches = st.lists(
    st.lists(orders, max_size=15).map(lambda rs: list({(r["order_date"], r["order_id"]): r for r in rs}.values())),
    min_size=1,
    max_size=4,
)


def reference(all_batches: list[list[dict]]) -> tuple[dict, dict]:
    """Latest batch wins per (date, order id); then the KPI formulas, by hand."""
    current: dict[tuple[str, str], dict] = {}
    for batch in all_batches:
        for row in batch:
            current[(row["order_date"], row["order_id"])] = row
    daily: dict[str, dict] = {}
    category: dict[tuple[str, str], dict] = {}
    for (day, _), row in current.items():
        value = row["quantity"] * row["unit_price"]
        d = daily.setdefault(day, {"orders": 0, "revenue": Decimal(0), "items": 0, "returned": 0, "customers": set()})
        d["orders"] += 1
        d["revenue"] += value
        d["items"] += row["quantity"]
        d["returned"] += row["returned"]
        d["customers"].add(row["customer_id"])
        c = category.setdefault((row["category"], day), {"orders": 0, "revenue": Decimal(0), "returned": 0})
        c["orders"] += 1
        c["revenue"] += value
        c["returned"] += row["returned"]
    cents = Decimal("0.01")
    six = Decimal("0.000001")
    expected_daily = {
        day: (
            d["orders"],
            d["revenue"].quantize(cents, ROUND_HALF_EVEN),
            d["items"],
            (Decimal(d["returned"]) / Decimal(d["orders"])).quantize(six, ROUND_HALF_EVEN),
            len(d["customers"]),
        )
        for day, d in daily.items()
    }
    expected_category = {
        key: (
            c["revenue"].quantize(cents, ROUND_HALF_EVEN),
            (c["revenue"] / c["orders"]).quantize(cents, ROUND_HALF_EVEN),
            (Decimal(c["returned"]) / Decimal(c["orders"])).quantize(six, ROUND_HALF_EVEN),
        )
        for key, c in category.items()
    }
    return expected_daily, expected_category


def facts_of(all_batches: list[list[dict]]) -> pl.LazyFrame:
    frames = []
    for seq, batch in enumerate(all_batches, start=1):
        frame = pl.DataFrame(batch, schema={**FACT_SCHEMA, "order_date": pl.String()}).with_columns(
            pl.col("order_date").str.to_date(), pl.lit(seq).alias("seq")
        )
        frames.append(frame.lazy())
    return pl.concat(frames)


@settings(max_examples=150, deadline=None)
@given(batches)
def test_kpis_equal_the_decimal_reference(all_batches: list[list[dict]]) -> None:
    touched = {r["order_date"] for b in all_batches for r in b}
    by_date = {d: {i for i, b in enumerate(all_batches) if any(r["order_date"] == d for r in b)} for d in touched}
    shared = {d for d, seen in by_date.items() if len(seen) > 1}
    result = compute_kpis(current_orders(facts_of(all_batches), shared), sorted(touched))
    expected_daily, expected_category = reference(all_batches)
    got_daily = {
        d: (
            k.order.total_orders,
            k.order.total_revenue,
            k.order.total_items_sold,
            k.order.return_rate,
            k.order.unique_customers,
        )
        for d, k in result.items()
        if k.order
    }
    got_category = {
        (c.category, d): (c.daily_revenue, c.avg_order_value, c.avg_return_rate)
        for d, k in result.items()
        for c in k.categories
    }
    assert got_daily == expected_daily
    assert got_category == expected_category


def test_avg_order_value_is_per_order_not_per_item() -> None:
    """The seed README shows 199.99 for one order of 2 × 199.99; the definition gives 399.98."""
    facts = pl.LazyFrame(
        {
            "order_id": ["ORD123"],
            "customer_id": ["C"],
            "category": ["Electronics"],
            "product_id": ["P"],
            "quantity": [2],
            "unit_price": [Decimal("199.99")],
            "returned": [False],
            "order_date": [dt.date(2025, 7, 6)],
            "seq": [1],
        },
        schema={**FACT_SCHEMA, "seq": pl.Int64()},
    )
    (kpi,) = compute_kpis(facts, ["2025-07-06"])["2025-07-06"].categories
    assert kpi.avg_order_value == Decimal("399.98")


def test_rounding_is_half_even() -> None:
    assert money(Decimal("0.125")) == Decimal("0.12")
    assert money(Decimal("0.135")) == Decimal("0.14")
    assert rate(1, 3) == Decimal("0.333333")
    assert rate(2, 3) == Decimal("0.666667")
    assert rate(5, 10_000_000) == Decimal("0.000000")  # 0.0000005 → to the even 0
    assert rate(15, 10_000_000) == Decimal("0.000002")  # 0.0000015 → to the even 2
