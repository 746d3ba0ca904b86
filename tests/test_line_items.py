"""Line-item files end to end (folder + SQLite, and S3 + DynamoDB on moto): KPIs against a
small reference written here with `decimal`, and the same KPIs under both grains for files
whose order ids are unique."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from orderpipe.workflow import Pipeline

from .conftest import HEADER, examples, snapshot

LINE = {"ORDERPIPE_INPUT_GRAIN": "line"}
CATS = ["Books", "Home", "Toys"]
DAYS = ["2025-07-06", "2025-07-07"]


@dataclass(frozen=True)
class Line:
    order_id: str
    customer: str
    day: str
    category: str
    product: str
    quantity: int
    price: Decimal
    returned: bool

    def csv(self) -> str:
        flag = "true" if self.returned else "false"
        values = [self.order_id, self.customer, self.day, self.category, self.product, str(self.quantity)]
        return ",".join([*values, str(self.price), flag])


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def ratio(a: int, b: int) -> Decimal:
    return (Decimal(a) / Decimal(b)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)


def reference(batches: list[list[Line]]) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The KPIs straight from the definitions: a later batch replaces an order's lines whole."""
    current: dict[tuple[str, str], list[Line]] = {}
    for batch in batches:
        for key, group in itertools.groupby(
            sorted(batch, key=lambda x: (x.day, x.order_id)), lambda x: (x.day, x.order_id)
        ):
            current[key] = list(group)
    daily, category = [], []
    for day in sorted({d for d, _ in current}):
        orders = {o: lines for (d, o), lines in current.items() if d == day}
        revenue = sum((x.quantity * x.price for ls in orders.values() for x in ls), Decimal(0))
        returned = sum(any(x.returned for x in ls) for ls in orders.values())
        daily.append(
            {
                "order_date": day,
                "total_orders": len(orders),
                "total_revenue": cents(revenue),
                "total_items_sold": sum(x.quantity for ls in orders.values() for x in ls),
                "return_rate": ratio(returned, len(orders)),
                "unique_customers": len({ls[0].customer for ls in orders.values()}),
                "returned_orders": returned,
            }
        )
        for cat in sorted({x.category for ls in orders.values() for x in ls}):
            mine = {o: [x for x in ls if x.category == cat] for o, ls in orders.items()}
            mine = {o: ls for o, ls in mine.items() if ls}
            cat_revenue = sum((x.quantity * x.price for ls in mine.values() for x in ls), Decimal(0))
            cat_returned = sum(any(x.returned for x in ls) for ls in mine.values())
            category.append(
                {
                    "category": cat,
                    "order_date": day,
                    "daily_revenue": cents(cat_revenue),
                    "avg_order_value": cents(cat_revenue / len(mine)),
                    "avg_return_rate": ratio(cat_returned, len(mine)),
                    "orders": len(mine),
                    "returned_orders": cat_returned,
                }
            )
    return daily, category


def comparable(kpis: tuple[list[dict[str, object]], list[dict[str, object]]]) -> tuple[list[dict[str, object]], ...]:
    daily, category = kpis
    keys_d = ("order_date", "total_orders", "total_revenue", "total_items_sold", "return_rate", "unique_customers")
    keys_c = ("category", "order_date", "daily_revenue", "avg_order_value", "avg_return_rate", "orders")
    return (
        sorted(({k: r[k] for k in keys_d} for r in daily), key=repr),
        sorted(({k: r[k] for k in keys_c} for r in category), key=repr),
    )


@st.composite
def line_batches(draw: st.DrawFn) -> list[list[Line]]:
    """Several files over a few orders: multi-category orders, partial returns, and corrections
    that add or drop lines (every file carries every line of the orders it names)."""
    batches = []
    for _ in range(draw(st.integers(1, 4))):
        lines = []
        for order in draw(st.sets(st.integers(1, 5), min_size=1, max_size=4)):
            day = draw(st.sampled_from(DAYS))
            customer = f"C{draw(st.integers(1, 3))}"
            for product in draw(st.sets(st.integers(1, 4), min_size=1, max_size=3)):
                lines.append(
                    Line(
                        f"O{order}",
                        customer,
                        day,
                        draw(st.sampled_from(CATS)),
                        f"P{product}",
                        draw(st.integers(1, 5)),
                        draw(st.sampled_from([Decimal("0.01"), Decimal("19.99"), Decimal("1.005"), Decimal("7")])),
                        draw(st.booleans()),
                    )
                )
        batches.append(draw(st.permutations(lines)))
    return batches


