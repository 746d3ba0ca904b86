"""SQLite as the ledger and the KPI store: the embedded default.

WAL mode lets readers (the CLI) run beside writers (workers); every state change is one
`BEGIN IMMEDIATE` transaction, so a kill -9 leaves either all of it or none.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from orderpipe.core.kpis import DateKpis
from orderpipe.errors import InfrastructureError, OrderpipeError
from orderpipe.faults import checkpoint
from orderpipe.ports import BatchRecord, FactEntry, RunRecord

__all__ = ["SqliteDatabase", "SqliteKpiStore", "SqliteLedger"]

SCHEMA = """
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
    order_date TEXT PRIMARY KEY, total_orders INTEGER NOT NULL, total_revenue TEXT NOT NULL,
    total_items_sold INTEGER NOT NULL, return_rate_ppm INTEGER NOT NULL, unique_customers INTEGER NOT NULL,
    returned_orders INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS category_kpis (
    category TEXT NOT NULL, order_date TEXT NOT NULL, daily_revenue TEXT NOT NULL,
    avg_order_value TEXT NOT NULL, avg_return_rate_ppm INTEGER NOT NULL, orders INTEGER NOT NULL,
    returned_orders INTEGER NOT NULL, PRIMARY KEY (category, order_date));
CREATE INDEX IF NOT EXISTS category_kpis_by_date ON category_kpis (order_date);
"""
# Money is exact decimal TEXT (a TEXT-affinity column keeps the string as written; INTEGER cents
# overflow 64 bits far inside the input bounds). Version 1 replaced the old cents columns: the
# KPI tables are rebuilt and every batch recomputed (see SqliteDatabase._migrate).
KPI_SCHEMA_VERSION = 1
KPI_TABLES = ("kpi_versions", "order_kpis", "category_kpis")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _text(value: Decimal) -> str:
    """Plain digits, never exponent notation: the stored string is the exact amount."""
    return format(value, "f")


def _ppm(value: Decimal) -> int:
    return int(value.scaleb(6))


def _money(text: str) -> Decimal:
    return Decimal(text)


def _fraction(ppm: int) -> Decimal:
    return Decimal(ppm).scaleb(-6).quantize(Decimal("0.000001"))


class SqliteDatabase:
    """One connection per instance: give each worker thread its own."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
            self.connection.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise InfrastructureError(f"cannot open the database {path}: {exc}") from exc

    def _migrate(self) -> None:
        """Bring an older home's KPI tables to KPI_SCHEMA_VERSION, in one transaction.

        KPIs are derived data: rather than convert old rows, drop the KPI tables (and their
        versions) and mark every batch unfinished, so start-up recovery recomputes every date
        from the facts. A new database takes the same path with nothing to drop or redo.
        """
        db = self.connection
        if db.execute("PRAGMA user_version").fetchone()[0] >= KPI_SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] < KPI_SCHEMA_VERSION:  # not migrated meanwhile
                for table in KPI_TABLES:
                    db.execute(f"DROP TABLE IF EXISTS {table}")
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("UPDATE batches SET done = 0 WHERE done = 1")  # failed ones wait for a replay
                db.execute(f"PRAGMA user_version = {KPI_SCHEMA_VERSION}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.connection
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise InfrastructureError(f"database error: {exc}") from exc

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        try:
            cursor = self.connection.execute(sql, params)
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()
        except sqlite3.Error as exc:
            raise InfrastructureError(f"database error: {exc}") from exc

    def close(self) -> None:
        self.connection.close()


class SqliteLedger:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    @staticmethod
    def _batch(row: sqlite3.Row) -> BatchRecord:
        # done: 1 finished, 0 committed and in progress, -1 failed
        return BatchRecord(
            row["batch_id"],
            row["seq"],
            row["file"],
            row["rows"],
            tuple(json.loads(row["dates"])),
            row["done"] == 1,
            row["done"] == -1,
        )

    def get(self, batch_id: str) -> BatchRecord | None:
        rows = self.db.query("SELECT * FROM batches WHERE batch_id = ?", (batch_id,))
        return self._batch(rows[0]) if rows else None

    def commit(self, batch_id: str, file: str, rows: int, parts: Mapping[str, Sequence[int]]) -> BatchRecord:
        with self.db.transaction() as db:
            existing = db.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
            if existing is None:
                (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM batches").fetchone()
                dates = sorted(parts)
                db.execute(
                    "INSERT INTO batches (batch_id, seq, file, rows, dates, committed_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (batch_id, seq, file, rows, json.dumps(dates), _now()),
                )
                db.executemany(
                    "INSERT INTO batch_dates (order_date, batch_id, seq, parts) VALUES (?, ?, ?, ?)",
                    [(d, batch_id, seq, json.dumps(list(parts[d]))) for d in dates],
                )
                checkpoint("ledger-commit-inside")
        record = self.get(batch_id)
        assert record is not None
        return record

    def mark_done(self, batch_id: str) -> None:
        with self.db.transaction() as db:
            db.execute("UPDATE batches SET done = 1, done_at = ? WHERE batch_id = ?", (_now(), batch_id))

    def mark_failed(self, batch_id: str) -> None:
        with self.db.transaction() as db:
            db.execute("UPDATE batches SET done = -1 WHERE batch_id = ? AND done = 0", (batch_id,))

    def compact(self, order_date: str, covered: Sequence[FactEntry], merged: FactEntry) -> bool:
        ids = [e.batch_id for e in covered]
        marks = ",".join("?" * len(ids))
        with self.db.transaction() as db:
            (present,) = db.execute(
                f"SELECT COUNT(*) FROM batch_dates WHERE order_date = ? AND batch_id IN ({marks})", (order_date, *ids)
            ).fetchone()
            if present != len(ids):
                return False  # another process compacted these entries first
            db.execute(f"DELETE FROM batch_dates WHERE order_date = ? AND batch_id IN ({marks})", (order_date, *ids))
            db.execute(
                "INSERT INTO batch_dates (order_date, batch_id, seq, parts) VALUES (?, ?, ?, ?)",
                (order_date, merged.batch_id, merged.seq, json.dumps(list(merged.parts))),
            )
            checkpoint("compact-switch-inside")
        return True

    def failed(self) -> list[BatchRecord]:
        return [self._batch(r) for r in self.db.query("SELECT * FROM batches WHERE done = -1 ORDER BY seq")]

    def unfinished(self) -> list[BatchRecord]:
        return [self._batch(r) for r in self.db.query("SELECT * FROM batches WHERE done = 0 ORDER BY seq")]

    def fact_entries(self, dates: Sequence[str]) -> dict[str, list[FactEntry]]:
        entries: dict[str, list[FactEntry]] = {d: [] for d in dates}
        try:
            self.db.connection.execute("DROP TABLE IF EXISTS temp.wanted")
            self.db.connection.execute("CREATE TEMP TABLE wanted (order_date TEXT PRIMARY KEY)")
            self.db.connection.executemany("INSERT OR IGNORE INTO temp.wanted VALUES (?)", [(d,) for d in dates])
        except sqlite3.Error as exc:  # a busy or broken database is transient, never the batch's fault
            raise InfrastructureError(f"database error: {exc}") from exc
        rows = self.db.query(
            "SELECT b.* FROM batch_dates b JOIN temp.wanted w USING (order_date) ORDER BY b.order_date, b.seq"
        )
        for row in rows:
            entries[row["order_date"]].append(
                FactEntry(row["order_date"], row["batch_id"], row["seq"], tuple(json.loads(row["parts"])))
            )
        return entries

    def record_run(self, run: RunRecord) -> None:
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO runs (batch_id, file, status, rows, dates, started_at, finished_at, message)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.batch_id,
                    run.file,
                    run.status,
                    run.rows,
                    json.dumps(list(run.dates)),
                    run.started_at,
                    run.finished_at,
                    run.message,
                ),
            )

    def runs(self) -> list[RunRecord]:
        return [
            RunRecord(
                r["batch_id"],
                r["file"],
                r["status"],
                r["rows"],
                tuple(json.loads(r["dates"])),
                r["started_at"],
                r["finished_at"],
                r["message"],
                r["seq"] or 0,
            )
            for r in self.db.query(
                "SELECT runs.*, CASE WHEN runs.status = 'accepted' THEN batches.seq END AS seq"
                " FROM runs LEFT JOIN batches USING (batch_id) ORDER BY runs.id"
            )
        ]


class SqliteKpiStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    def write(self, kpis: Mapping[str, tuple[int, DateKpis]]) -> list[str]:
        skipped: list[str] = []
        with self.db.transaction() as db:
            for order_date, (version, date_kpis) in sorted(kpis.items()):
                row = db.execute("SELECT version FROM kpi_versions WHERE order_date = ?", (order_date,)).fetchone()
                if row is not None and row[0] > version:
                    skipped.append(order_date)
                    continue
                db.execute(
                    "INSERT OR REPLACE INTO kpi_versions VALUES (?, ?)",
                    (order_date, version),
                )
                db.execute("DELETE FROM category_kpis WHERE order_date = ?", (order_date,))
                db.execute("DELETE FROM order_kpis WHERE order_date = ?", (order_date,))
                o = date_kpis.order
                if o is not None:
                    db.execute(
                        "INSERT INTO order_kpis VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            order_date,
                            o.total_orders,
                            _text(o.total_revenue),
                            o.total_items_sold,
                            _ppm(o.return_rate),
                            o.unique_customers,
                            o.returned_orders,
                        ),
                    )
                db.executemany(
                    "INSERT INTO category_kpis VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            c.category,
                            order_date,
                            _text(c.daily_revenue),
                            _text(c.avg_order_value),
                            _ppm(c.avg_return_rate),
                            c.orders,
                            c.returned_orders,
                        )
                        for c in date_kpis.categories
                    ],
                )
                checkpoint("kpi-commit-inside")
        return skipped

    @staticmethod
    def _range(start: str | None, end: str | None) -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        if start:
            clauses.append("order_date >= ?")
            params.append(start)
        if end:
            clauses.append("order_date <= ?")
            params.append(end)
        return " AND ".join(clauses) or "1", params

    def _readable(self) -> None:
        """A home written by a version that kept money in cents holds the old KPI tables until a
        writer opens it (read commands open it read-only): say so, never misread a column."""
        if not any(r["name"] == "total_revenue" for r in self.db.query("PRAGMA table_info(order_kpis)")):
            raise OrderpipeError(
                "the KPIs of this home were written by an older orderpipe: run a file or start"
                " `orderpipe watch` once to rebuild them from the facts"
            )

    def daily(self, start: str | None, end: str | None) -> list[dict[str, object]]:
        self._readable()
        where, params = self._range(start, end)
        return [
            {
                "order_date": r["order_date"],
                "total_orders": r["total_orders"],
                "total_revenue": _money(r["total_revenue"]),
                "total_items_sold": r["total_items_sold"],
                "return_rate": _fraction(r["return_rate_ppm"]),
                "unique_customers": r["unique_customers"],
                "returned_orders": r["returned_orders"],
            }
            for r in self.db.query(f"SELECT * FROM order_kpis WHERE {where} ORDER BY order_date", params)
        ]

    def category(self, name: str | None, start: str | None, end: str | None) -> list[dict[str, object]]:
        self._readable()
        where, params = self._range(start, end)
        if name:
            where += " AND category = ?"
            params.append(name)
        return [
            {
                "category": r["category"],
                "order_date": r["order_date"],
                "daily_revenue": _money(r["daily_revenue"]),
                "avg_order_value": _money(r["avg_order_value"]),
                "avg_return_rate": _fraction(r["avg_return_rate_ppm"]),
                "orders": r["orders"],
                "returned_orders": r["returned_orders"],
            }
            for r in self.db.query(f"SELECT * FROM category_kpis WHERE {where} ORDER BY category, order_date", params)
        ]
