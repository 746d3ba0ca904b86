"""KPI maths and upsert semantics against a small, straightforward `decimal` reference."""

from __future__ import annotations

import datetime as dt
import decimal
from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from orderpipe.core.kpis import (
    CUSTOMER_QUERY_ROWS,
    DateKpis,
    adjusted,
    compute_kpis,
    current_orders,
    customer_queries,
    half_even,
    kpi_sums,
    kpis_from_categories,
    kpis_from_sums,
    unique_customers,
)
from orderpipe.core.screen import FACT_SCHEMA
from tests.conftest import examples

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
            d["returned"],
        )
        for day, d in daily.items()
    }
    expected_category = {
        key: (
            c["revenue"].quantize(cents, ROUND_HALF_EVEN),
            (c["revenue"] / c["orders"]).quantize(cents, ROUND_HALF_EVEN),
            (Decimal(c["returned"]) / Decimal(c["orders"])).quantize(six, ROUND_HALF_EVEN),
            c["orders"],
            c["returned"],
        )
        for key, c in category.items()
    }
    return expected_daily, expected_category


def facts_of(all_batches: list[list[dict]]) -> pl.LazyFrame:
    """The facts of the batches, tagged 1, 2, … but read newest first: the order files and
    parts arrive in says nothing about which batch is the latest."""
    frames = []
    for seq, batch in enumerate(all_batches, start=1):
        frame = pl.DataFrame(batch, schema={**FACT_SCHEMA, "order_date": pl.String()}).with_columns(
            pl.col("order_date").str.to_date(), pl.lit(seq).alias("seq")
        )
        frames.append(frame.lazy())
    return pl.concat(frames[::-1])


@settings(max_examples=examples(150), deadline=None)
@given(batches, st.integers(1, 4))
def test_kpis_equal_the_decimal_reference(all_batches: list[list[dict]], customer_queries: int) -> None:
    """Whatever the number of queries distinct customers are counted in."""
    touched = {r["order_date"] for b in all_batches for r in b}
    by_date = {d: {i for i, b in enumerate(all_batches) if any(r["order_date"] == d for r in b)} for d in touched}
    shared = {d for d, seen in by_date.items() if len(seen) > 1}
    # Every date of the range is asked for; those without orders must come back empty.
    result = compute_kpis(current_orders(facts_of(all_batches), shared), DATES, customer_queries)
    expected_daily, expected_category = reference(all_batches)
    assert_reference(result, expected_daily, expected_category)


def assert_reference(result: dict[str, DateKpis], expected_daily: dict, expected_category: dict) -> None:
    assert list(result) == DATES
    got_daily = {
        d: (
            k.order.total_orders,
            k.order.total_revenue,
            k.order.total_items_sold,
            k.order.return_rate,
            k.order.unique_customers,
            k.order.returned_orders,
        )
        for d, k in result.items()
        if k.order
    }
    got_category = {
        (c.category, d): (c.daily_revenue, c.avg_order_value, c.avg_return_rate, c.orders, c.returned_orders)
        for d, k in result.items()
        for c in k.categories
    }
    assert got_daily == expected_daily
    assert got_category == expected_category
    # The digits too: cents and six decimals, as the stores write them ("0.10", never "0.1").
    for k in result.values():
        for money in [c.daily_revenue for c in k.categories] + [c.avg_order_value for c in k.categories]:
            assert money.as_tuple().exponent == -2
        assert all(c.avg_return_rate.as_tuple().exponent == -6 for c in k.categories)
        assert k.order is None or (
            k.order.total_revenue.as_tuple().exponent,
            k.order.return_rate.as_tuple().exponent,
        ) == (-2, -6)
    for d, k in result.items():
        assert k.order_date == d
        assert (k.order is None) == (d not in expected_daily)
        assert [c.category for c in k.categories] == sorted({c for c, day in expected_category if day == d})
        assert all(c.order_date == d for c in k.categories)
        assert k.order is None or k.order.order_date == d


