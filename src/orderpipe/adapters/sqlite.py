"""SQLite as the ledger and the KPI store: the embedded default.

WAL mode lets readers (the CLI) run beside writers (workers); every state change is one
`BEGIN IMMEDIATE` transaction, so a kill -9 leaves either all of it or none.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from itertools import repeat
from operator import attrgetter, methodcaller
from pathlib import Path
from typing import Any

from orderpipe.core.kpis import KPIS, DateKpis
from orderpipe.core.schema import COUNT, KEY, MONEY, RATE_KIND, Column, KpiSchema
from orderpipe.errors import DatabaseDamaged, InfrastructureError, OrderpipeError
from orderpipe.faults import checkpoint
from orderpipe.ports import BatchRecord, FactEntry, RunRecord

__all__ = ["SqliteDatabase", "SqliteKpiStore", "SqliteLedger", "column_name", "database_error", "kpi_ddl"]

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, file TEXT NOT NULL, rows INTEGER NOT NULL,
    dates TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, committed_at TEXT NOT NULL, done_at TEXT,
    retracted TEXT NOT NULL DEFAULT '', retracted_at TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS batch_dates (
    order_date TEXT NOT NULL, batch_id TEXT NOT NULL, seq INTEGER NOT NULL, parts TEXT NOT NULL,
    PRIMARY KEY (order_date, batch_id));
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, batch_id TEXT NOT NULL, file TEXT NOT NULL, status TEXT NOT NULL,
    rows INTEGER NOT NULL, dates TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    message TEXT NOT NULL, report TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS runs_by_batch ON runs (batch_id);
CREATE TABLE IF NOT EXISTS product_dates (
    product_id TEXT NOT NULL, order_date TEXT NOT NULL, PRIMARY KEY (product_id, order_date)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS retract_seqs (seq INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS kpi_versions (order_date TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kpi_generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
"""
# retract_seqs: the seqs a retraction took for its date entries (`SqliteLedger.retract_entries`),
# from the one sequence of commits: the next seq is past both tables' highest.
# kpi_generation: one number raised by every KPI write, so a reader can tell cheaply whether
# anything changed (the API's version and ETag).
# Money is exact decimal TEXT (a TEXT-affinity column keeps the string as written; INTEGER cents
# overflow 64 bits far inside the input bounds). Version 1 replaced the old cents columns: the
# KPI tables are rebuilt and every batch recomputed (see SqliteDatabase._migrate).
KPI_SCHEMA_VERSION = 1
KPI_TABLES = ("kpi_versions", "order_kpis", "category_kpis")
#: Dates per query reading their stored versions (SQLite's limit of bound parameters: 999 in old builds).
VERSIONS_READ = 900
#: Sorts after any character of a batch id (SQLite compares text by its UTF-8 bytes).
_AFTER_EVERY_TEXT = "\U0010ffff"
_SQL_TYPES = {KEY: "TEXT", COUNT: "INTEGER", MONEY: "TEXT", RATE_KIND: "INTEGER"}


def column_name(column: Column) -> str:
    """Rates are stored as integer parts per million (exact at 6 decimals)."""
    return f"{column.name}_ppm" if column.kind == RATE_KIND else column.name


def _table_ddl(table: str, cols: Sequence[Column]) -> str:
    defs = ", ".join(f"{column_name(c)} {_SQL_TYPES[c.kind]} NOT NULL" for c in cols)
    keys = ", ".join(c.name for c in cols if c.kind == KEY)
    return f"CREATE TABLE IF NOT EXISTS {table} ({defs}, PRIMARY KEY ({keys}));\n"


def kpi_ddl(schema: KpiSchema = KPIS) -> str:
    """The KPI tables, derived from the KPI dataclasses."""
    return (
        _table_ddl("order_kpis", schema.order_columns)
        + _table_ddl("category_kpis", schema.category_columns)
        + "CREATE INDEX IF NOT EXISTS category_kpis_by_date ON category_kpis (order_date);\n"
    )


