"""Line-grain KPI maths (`core/lines.py`) against a `decimal` reference written from the
definitions, and against the order grain (`core/kpis.py`) when every order is one line."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from orderpipe.core.kpis import compute_kpis, current_orders
from orderpipe.core.lines import compute_line_kpis, current_lines
from orderpipe.core.screen import FACT_SCHEMA
from tests.conftest import examples
from tests.core.test_kpis import DATES, assert_reference, batches, facts_of

CATEGORIES = ["Electronics", "Books", "Toys"]
CENTS, SIX = Decimal("0.01"), Decimal("0.000001")


@st.composite
def order_lines(draw: st.DrawFn) -> list[dict]:
    """One order's lines: its own fields on each, a category, a quantity, a price and a returned
    flag per line (categories may repeat within an order)."""
    order = {
        "order_id": draw(st.sampled_from([f"O{i}" for i in range(6)])),
        "customer_id": draw(st.sampled_from(["C1", "C2", "C3"])),
        "order_date": draw(st.sampled_from(DATES)),
    }
    return [
        {
            **order,
            "category": draw(st.sampled_from(CATEGORIES)),
            "product_id": f"P{n}",
            "quantity": draw(st.integers(1, 10_000)),
            "unit_price": draw(st.decimals(Decimal("0.0001"), Decimal("99999999.9999"), places=4)),
            "returned": draw(st.booleans()),
        }
        for n in range(draw(st.integers(1, 4)))
    ]


# A batch: whole orders, one version of each (date, order id), its lines in any order.
line_batches = st.lists(
    st.lists(order_lines(), max_size=8)
    .map(lambda orders: {(o[0]["order_date"], o[0]["order_id"]): o for o in orders})
    .flatmap(lambda orders: st.permutations([line for o in orders.values() for line in o])),
    min_size=1,
    max_size=4,
)


def line_reference(all_batches: list[list[dict]]) -> tuple[dict, dict]:
    """A later batch replaces an order's lines whole; an order counts once per day and once in
    each category it has lines in, returned there when one of its lines there is."""
    current: dict[tuple[str, str], list[dict]] = {}
    for batch in all_batches:
        named: dict[tuple[str, str], list[dict]] = {}
        for line in batch:
            named.setdefault((line["order_date"], line["order_id"]), []).append(line)
        current.update(named)
    daily, category = {}, {}
    for day in {d for d, _ in current}:
        orders = [lines for (d, _), lines in current.items() if d == day]
        revenue = sum((x["quantity"] * x["unit_price"] for o in orders for x in o), Decimal(0))
        back = sum(any(x["returned"] for x in o) for o in orders)
        daily[day] = (
            len(orders),
            revenue.quantize(CENTS, ROUND_HALF_EVEN),
            sum(x["quantity"] for o in orders for x in o),
            (Decimal(back) / len(orders)).quantize(SIX, ROUND_HALF_EVEN),
            len({o[0]["customer_id"] for o in orders}),
            back,
        )
        for name in {x["category"] for o in orders for x in o}:
            mine = [[x for x in o if x["category"] == name] for o in orders]
            mine = [o for o in mine if o]
            revenue = sum((x["quantity"] * x["unit_price"] for o in mine for x in o), Decimal(0))
            back = sum(any(x["returned"] for x in o) for o in mine)
            category[(name, day)] = (
                revenue.quantize(CENTS, ROUND_HALF_EVEN),
                (revenue / len(mine)).quantize(CENTS, ROUND_HALF_EVEN),
                (Decimal(back) / len(mine)).quantize(SIX, ROUND_HALF_EVEN),
                len(mine),
                back,
            )
    return daily, category


def shared_dates(all_batches: list[list[dict]]) -> set[str]:
    seen: dict[str, set[int]] = {}
    for n, batch in enumerate(all_batches):
        for row in batch:
            seen.setdefault(row["order_date"], set()).add(n)
    return {d for d, batches_of_date in seen.items() if len(batches_of_date) > 1}


@settings(max_examples=examples(150), deadline=None)
@given(line_batches, st.integers(1, 8))
def test_line_kpis_equal_the_decimal_reference(all_batches: list[list[dict]], rows_per_slice: int) -> None:
    """Whatever slices of dates the lines are read in (a date with more lines than two slices
    is read streaming)."""
    lines = current_lines(facts_of(all_batches), shared_dates(all_batches))
    result = compute_line_kpis(lines, DATES, rows_per_slice)
    assert_reference(result, *line_reference(all_batches))


@settings(max_examples=examples(100), deadline=None)
@given(batches, st.integers(1, 3), st.integers(1, 8))
def test_one_line_orders_give_the_order_grain_kpis(
    all_batches: list[list[dict]], customer_queries: int, rows_per_slice: int
) -> None:
    """The two grains' queries are one definition: with one line per order they agree."""
    facts, shared = facts_of(all_batches), shared_dates(all_batches)
    by_line = compute_line_kpis(current_lines(facts, shared), DATES, rows_per_slice)
    assert by_line == compute_kpis(current_orders(facts, shared), DATES, customer_queries)


def test_no_lines_give_no_kpis() -> None:
    empty = pl.LazyFrame(schema={**FACT_SCHEMA, "seq": pl.Int64()})
    assert compute_line_kpis(empty, ["2025-07-06"]) == compute_kpis(empty, ["2025-07-06"])