def run_batches(pipeline: Pipeline, folder: Path, batches: list[list[Line]], header: str = HEADER) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n, batch in enumerate(batches):
        path = folder / f"batch-{n}.csv"
        path.write_text("\n".join([header, *(x.csv() for x in batch)]) + "\n")
        outcome = pipeline.process(pipeline.submit(path))
        assert outcome.status in ("accepted", "duplicate"), outcome.message


@settings(
    max_examples=examples(15),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=line_batches())
def test_line_items_match_the_decimal_reference(
    batches: list[list[Line]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("home")
    pipeline = open_pipeline(load_settings(home, environ=LINE | {"ORDERPIPE_CATEGORIES": ",".join(CATS)}))
    run_batches(pipeline, home / "files", batches)
    assert comparable(snapshot(pipeline)) == comparable(reference(batches))
    pipeline.compact_after = 1  # compaction keeps every line of the current orders
    pipeline.compact(DAYS)
    pipeline.recompute(DAYS)
    assert comparable(snapshot(pipeline)) == comparable(reference(batches))


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=line_batches())
def test_unique_order_ids_give_the_same_kpis_under_both_grains(
    batches: list[list[Line]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    unique = [list({x.order_id: x for x in batch}.values()) for batch in batches]  # one line per order
    cats = {"ORDERPIPE_CATEGORIES": ",".join(CATS)}
    by_order = open_pipeline(load_settings(tmp_path_factory.mktemp("o"), environ=cats))
    by_line = open_pipeline(load_settings(tmp_path_factory.mktemp("l"), environ=cats | LINE))
    run_batches(by_order, by_order.scratch.parent.parent / "files", unique)
    run_batches(by_line, by_line.scratch.parent.parent / "files", unique)
    assert snapshot(by_order) == snapshot(by_line)


@pytest.fixture(params=["local", "aws"])
def line_pipeline(request: pytest.FixtureRequest, tmp_path: Path) -> Pipeline:
    """Line grain on both adapter sets: folder + SQLite, S3 + DynamoDB on moto."""
    env = request.getfixturevalue("aws_env") if request.param == "aws" else {}
    return open_pipeline(load_settings(tmp_path / "home", environ=env | LINE))


def test_a_correction_replaces_the_whole_order_on_both_backends(line_pipeline: Pipeline, tmp_path: Path) -> None:
    """An order of two categories, then a correction that drops a line and returns the other."""
    any_pipeline = line_pipeline
    first = [
        Line("O1", "C1", "2025-07-06", "Books", "P1", 2, Decimal("10.00"), False),
        Line("O1", "C1", "2025-07-06", "Home", "P2", 1, Decimal("5.50"), False),
        Line("O2", "C2", "2025-07-06", "Books", "P1", 1, Decimal("10.00"), True),
    ]
    fix = [Line("O1", "C1", "2025-07-06", "Home", "P2", 3, Decimal("5.50"), True)]
    run_batches(any_pipeline, tmp_path / "files", [first])
    daily, category = snapshot(any_pipeline)
    assert daily[0]["total_orders"] == 2 and daily[0]["total_revenue"] == Decimal("35.50")
    assert [(c["category"], c["orders"]) for c in category] == [("Books", 2), ("Home", 1)]
    run_batches(any_pipeline, tmp_path / "fix", [fix])
    assert comparable(snapshot(any_pipeline)) == comparable(reference([first, fix]))
    daily, category = snapshot(any_pipeline)
    assert daily[0]["total_revenue"] == Decimal("26.50") and daily[0]["return_rate"] == Decimal("1.000000")


def test_date_line_order_lands_on_the_next_utc_day(tmp_path: Path) -> None:
    """An order at 23:30 in UTC-5 counts on the next day in UTC."""
    env = {"ORDERPIPE_INPUT_COLUMNS_ORDER_TIMESTAMP": "created", "ORDERPIPE_INPUT_TIMEZONE": "UTC"}
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=env))
    path = tmp_path / "ts.csv"
    header = HEADER.replace("order_date", "created")
    path.write_text(f"{header}\nO1,C1,2025-12-31T23:30:00-05:00,Books,P1,1,10,false\n")
    outcome = pipeline.process(pipeline.submit(path))
    assert outcome.status == "accepted" and outcome.dates == ("2026-01-01",)
    assert [d["order_date"] for d in snapshot(pipeline)[0]] == ["2026-01-01"]
    assert dt.date.fromisoformat(outcome.dates[0]).year == 2026