def _stored_rows(kpis: Iterable[object], columns: Sequence[Column]) -> list[tuple[object, ...]]:
    """The rows to insert for `kpis` (KPI objects of `columns`), converted a column at a time:
    a file of 3,650 dates writes ~30,000 rows, and a Python call per value cost more than the
    inserts."""
    values = list(map(attrgetter(*(c.name for c in columns)), kpis))
    if not values:
        return []
    stored: list[Iterator[object]] = []
    for column, given in zip(columns, zip(*values, strict=True), strict=True):
        if column.kind == MONEY:  # plain digits, never exponent notation: the exact amount
            stored.append(map(format, given, repeat("f")))
        elif column.kind == RATE_KIND:
            stored.append(map(int, map(_MILLIONTHS, given)))
        else:
            stored.append(iter(given))
    return list(zip(*stored, strict=True))


_MILLIONTHS = methodcaller("scaleb", 6)


def _reader(column: Column) -> Callable[[Any], object]:
    """How a stored value comes back (a few thousand rows per answer: no per-value dispatch)."""
    if column.kind == RATE_KIND:
        return _fraction
    if column.kind == MONEY:
        return Decimal  # stored as the exact text of an amount in cents
    if column.kind == COUNT:
        return int
    return str


#: The tables and index of a new database with the core's KPI schema.
SCHEMA = LEDGER_SCHEMA + kpi_ddl()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _fraction(ppm: int) -> Decimal:
    return Decimal(ppm).scaleb(-6)  # exponent -6: six decimals, 0 included ("0.000000")


