"""The KPI engine on its own: the KPIs of dates recomputed from committed facts, over a real
folder store and SQLite ledger and KPI store (no workflow around it). Its three paths (sums,
selected current orders, known orders advanced by newer entries) give the same KPIs."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from orderpipe import kpi_engine
from orderpipe.adapters.folder import FolderStore
from orderpipe.adapters.sqlite import SqliteDatabase, SqliteKpiStore, SqliteLedger
from orderpipe.catalogs import CATALOG, catalog_key, product_index
from orderpipe.config import load_settings
from orderpipe.core.shape import SEED_SHAPE
from orderpipe.errors import InfrastructureError
from orderpipe.facts import fact_key, publish_facts
from orderpipe.ingest import inspect_file
from orderpipe.kpi_engine import KpiEngine, versioned
from orderpipe.ports import BatchRecord, FactEntry, KpiStore, Ledger, ObjectStore
from tests.conftest import order, write

PREFIX = "facts/daily/"  # not the default: every key must be read under the engine's own prefix
DATES = ["2025-07-01", "2025-07-02", "2025-07-03"]
CATEGORIES = ["Books", "Toys", "Home", "Electronics"]


class Home:
    """A store and a ledger that batches are committed to, and KPI stores to compute into."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True)
        self.root = root
        self.store: ObjectStore = FolderStore(root)
        self.ledger: Ledger = SqliteLedger(SqliteDatabase(root / "orderpipe.db"))
        self.scratch = root / "scratch"
        self.scratch.mkdir()

    def commit(self, path: Path) -> BatchRecord:
        inspection = inspect_file(path, path.name, CATEGORIES, self.scratch)
        assert inspection.facts is not None
        parts = publish_facts(inspection.facts, inspection.batch_id, self.store, prefix=PREFIX)
        return self.ledger.commit(inspection.batch_id, path.name, inspection.report.rows, parts)

    def kpi_store(self, name: str) -> KpiStore:
        return SqliteKpiStore(SqliteDatabase(self.root / f"{name}.db"))

    def engine(self, kpis: KpiStore) -> KpiEngine:
        return KpiEngine(self.store, self.ledger, kpis, SEED_SHAPE, PREFIX)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


def stored(kpis: KpiStore) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    return kpis.daily(None, None), kpis.category(None, None, None)


def test_the_kpis_of_a_date_are_those_of_its_current_orders(home: Home, tmp_path: Path) -> None:
    """The latest batch wins per order id; a category with no orders left loses its row."""
    home.commit(write(tmp_path / "a.csv", [order("O1", category="Toys"), order("O2", category="Books", price="3.00")]))
    home.commit(write(tmp_path / "b.csv", [order("O1", category="Books", price="5.00", returned="true")]))
    kpis = home.kpi_store("kpis")
    assert home.engine(kpis).recompute(["2025-07-06"]) == []
    ((day,), categories) = stored(kpis)
    assert (day["total_orders"], str(day["total_revenue"]), day["return_rate"]) == (2, "8.00", 0.5)
    assert [(c["category"], str(c["daily_revenue"])) for c in categories] == [("Books", "8.00")]


def test_a_date_no_batch_touches_writes_nothing_and_the_catalog_key_is_no_date(home: Home) -> None:
    kpis = home.kpi_store("kpis")
    assert home.engine(kpis).recompute(["catalog"]) == []
    assert stored(kpis) == ([], [])