@settings(max_examples=examples(150), deadline=None)
@given(batches)
def test_sums_adjusted_batch_by_batch_equal_the_decimal_reference(all_batches: list[list[dict]]) -> None:
    """A process sums the current orders once, then adjusts the sums by each batch: the rows it
    replaces are lost, its own rows gained (orders change category, customer, price, return)."""
    key = ["order_date", "order_id"]
    current = current_orders(facts_of(all_batches[:1]), set()).collect()
    sums = kpi_sums(current.lazy())
    for n in range(2, len(all_batches) + 1):
        batch = facts_of([all_batches[n - 1]]).collect()
        lost = current.join(batch, on=key, how="semi")
        sums = adjusted(sums, lost.lazy(), batch.lazy())
        current = pl.concat([current.join(batch, on=key, how="anti"), batch])
        assert_reference(kpis_from_sums(sums, DATES), *reference(all_batches[:n]))
        # and the adjusted sums are those of a full pass, row for row
        full = kpi_sums(current.lazy())
        for mine, theirs in ((sums.categories, full.categories), (sums.customers, full.customers)):
            assert mine.sort(mine.columns).equals(theirs.sort(theirs.columns))
    assert_reference(kpis_from_sums(sums, DATES), *reference(all_batches))


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


def test_rounding_is_half_even_and_exact() -> None:
    """Ties go to the even neighbour, whatever the sign; anything past a tie goes up, however
    far the digits run."""
    pairs = [(125, 10), (135, 10), (-125, 10), (-135, 10), (1, 3), (2, 3), (5, 10), (15, 10), (0, 7)]
    pairs += [(10**37 + 5, 10), (10**37 + 15, 10), (10**37 + 6, 10), (2 * 10**37 - 1, 2 * 10**37)]
    got = [half_even(n, d) for n, d in pairs]
    whole = Decimal(1)
    assert got == [int(WIDE.divide(Decimal(n), Decimal(d)).quantize(whole, ROUND_HALF_EVEN, WIDE)) for n, d in pairs]
    assert got[:9] == [12, 14, -12, -14, 0, 1, 0, 2, 0]


WIDE = decimal.Context(prec=80)
MAX_ORDERS = 2**32 - 1
MAX_ROW = Decimal(10**9 - 1) * Decimal("999999999999.9999")  # the largest row the rules accept