#: SQLite's (primary) result codes for a file that is damaged or is not a database at all.
_DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def database_error(path: Path, exc: sqlite3.Error, opening: bool = False) -> InfrastructureError:
    """Every SQLite failure of every command (and of the API) becomes this one error, naming the
    file: a damaged database gets the same message whichever statement met the damage first
    (opening it, the KPI tables' columns, a query), with what to do, since no retry repairs it."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _DAMAGED:
        return DatabaseDamaged(
            f"the database {path} is damaged or is not an orderpipe database (SQLite: {exc}): restore it from"
            " a backup, or move it aside to start a new one (the KPIs and the run history then start empty)"
        )
    if opening:
        return InfrastructureError(f"cannot open the database {path}: {exc}")
    return InfrastructureError(f"database error in {path}: {exc}")


#: How long a statement waits for another process's lock, opening the database included.
BUSY_SECONDS = 60
#: A statement that works only where SQLite has its JSON functions.
JSON_PROBE = "SELECT value FROM json_each('[]')"


def _require_json(connection: sqlite3.Connection) -> None:
    """The ledger reads many dates through `json_each`: built into SQLite since 3.38, an
    extension that most builds include before. Without it no batch could ever be read."""
    try:
        connection.execute(JSON_PROBE).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):  # a busy or broken database: the caller says so
            raise
        raise OrderpipeError(
            f"this Python's SQLite ({sqlite3.sqlite_version}) has no JSON functions ({exc}), which the"
            " ledger needs: use a Python whose SQLite has them (any SQLite 3.38 or newer has)"
        ) from exc


class SqliteDatabase:
    """One connection per instance: give each worker thread its own."""

    def __init__(self, path: Path, schema: KpiSchema = KPIS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.schema = schema
        self.ddl = LEDGER_SCHEMA + kpi_ddl(schema)
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            try:
                self.connection = sqlite3.connect(
                    path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False
                )
                self._open()
                return
            except sqlite3.Error as exc:
                busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() > deadline:
                    raise database_error(path, exc, opening=True) from exc
                self.connection.close()
                time.sleep(0.05)

    def _open(self) -> None:
        """Switching a new database to WAL needs it to itself and does not wait for another
        process opening it at the same moment (SQLite answers "database is locked" at once):
        the caller tries again until BUSY_SECONDS have passed."""
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        _require_json(self.connection)
        self._migrate()
        self.connection.executescript(self.ddl)

    def kpi_columns_match(self) -> bool:
        """The stored KPI tables have the schema's columns (or do not exist yet)."""
        for table, cols in (("order_kpis", self.schema.order_columns), ("category_kpis", self.schema.category_columns)):
            stored = [r[1] for r in self.query(f"PRAGMA table_info({table})")]
            if stored and stored != [column_name(c) for c in cols]:
                return False
        return True

    def _stale(self) -> bool:
        return self.connection.execute("PRAGMA user_version").fetchone()[0] < KPI_SCHEMA_VERSION or not (
            self.kpi_columns_match()
        )

    def _migrate(self) -> None:
        """Bring an older home's KPI tables to KPI_SCHEMA_VERSION and to the KPI schema's
        columns (a KPI added or removed), in one transaction; give an older run history its
        report column.

        KPIs are derived data: rather than convert old rows, drop the KPI tables (and their
        versions) and mark every batch unfinished, so start-up recovery recomputes every date
        from the facts. A new database takes the same path with nothing to drop or redo.
        """
        db = self.connection
        runs = [r[1] for r in db.execute("PRAGMA table_info(runs)").fetchall()]
        if runs and "report" not in runs:
            self._add_column("runs", "report TEXT NOT NULL DEFAULT ''")
        batches = [r[1] for r in db.execute("PRAGMA table_info(batches)").fetchall()]
        for column in ("retracted", "retracted_at"):
            if batches and column not in batches:
                self._add_column("batches", f"{column} TEXT NOT NULL DEFAULT ''")
        if not self._stale():
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            if self._stale():  # not migrated meanwhile
                for table in KPI_TABLES:
                    db.execute(f"DROP TABLE IF EXISTS {table}")
                for statement in self.ddl.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("UPDATE batches SET done = 0 WHERE done = 1")  # failed ones wait for a replay
                db.execute(f"PRAGMA user_version = {KPI_SCHEMA_VERSION}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _add_column(self, table: str, definition: str) -> None:
        """A column an older home's table lacks (another process may add it first)."""
        try:
            self.connection.execute(f"ALTER TABLE {table} ADD COLUMN {definition}")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):
                raise

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
            raise database_error(self.path, exc) from exc

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Every read goes through here (a statement run on the connection directly would let
        SQLite's own exception, and a traceback, reach the user)."""
        try:
            cursor = self.connection.execute(sql, params)
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()
        except sqlite3.Error as exc:
            raise database_error(self.path, exc) from exc

    def close(self) -> None:
        self.connection.close()


def _next_seq(db: sqlite3.Connection) -> int:
    """The next seq of the one sequence that commits and retractions take from."""
    (seq,) = db.execute(
        "SELECT MAX(COALESCE((SELECT MAX(seq) FROM batches), 0), COALESCE((SELECT MAX(seq) FROM retract_seqs), 0)) + 1"
    ).fetchone()
    return int(seq)


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
            row["retracted"],
            row["retracted_at"],
        )

    def get(self, batch_id: str) -> BatchRecord | None:
        rows = self.db.query("SELECT * FROM batches WHERE batch_id = ?", (batch_id,))
        return self._batch(rows[0]) if rows else None

    def commit(self, batch_id: str, file: str, rows: int, parts: Mapping[str, Sequence[int]]) -> BatchRecord:
        with self.db.transaction() as db:
            existing = db.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
            if existing is None:
                seq = _next_seq(db)
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

    def begin_retract(self, batch_id: str) -> BatchRecord | None:
        with self.db.transaction() as db:
            db.execute(
                "UPDATE batches SET retracted = 'retracting', retracted_at = ? WHERE batch_id = ? AND retracted = ''",
                (_now(), batch_id),
            )
        return self.get(batch_id)

    def retract_entries(
        self, order_date: str, covered: Sequence[FactEntry], added: Sequence[FactEntry], marker: str
    ) -> bool:
        ids = json.dumps([e.batch_id for e in covered])
        wanted = "SELECT value FROM json_each(?)"
        with self.db.transaction() as db:
            (present,) = db.execute(
                f"SELECT COUNT(*) FROM batch_dates WHERE order_date = ? AND batch_id IN ({wanted})", (order_date, ids)
            ).fetchone()
            marked = db.execute(
                "SELECT 1 FROM batch_dates WHERE order_date = ? AND batch_id = ?", (order_date, marker)
            ).fetchone()
            if present != len(covered) or marked is not None:
                return False  # a covered entry is gone (compacted), or the marker is there already
            seq = _next_seq(db)
            db.execute(f"DELETE FROM batch_dates WHERE order_date = ? AND batch_id IN ({wanted})", (order_date, ids))
            db.executemany(
                "INSERT INTO batch_dates (order_date, batch_id, seq, parts) VALUES (?, ?, ?, ?)",
                [(order_date, e.batch_id, e.seq, json.dumps(list(e.parts))) for e in added]
                + [(order_date, marker, seq, "[]")],
            )
            db.execute("INSERT INTO retract_seqs (seq) VALUES (?)", (seq,))
            checkpoint("retract-switch-inside")
        return True

    def finish_retract(self, batch_id: str, run: RunRecord) -> bool:
        with self.db.transaction() as db:
            changed = db.execute(
                "UPDATE batches SET retracted = 'retracted' WHERE batch_id = ? AND retracted = 'retracting'",
                (batch_id,),
            ).rowcount
            if changed:
                self._insert_run(db, run)
        return bool(changed)

    def failed(self) -> list[BatchRecord]:
        return [self._batch(r) for r in self.db.query("SELECT * FROM batches WHERE done = -1 ORDER BY seq")]

    def unfinished(self) -> list[BatchRecord]:
        return [self._batch(r) for r in self.db.query("SELECT * FROM batches WHERE done = 0 ORDER BY seq")]

    def fact_entries(self, dates: Sequence[str]) -> dict[str, list[FactEntry]]:
        entries: dict[str, list[FactEntry]] = {d: [] for d in dates}
        # One statement, so one consistent read of every date (the catalog's entries included),
        # with the dates as one JSON parameter: any number of them, and no temporary table (its
        # inserts, each a transaction of its own here, cost 20-60 ms for 3,650 dates).
        rows = self.db.query(
            "SELECT * FROM batch_dates WHERE order_date IN (SELECT value FROM json_each(?)) ORDER BY order_date, seq",
            (json.dumps(list(entries)),),
        )
        for row in rows:
            entries[row["order_date"]].append(
                FactEntry(row["order_date"], row["batch_id"], row["seq"], tuple(json.loads(row["parts"])))
            )
        return entries

    def index_products(self, dates_by_product: Mapping[str, Sequence[str]]) -> None:
        with self.db.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO product_dates VALUES (?, ?)",
                ((p, d) for p, dates in dates_by_product.items() for d in dates),
            )
            checkpoint("index-inside")

    def product_dates(self, products: Sequence[str]) -> list[str]:
        found: set[str] = set()
        for start in range(0, len(products), 500):
            chunk = list(products[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.db.query(f"SELECT DISTINCT order_date FROM product_dates WHERE product_id IN ({marks})", chunk)
            found.update(r["order_date"] for r in rows)
        return sorted(found)

    def record_run(self, run: RunRecord) -> None:
        with self.db.transaction() as db:
            self._insert_run(db, run)

    @staticmethod
    def _insert_run(db: sqlite3.Connection, run: RunRecord) -> None:
        db.execute(
            "INSERT INTO runs (batch_id, file, status, rows, dates, started_at, finished_at, message, report)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.batch_id,
                run.file,
                run.status,
                run.rows,
                json.dumps(list(run.dates)),
                run.started_at,
                run.finished_at,
                run.message,
                run.report,
            ),
        )

    def runs_of(self, batch_id: str) -> list[RunRecord]:
        return [run for run in self.runs(batch_id=batch_id) if run.batch_id == batch_id]

    def runs(
        self,
        limit: int | None = None,
        status: str | None = None,
        batch_id: str | None = None,
        before: str | None = None,
    ) -> list[RunRecord]:
        where: list[str] = ["1"]
        params: list[object] = []
        if before is not None:  # a row id: ids only grow (no run is ever deleted)
            if not re.fullmatch(r"[0-9]{1,18}", before):
                raise ValueError(f"{before!r} is not a position in this run history")
            where.append("runs.id < ?")
            params.append(int(before))
        if status is not None:
            where.append("runs.status = ?")
            params.append(status)
        if batch_id is not None:  # ids that start with it, as a range the index answers
            where.append("runs.batch_id >= ? AND runs.batch_id < ?")
            params += [batch_id, batch_id + _AFTER_EVERY_TEXT]
        newest = self.db.query(
            "SELECT runs.*, CASE WHEN runs.status = 'accepted' THEN batches.seq END AS seq"
            f" FROM runs LEFT JOIN batches USING (batch_id) WHERE {' AND '.join(where)} ORDER BY runs.id DESC"
            + (" LIMIT ?" if limit is not None else ""),
            [*params, *([limit] if limit is not None else [])],
        )
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
                r["report"] if "report" in r.keys() else "",  # noqa: SIM118 - sqlite3.Row has no __contains__
                str(r["id"]),
            )
            for r in reversed(newest)
        ]

    def last_run(self) -> str:
        rows = self.db.query("SELECT MAX(id) AS id FROM runs")
        return str(rows[0]["id"] or 0)