def test_the_three_paths_to_a_dates_kpis_agree(home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After every batch (new orders and corrections over 3 dates): the sums a process keeps and
    adjusts, the current orders selected afresh, and the streaming queries (too many rows to
    select in memory) store the same KPIs."""
    rng = random.Random(3)
    sums, fresh, streamed = home.kpi_store("sums"), home.kpi_store("fresh"), home.kpi_store("streamed")
    kept = home.engine(sums)  # keeps what it selects between batches
    for n in range(12):
        rows = [
            order(
                f"O{oid}",
                f"C{rng.randrange(5)}",
                DATES[oid % 3],
                rng.choice(CATEGORIES[:3]),
                "P",
                str(rng.randint(1, 4)),
                f"{rng.randint(1, 9999) / 100:.2f}",
                rng.choice(["true", "false"]),
            )
            for oid in rng.sample(range(30), rng.randint(1, 8))
        ]
        batch = home.commit(write(tmp_path / f"b{n:02d}.csv", rows))
        kept.recompute(list(batch.dates))
        home.engine(fresh).recompute(DATES)
        with monkeypatch.context() as patched:
            patched.setattr(kpi_engine, "CURRENT_IN_MEMORY_ROWS", 0)
            home.engine(streamed).recompute(DATES)
        assert stored(sums) == stored(fresh) == stored(streamed), n
    assert kept.known.keys() == set(DATES)
    assert all(state.sums is not None for state in kept.known.values())  # order grain: sums kept


def test_known_orders_are_kept_up_to_known_rows_the_dates_used_longest_ago_going_first(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n, day in enumerate(DATES):
        home.commit(write(tmp_path / f"{n}.csv", [order(f"O{n}a", date=day), order(f"O{n}b", date=day)]))
    monkeypatch.setattr(kpi_engine, "KNOWN_ROWS", 4)
    engine = home.engine(home.kpi_store("kpis"))
    for day in DATES:
        engine.recompute([day])
    assert list(engine.known) == DATES[1:]  # 2 rows each: the first date went
    assert {d: s.upto for d, s in engine.known.items()} == {DATES[1]: 2, DATES[2]: 3}


def test_a_read_that_fails_while_the_entries_stay_the_same_is_a_real_failure(home: Home, tmp_path: Path) -> None:
    batch = home.commit(write(tmp_path / "a.csv", [order("O1")]))
    FolderStore(home.root).delete(fact_key("2025-07-06", batch.batch_id, 0, PREFIX))
    kpis = home.kpi_store("kpis")
    with pytest.raises((InfrastructureError, OSError, pl.exceptions.PolarsError)):
        home.engine(kpis).recompute(["2025-07-06"])
    assert stored(kpis) == ([], [])  # nothing written


def test_the_dates_a_batch_changes_are_its_own(home: Home, tmp_path: Path) -> None:
    batch = home.commit(write(tmp_path / "a.csv", [order("O1", date=DATES[0]), order("O2", date=DATES[2])]))
    assert home.engine(home.kpi_store("kpis")).dates_of(batch) == [DATES[0], DATES[2]]


def test_a_dates_version_is_the_highest_seq_read_for_it_the_catalogs_included() -> None:
    results: dict[str, Any] = {"d1": "KPIs of d1", "d2": "KPIs of d2"}  # passed through as they are
    read = {
        "d1": [FactEntry("d1", "a", 3, (0,)), FactEntry("d1", "b", 7, (0,))],
        "d2": [FactEntry("d2", "c", 2, (0,))],
    }
    assert versioned(read, results) == {"d1": (7, "KPIs of d1"), "d2": (2, "KPIs of d2")}
    read["catalog"] = [FactEntry("catalog", "p", 5, (0,))]  # read with them: it counts too
    assert versioned(read, results) == {"d1": (7, "KPIs of d1"), "d2": (5, "KPIs of d2")}


def test_with_a_catalog_a_lines_category_is_its_products_in_the_catalog_read(home: Home, tmp_path: Path) -> None:
    shape = load_settings(tmp_path / "settings", environ={"ORDERPIPE_INPUT_CATALOG": "true"}).shape

    def commit(name: str, text: str) -> BatchRecord:
        path = tmp_path / name
        path.write_text(text)
        inspection = inspect_file(path, name, CATEGORIES, home.scratch, shape=shape)
        if inspection.catalog is not None:
            home.store.put_file(inspection.catalog, catalog_key(inspection.batch_id, PREFIX))
            return home.ledger.commit(inspection.batch_id, name, inspection.report.rows, {CATALOG: [0]})
        assert inspection.facts is not None
        home.ledger.index_products(product_index(inspection.facts.paths))
        parts = publish_facts(inspection.facts, inspection.batch_id, home.store, prefix=PREFIX)
        return home.ledger.commit(inspection.batch_id, name, inspection.report.rows, parts)

    header = "order_id,customer_id,order_date,product_id,quantity,unit_price,returned\n"
    commit("o.csv", header + "O1,C1,2025-07-01,P1,1,10.00,false\nO2,C1,2025-07-02,P2,1,3.00,false\n")
    kpis = home.kpi_store("kpis")
    engine = KpiEngine(home.store, home.ledger, kpis, shape, PREFIX)
    catalog = commit("products.csv", "product_id,category\nP1,Toys\n")
    assert engine.dates_of(catalog) == ["2025-07-01"]  # where the products it changed sold
    assert engine.recompute(DATES[:2]) == []
    categories = [(c["order_date"], c["category"], str(c["daily_revenue"])) for c in stored(kpis)[1]]
    assert categories == [("2025-07-01", "Toys", "10.00"), ("2025-07-02", "Unknown", "3.00")]
