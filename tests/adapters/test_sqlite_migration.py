"""A home written before money became exact decimal text opens, migrates and recomputes its KPIs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orderpipe.adapters.sqlite import KPI_SCHEMA_VERSION, SqliteKpiStore
from orderpipe.bootstrap import DATABASE_FILE, open_pipeline, open_reader
from orderpipe.config import load_settings
from orderpipe.errors import OrderpipeError
from orderpipe.workflow import Pipeline
from tests.conftest import order, run_file, snapshot, write

# The schema as it was before the migration: money in INTEGER cents (64 bits), user_version 0.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, file TEXT NOT NULL, rows INTEGER NOT NULL,
    dates TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, committed_at TEXT NOT NULL, done_at TEXT);
CREATE TABLE IF NOT EXISTS batch_dates (
    order_date TEXT NOT NULL, batch_id TEXT NOT NULL, seq INTEGER NOT NULL, parts TEXT NOT NULL,
    PRIMARY KEY (order_date, batch_id));
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, batch_id TEXT NOT NULL, file TEXT NOT NULL, status TEXT NOT NULL,
    rows INTEGER NOT NULL, dates TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kpi_versions (order_date TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS order_kpis (
    order_date TEXT PRIMARY KEY, total_orders INTEGER NOT NULL, total_revenue_cents INTEGER NOT NULL,
    total_items_sold INTEGER NOT NULL, return_rate_ppm INTEGER NOT NULL, unique_customers INTEGER NOT NULL,
    returned_orders INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS category_kpis (
    category TEXT NOT NULL, order_date TEXT NOT NULL, daily_revenue_cents INTEGER NOT NULL,
    avg_order_value_cents INTEGER NOT NULL, avg_return_rate_ppm INTEGER NOT NULL, orders INTEGER NOT NULL,
    returned_orders INTEGER NOT NULL, PRIMARY KEY (category, order_date));
CREATE INDEX IF NOT EXISTS category_kpis_by_date ON category_kpis (order_date);
"""
OLD_BATCH_COLUMNS = "batch_id, seq, file, rows, dates, done, committed_at, done_at"
OLD_DATE_COLUMNS = "order_date, batch_id, seq, parts"


def close(pipeline: Pipeline) -> None:
    assert isinstance(pipeline.kpis, SqliteKpiStore)
    pipeline.kpis.db.close()


def make_old(path: Path) -> None:
    """Rewrite the database as the old code left it: old KPI tables holding stale values under
    high versions, the same ledger, every batch done, user_version 0."""
    with sqlite3.connect(path) as current:
        batches = current.execute(f"SELECT {OLD_BATCH_COLUMNS} FROM batches").fetchall()
        dates = current.execute(f"SELECT {OLD_DATE_COLUMNS} FROM batch_dates").fetchall()
    current.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    old.executemany(f"INSERT INTO batches ({OLD_BATCH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batches)
    old.executemany(f"INSERT INTO batch_dates ({OLD_DATE_COLUMNS}) VALUES (?, ?, ?, ?)", dates)
    for day in {d[0] for d in dates}:
        old.execute("INSERT INTO kpi_versions VALUES (?, 99)", (day,))
        old.execute("INSERT INTO order_kpis VALUES (?, 1, 1, 1, 0, 1, 0)", (day,))
        old.execute("INSERT INTO category_kpis VALUES ('Stale', ?, 1, 1, 0, 1, 0)", (day,))
    old.commit()
    old.close()


def test_an_old_home_is_migrated_and_recomputed(home: Path, tmp_path: Path) -> None:
    settings = load_settings(home, environ={})
    pipeline = open_pipeline(settings)
    run_file(pipeline, write(tmp_path / "a.csv", [order("O1", price="10.05"), order("O2", date="2025-07-07")]))
    big = order("O3", category="Books", quantity="9" * 9, price="9" * 12 + ".9999", returned="true")
    run_file(pipeline, write(tmp_path / "b.csv", [order("O1", price="12.34"), big]))
    expected = snapshot(pipeline)
    batch_ids = sorted(r.batch_id for r in pipeline.ledger.runs())
    close(pipeline)
    make_old(home / DATABASE_FILE)

    migrated = open_pipeline(settings)
    with sqlite3.connect(home / DATABASE_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == KPI_SCHEMA_VERSION
        columns = {row[1]: row[2] for row in db.execute("PRAGMA table_info(order_kpis)")}
    assert columns["total_revenue"] == "TEXT" and "total_revenue_cents" not in columns
    assert snapshot(migrated) == ([], [])  # stale KPIs and their versions are gone
    assert sorted(b.batch_id for b in migrated.ledger.unfinished()) == batch_ids

    assert sorted(migrated.recover()) == batch_ids  # what `orderpipe run` and `watch` do first
    assert snapshot(migrated) == expected
    assert migrated.ledger.unfinished() == []
    close(migrated)

    again = open_pipeline(settings)  # migrated once: opening again redoes nothing
    assert again.ledger.unfinished() == []
    assert snapshot(again) == expected


def test_reading_an_old_home_before_its_migration_says_what_to_do(home: Path, tmp_path: Path) -> None:
    """Read commands open the home read-only, so they cannot migrate it: a clear error, never
    a missing-column crash or old cents shown as money."""
    settings = load_settings(home, environ={})
    pipeline = open_pipeline(settings)
    run_file(pipeline, write(tmp_path / "a.csv", [order("O1")]))
    close(pipeline)
    make_old(home / DATABASE_FILE)
    reader = open_reader(settings)
    with pytest.raises(OrderpipeError, match="older orderpipe"):
        reader.kpis.daily(None, None)
    with pytest.raises(OrderpipeError, match="older orderpipe"):
        reader.kpis.category(None, None, None)
