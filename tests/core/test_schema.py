"""The KPI dataclasses are the one schema: a field added to a copy of it reaches both stores, the
command line's columns, the API's JSON and the CSV export without another edit."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from orderpipe.adapters.dynamodb import TableNames
from orderpipe.adapters.dynamodb_kpis import DynamoKpiStore
from orderpipe.adapters.sqlite import SCHEMA, SqliteDatabase, SqliteKpiStore, SqliteLedger, kpi_ddl
from orderpipe.core.kpis import KPIS, CategoryKpi, DateKpis, OrderKpi
from orderpipe.core.schema import MONEY, KpiSchema, columns, kpi
from orderpipe.output import render_kpis
from orderpipe.ports import KpiStore

DATE = "2025-07-06"


@dataclass(frozen=True, slots=True)
class WiderOrderKpi(OrderKpi):
    """The order-level KPIs plus one more: the largest order of the day."""

    largest_order: Decimal = field(metadata=kpi(MONEY, "largest"))


WIDER = KpiSchema(WiderOrderKpi, CategoryKpi)


def wider_day() -> DateKpis:
    order = WiderOrderKpi(DATE, 2, Decimal("30.00"), 3, Decimal("0.500000"), 2, 1, Decimal("20.05"))
    category = CategoryKpi("Books", DATE, Decimal("30.00"), Decimal("15.00"), Decimal("0.500000"), 2, 1)
    return DateKpis(DATE, order, (category,))


@pytest.fixture(params=["sqlite", "dynamodb"])
def wider_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KpiStore]:
    if request.param == "sqlite":
        db = SqliteDatabase(tmp_path / "kpis.db", WIDER)
        yield SqliteKpiStore(db)
        db.close()
    else:
        import boto3

        env = request.getfixturevalue("aws_env")
        names = TableNames(
            env["ORDERPIPE_AWS_LEDGER_TABLE"], env["ORDERPIPE_AWS_CATEGORY_TABLE"], env["ORDERPIPE_AWS_ORDER_TABLE"]
        )
        yield DynamoKpiStore(names, boto3.client("dynamodb"), WIDER)


def test_the_schema_is_read_from_the_dataclasses() -> None:
    assert [c.name for c in KPIS.order_columns] == [
        "order_date",
        "total_orders",
        "total_revenue",
        "total_items_sold",
        "return_rate",
        "unique_customers",
        "returned_orders",
    ]
    assert [c.name for c in columns(WiderOrderKpi)][-1] == "largest_order"
    assert SCHEMA.endswith(kpi_ddl(KPIS))


def test_an_added_field_is_stored_and_read_back(wider_store: KpiStore) -> None:
    assert wider_store.write({DATE: (1, wider_day())}) == []
    [row] = wider_store.daily(None, None)
    assert row["largest_order"] == Decimal("20.05")
    assert str(row["largest_order"]) == "20.05"
    assert row["total_revenue"] == Decimal("30.00")
    [category] = wider_store.category(None, None, None)
    assert category["avg_order_value"] == Decimal("15.00")


def test_an_added_field_reaches_the_command_line_columns_and_csv() -> None:
    rows = [{"order_date": DATE, "total_orders": 2, "total_revenue": Decimal("30.00"), "total_items_sold": 3,
             "return_rate": Decimal("0.500000"), "unique_customers": 2, "returned_orders": 1,
             "largest_order": Decimal("20.05")}]  # fmt: skip
    table = render_kpis(rows, WIDER.order_columns, "table", wide=False).splitlines()
    assert table[0].split() == ["date", "orders", "revenue", "items", "return_rate", "customers", "largest"]
    assert table[2].split()[-1] == "20.05"
    assert "returned_orders" not in table[0]  # a supporting count stays out of the default table
    csv = render_kpis(rows, WIDER.order_columns, "csv", wide=False).splitlines()
    assert csv[0].endswith(",returned_orders,largest_order") and csv[1].endswith(",1,20.05")  # every field


def test_a_home_written_before_a_field_was_added_is_rebuilt(tmp_path: Path) -> None:
    """The stored KPI tables lack the new column: they are dropped and every batch is marked
    unfinished, so start-up recovery recomputes them with the new field."""
    path = tmp_path / "kpis.db"
    old = SqliteDatabase(path)
    SqliteLedger(old).commit("b" * 64, "a.csv", 1, {DATE: [0]})
    SqliteLedger(old).mark_done("b" * 64)
    SqliteKpiStore(old).write({DATE: (1, DateKpis(DATE, wider_day().order, ()))})
    old.close()
    new = SqliteDatabase(path, WIDER)
    assert [r["order_date"] for r in SqliteKpiStore(new).daily(None, None)] == []
    assert [b.batch_id for b in SqliteLedger(new).unfinished()] == ["b" * 64]
    names = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(order_kpis)")]
    assert names[-1] == "largest_order"