def test_kpis_at_the_bounds_equal_the_decimal_reference() -> None:
    """The largest sums a date can reach (2**32 - 1 orders of the largest row) round as Python's
    `decimal` does, and carry their cents and six decimals as digits (what the stores write)."""
    revenue = WIDE.multiply(MAX_ROW, Decimal(MAX_ORDERS))
    sums = {
        "order_date": [dt.date(2025, 7, 6)] * 2,
        "category": ["Books", "Toys"],
        "revenue": [revenue, MAX_ROW + Decimal("0.0050")],
        "orders": [MAX_ORDERS, 3],
        "returned_orders": [MAX_ORDERS // 3, 1],
        "items": [MAX_ORDERS * (10**9 - 1), 3],
    }
    # Counts as the group-bys give them (`pl.len()` and sums of booleans are 32-bit unsigned):
    # multiplied as such, returned x 10**6 would wrap around past 4,294 returned orders.
    schema = {"order_date": pl.Date, "category": pl.String, "revenue": pl.Decimal(38, 4), "orders": pl.UInt32}
    by_category = pl.DataFrame(sums, schema={**schema, "returned_orders": pl.UInt32, "items": pl.Int64})
    (day,) = kpis_from_categories(by_category, {"2025-07-06": 2}, ["2025-07-06"]).values()
    cents, six = Decimal("0.01"), Decimal("0.000001")
    for kpi, exact, orders, returned in zip(
        day.categories, sums["revenue"], sums["orders"], sums["returned_orders"], strict=True
    ):
        assert kpi.daily_revenue == exact.quantize(cents, ROUND_HALF_EVEN, WIDE)
        assert kpi.avg_order_value == WIDE.divide(exact, Decimal(orders)).quantize(cents, ROUND_HALF_EVEN, WIDE)
        assert kpi.avg_return_rate == WIDE.divide(Decimal(returned), Decimal(orders)).quantize(six, ROUND_HALF_EVEN)
    assert day.order is not None
    assert day.order.total_revenue == WIDE.add(revenue, sums["revenue"][1]).quantize(cents, ROUND_HALF_EVEN, WIDE)
    assert day.order.total_items_sold == MAX_ORDERS * (10**9 - 1) + 3
    assert (day.order.total_orders, day.order.returned_orders) == (MAX_ORDERS + 3, MAX_ORDERS // 3 + 1)
    amounts = [day.order.total_revenue, *(k.daily_revenue for k in day.categories)]
    amounts += [k.avg_order_value for k in day.categories]
    assert {a.as_tuple().exponent for a in amounts} == {-2}
    rates = [day.order.return_rate, *(k.avg_return_rate for k in day.categories)]
    assert {r.as_tuple().exponent for r in rates} == {-6}
    assert day.categories[1].daily_revenue == MAX_ROW.quantize(cents) + cents  # 0.0050 past: a tie, to even


def facts(*rows: tuple[str, str, int, str, bool, int]) -> pl.LazyFrame:
    """Facts from (order id, date, quantity, price, returned, seq)."""
    return pl.LazyFrame(
        {
            "order_id": [r[0] for r in rows],
            "customer_id": ["C"] * len(rows),
            "category": ["Books"] * len(rows),
            "product_id": ["P"] * len(rows),
            "quantity": [r[2] for r in rows],
            "unit_price": [Decimal(r[3]) for r in rows],
            "returned": [r[4] for r in rows],
            "order_date": [dt.date.fromisoformat(r[1]) for r in rows],
            "seq": [r[5] for r in rows],
        },
        schema={**FACT_SCHEMA, "seq": pl.Int64()},
    )


def test_the_latest_batch_wins_whatever_order_the_facts_arrive_in() -> None:
    day = "2025-07-06"
    rows = [("O1", day, 1, "10.00", False, 1), ("O1", day, 3, "2.00", True, 3), ("O1", day, 2, "5.00", False, 2)]
    for arrival in (rows, rows[::-1], [rows[1], rows[0], rows[2]]):
        (current,) = current_orders(facts(*arrival), {day}).collect().iter_rows(named=True)
        assert (current["quantity"], current["returned"], current["seq"]) == (3, True, 3)
        kpi = compute_kpis(current_orders(facts(*arrival), {day}), [day])[day].order
        assert kpi is not None
        assert (kpi.total_orders, kpi.total_revenue, kpi.returned_orders) == (1, Decimal("6.00"), 1)


def test_dates_touched_by_one_batch_are_taken_as_they_are() -> None:
    """Only the dates listed as shared are de-duplicated; the others keep every row."""
    rows = [("O1", "2025-07-06", 1, "1.00", False, 1), ("O1", "2025-07-07", 1, "2.00", False, 1)]
    shared = [("O2", "2025-07-08", 1, "3.00", False, 1), ("O2", "2025-07-08", 1, "4.00", False, 2)]
    current = current_orders(facts(*rows, *shared), {"2025-07-08"}).collect()
    assert sorted(current["unit_price"].to_list()) == [Decimal("1.00"), Decimal("2.00"), Decimal("4.00")]
    assert current_orders(facts(*rows), set()).collect().height == 2


def test_a_date_with_no_orders_left_comes_back_empty() -> None:
    result = compute_kpis(facts(("O1", "2025-07-06", 1, "1.00", False, 1)), ["2025-07-05", "2025-07-06"])
    assert list(result) == ["2025-07-05", "2025-07-06"]
    assert result["2025-07-05"] == DateKpis("2025-07-05", None, ())
    assert result["2025-07-06"].order is not None
    assert compute_kpis(facts(("O1", "2025-07-06", 1, "1.00", False, 1)).clear(), ["2025-07-06"]) == {
        "2025-07-06": DateKpis("2025-07-06", None, ())
    }


def test_distinct_customers_in_several_queries_count_every_date_once() -> None:
    """Dates before 1970 (negative day numbers) and far apart land in exactly one query."""
    days = [dt.date(1, 1, 1), dt.date(1969, 12, 29), dt.date(1970, 1, 1), dt.date(2025, 7, 6), dt.date(9999, 12, 31)]
    rows = pl.LazyFrame(
        {
            "order_date": [d for d in days for _ in range(3)],
            "customer_id": [c for i in range(len(days)) for c in ["C1", "C1", f"C{i + 2}"]],
        }
    )
    expected = {d.isoformat(): 2 for d in days}
    for queries in range(1, 7):
        assert unique_customers(rows, queries) == expected


def test_customer_queries_grow_with_the_rows() -> None:
    assert [customer_queries(n) for n in (0, 1, CUSTOMER_QUERY_ROWS, CUSTOMER_QUERY_ROWS + 1)] == [1, 1, 1, 2]
    assert customer_queries(15_000_000) == -(-15_000_000 // CUSTOMER_QUERY_ROWS)