class SqliteKpiStore:
    """Columns, reads and writes follow the database's KPI schema."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self.schema = db.schema

    def write(self, kpis: Mapping[str, tuple[int, DateKpis]]) -> list[str]:
        skipped: list[str] = []
        order_cols, category_cols = self.schema.order_columns, self.schema.category_columns
        insert_order = f"INSERT INTO order_kpis VALUES ({', '.join('?' * len(order_cols))})"
        insert_category = f"INSERT INTO category_kpis VALUES ({', '.join('?' * len(category_cols))})"
        with self.db.transaction() as db:
            # Set-wise, not a round of statements per date: a file of 3,650 dates writes them all.
            stored: dict[str, int] = {}
            dates = sorted(kpis)
            for start in range(0, len(dates), VERSIONS_READ):
                some = dates[start : start + VERSIONS_READ]
                marks = ", ".join("?" * len(some))
                query = f"SELECT order_date, version FROM kpi_versions WHERE order_date IN ({marks})"
                stored.update((row[0], row[1]) for row in db.execute(query, some))
            skipped = [d for d in dates if d in stored and stored[d] > kpis[d][0]]
            written = [d for d in dates if not (d in stored and stored[d] > kpis[d][0])]
            db.executemany("INSERT OR REPLACE INTO kpi_versions VALUES (?, ?)", [(d, kpis[d][0]) for d in written])
            db.executemany("DELETE FROM category_kpis WHERE order_date = ?", [(d,) for d in written])
            db.executemany("DELETE FROM order_kpis WHERE order_date = ?", [(d,) for d in written])
            chosen = [kpis[d][1] for d in written]
            orders = _stored_rows((k.order for k in chosen if k.order is not None), order_cols)
            categories = _stored_rows((c for k in chosen for c in k.categories), category_cols)
            db.executemany(insert_order, orders)
            db.executemany(insert_category, categories)
            checkpoint("kpi-commit-inside")
            if written:
                db.execute("INSERT INTO kpi_generation VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET value = value + 1")
        return skipped

    def generation(self) -> int:
        if not self.db.query("SELECT 1 FROM sqlite_master WHERE name = 'kpi_generation'"):
            return 0  # an older home opened read-only
        rows = self.db.query("SELECT value FROM kpi_generation")
        return int(rows[0]["value"]) if rows else 0

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
        """A home written by an older orderpipe (money in cents, or another set of KPIs) holds
        the old KPI tables until a writer opens it (read commands open it read-only): say so,
        never misread a column."""
        if not self.db.kpi_columns_match():
            raise OrderpipeError(
                "the KPIs of this home were written by an older orderpipe: run a file or start"
                " `orderpipe watch` once to rebuild them from the facts"
            )

    def _select(
        self, table: str, cols: Sequence[Column], where: str, params: list[object], order: str
    ) -> list[dict[str, object]]:
        names = ", ".join(column_name(c) for c in cols)
        rows = self.db.query(f"SELECT {names} FROM {table} WHERE {where} ORDER BY {order}", params)
        readers = [(c.name, _reader(c)) for c in cols]
        return [{name: read(value) for (name, read), value in zip(readers, row, strict=True)} for row in rows]

    def daily(self, start: str | None, end: str | None) -> list[dict[str, object]]:
        self._readable()
        where, params = self._range(start, end)
        return self._select("order_kpis", self.schema.order_columns, where, params, "order_date")

    def category(self, name: str | None, start: str | None, end: str | None) -> list[dict[str, object]]:
        self._readable()
        where, params = self._range(start, end)
        if name:
            where += " AND category = ?"
            params.append(name)
        return self._select("category_kpis", self.schema.category_columns, where, params, "category, order_date")
