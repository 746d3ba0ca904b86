"""Values at the input bounds go through the whole workflow and come back exact, on both stores.

The validator accepts a quantity of 9 digits and a unit price of 12 integer digits and 4
decimals, so one row is worth almost 10^21 and a day is a sum of many such rows. Whatever is
accepted must be stored and read back to the cent (half-even), never overflow a column and
never leave a committed batch that later runs cannot finish.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from orderpipe.workflow import Pipeline
from tests.conftest import order, run_file, write

DATE = "2025-07-06"
MAX_QUANTITY = "9" * 9
MAX_PRICE = "9" * 12 + ".9999"
MIN_PRICE = "0.0001"
EXACT = decimal.Context(prec=80)

Row = tuple[str, str, str, str, bool]  # order id, category, quantity, unit price, returned


def rows_csv(rows: Sequence[Row], date: str = DATE) -> list[str]:
    return [
        order(oid, customer=f"C{i % 3}", date=date, category=cat, quantity=q, price=p, returned=str(r).lower())
        for i, (oid, cat, q, p, r) in enumerate(rows)
    ]


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN, context=EXACT)


def revenue_of(rows: Iterable[Row]) -> Decimal:
    """Sum of quantity * price with 80 digits: the default context (28) would round."""
    total = Decimal(0)
    for _, _, q, p, _ in rows:
        total = EXACT.add(total, EXACT.multiply(Decimal(q), Decimal(p)))
    return total


def reference(files: Sequence[Sequence[Row]]) -> tuple[dict[str, object], dict[str, dict[str, object]]]:
    """The KPIs of one date computed in plain Python decimals (the later file wins per order id)."""
    current: dict[str, Row] = {}
    for rows in files:
        current |= {row[0]: row for row in rows}
    total = revenue_of(current.values())
    daily = {
        "total_orders": len(current),
        "total_revenue": cents(total),
        "total_items_sold": sum(int(q) for _, _, q, _, _ in current.values()),
        "returned_orders": sum(r for *_, r in current.values()),
    }
    by_category: dict[str, dict[str, object]] = {}
    for cat in sorted({row[1] for row in current.values()}):
        mine = [row for row in current.values() if row[1] == cat]
        revenue = revenue_of(mine)
        by_category[cat] = {
            "daily_revenue": cents(revenue),
            "avg_order_value": cents(EXACT.divide(revenue, Decimal(len(mine)))),
            "orders": len(mine),
            "returned_orders": sum(r for *_, r in mine),
        }
    return daily, by_category


def assert_kpis(pipeline: Pipeline, files: Sequence[Sequence[Row]], date: str = DATE) -> None:
    """Stored KPIs equal the reference exactly: same value and the same two decimals."""
    want_daily, want_categories = reference(files)
    [daily] = pipeline.kpis.daily(date, date)
    got_daily = {k: daily[k] for k in want_daily}
    assert got_daily == want_daily
    assert str(daily["total_revenue"]) == str(want_daily["total_revenue"])
    got_categories = {
        str(c["category"]): {k: c[k] for k in want_categories[str(c["category"])]}
        for c in pipeline.kpis.category(None, date, date)
    }
    assert got_categories == want_categories
    for c in pipeline.kpis.category(None, date, date):
        assert isinstance(c["daily_revenue"], Decimal) and isinstance(c["avg_order_value"], Decimal)
        assert str(c["daily_revenue"]) == str(want_categories[str(c["category"])]["daily_revenue"])


def run_rows(pipeline: Pipeline, path: Path, rows: Sequence[Row], date: str = DATE) -> None:
    outcome = run_file(pipeline, write(path, rows_csv(rows, date)))
    assert outcome.status == "accepted", outcome.message


def max_rows(prefix: str, count: int, category: str = "Electronics") -> list[Row]:
    return [(f"{prefix}{i}", category, MAX_QUANTITY, MAX_PRICE, i % 2 == 0) for i in range(count)]


def test_max_rows_over_two_files_are_exact(any_pipeline: Pipeline, tmp_path: Path) -> None:
    first = [*max_rows("A", 4), ("A9", "Books", MAX_QUANTITY, MIN_PRICE, False)]
    # The second file corrects A0 (now not returned) and adds more maximal rows in two categories.
    second = [("A0", "Electronics", MAX_QUANTITY, MAX_PRICE, False), *max_rows("B", 3, "Books"), *max_rows("C", 2)]
    run_rows(any_pipeline, tmp_path / "first.csv", first)
    run_rows(any_pipeline, tmp_path / "second.csv", second)
    assert_kpis(any_pipeline, [first, second])
    assert any_pipeline.ledger.unfinished() == []


def test_a_day_total_beyond_28_digits_is_exact(any_pipeline: Pipeline, tmp_path: Path) -> None:
    """120,000 maximal rows make a day total of about 1.2 * 10^26: 29 digits with the cents,
    more than a default decimal context (28 digits) or 64-bit cents can hold."""
    first, second = max_rows("A", 60_000), max_rows("B", 60_000, "Books")
    run_rows(any_pipeline, tmp_path / "first.csv", first)
    run_rows(any_pipeline, tmp_path / "second.csv", second)
    assert_kpis(any_pipeline, [first, second])
    [daily] = any_pipeline.kpis.daily(None, None)
    assert len(str(daily["total_revenue"]).replace(".", "")) > 28


def test_runs_after_a_max_batch_still_work(any_pipeline: Pipeline, tmp_path: Path) -> None:
    first = max_rows("A", 5)
    run_rows(any_pipeline, tmp_path / "first.csv", first)
    assert any_pipeline.recover() == []  # what every later run does first
    later = [("A1", "Electronics", "1", "10.00", False), ("D1", "Toys", "2", MIN_PRICE, False)]
    run_rows(any_pipeline, tmp_path / "later.csv", later)
    run_rows(any_pipeline, tmp_path / "other-day.csv", later, "2025-07-07")
    assert any_pipeline.recover() == []
    assert_kpis(any_pipeline, [first, later])
    assert_kpis(any_pipeline, [later], "2025-07-07")
    assert any_pipeline.ledger.unfinished() == []


def test_the_smallest_prices_round_half_even_to_the_cent(any_pipeline: Pipeline, tmp_path: Path) -> None:
    """0.0001 at quantity 1, summed beside a maximal row: every 0.0001 counts, exactly."""
    tiny = [(f"T{i}", "Books", "1", MIN_PRICE, False) for i in range(149)]
    # 49 tiny rows + .0001 of the max row = .0050: half-even keeps the even cent (down);
    # 149 tiny rows + .0001 = .0150: half-even goes up to .02.
    days = {"2025-07-01": tiny[:49], "2025-07-02": tiny}
    for day, rows in days.items():
        run_rows(any_pipeline, tmp_path / f"{day}.csv", [*max_rows("M", 1), *rows], day)
    # Only tiny rows: 5 * 0.0001 = 0.0005 is 0.00; the average 0.0001 is 0.00.
    run_rows(any_pipeline, tmp_path / "tiny.csv", tiny[:5], "2025-07-03")
    for day, rows in days.items():
        assert_kpis(any_pipeline, [[*max_rows("M", 1), *rows]], day)
    assert_kpis(any_pipeline, [tiny[:5]], "2025-07-03")
    totals = [d["total_revenue"] for d in any_pipeline.kpis.daily(None, None)]
    assert [str(t)[-5:] for t in totals] == ["00.00", "00.02", "0.00"]
    [books] = any_pipeline.kpis.category("Books", "2025-07-03", "2025-07-03")
    assert str(books["daily_revenue"]) == "0.00" and str(books["avg_order_value"]) == "0.00"
