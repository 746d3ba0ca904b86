"""The interfaces between the workflow and the outside world.

Each port is small on purpose: an adapter (folder or S3, SQLite or DynamoDB, log/webhook or SNS)
implements only I/O primitives; the rules that make the numbers right live above, once:
`workflow.py` and its rooms (`kpi_engine.py`, `warehouse.py`, `archive.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from orderpipe.core.kpis import DateKpis

__all__ = [
    "BatchRecord",
    "FactEntry",
    "KpiStore",
    "Ledger",
    "Notification",
    "Notifier",
    "ObjectStat",
    "ObjectStore",
    "Prefixes",
    "RunRecord",
]


@dataclass(frozen=True, slots=True)
class Prefixes:
    """Where the store keeps what: files waiting, accepted, rejected, set aside, and the facts."""

    input: str = "input/"
    processed: str = "processed/"
    rejected: str = "rejected/"
    warehouse: str = "warehouse/orders/"
    dismissed: str = "dismissed/"  # rejected files a person set aside (`orderpipe dismiss`)


class ObjectStore(Protocol):
    """A bucket: keys like `input/x.csv`, `processed/x.csv`, `warehouse/orders/...`."""

    def local_copy(self, key: str, version: str | None = None) -> AbstractContextManager[Path]:
        """A readable local path holding the object's bytes (of `version`, where the store keeps
        versions) for the duration of the block."""

    def snapshot(self, key: str, version: str | None = None) -> AbstractContextManager[Path]:
        """Like `local_copy`, but private: its bytes stay the same even if `key` is replaced
        meanwhile (input files are processed from a snapshot)."""

    def put_file(self, path: Path, key: str) -> None:
        """Store a local file under `key`, atomically (readers see all of it or nothing)."""

    def put_new(self, path: Path, key: str) -> bool:
        """Store a copy of a local file under `key` only if no object holds that key; False
        when one does. Atomic: two writers can never both win the same key."""

    def put_bytes(self, key: str, data: bytes, like: Path | None = None) -> None:
        """Store `data` under `key`, atomically; where objects have permissions, no wider than
        the local file `like` (a report that quotes a private file is as private)."""

    def get_bytes(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def stat(self, key: str) -> ObjectStat | None:
        """What identifies the object's current content cheaply; None when absent."""

    def move(self, src: str, dst: str) -> None:
        """Move an object, replacing `dst`; idempotent when `src` is already gone and `dst` exists."""

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str) -> Iterator[str]: ...


@dataclass(frozen=True, slots=True)
class ObjectStat:
    """Equal stats = the same upload: size, modification time, and a store-specific tag
    (inode and nanoseconds on a folder, the ETag on S3)."""

    size: int
    modified: float
    tag: str


@dataclass(frozen=True, slots=True)
class FactEntry:
    """The staged facts of one committed batch for one date."""

    order_date: str
    batch_id: str
    seq: int
    parts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """An accepted batch: committed (facts visible) and, once its KPIs and archive are done, done.
    `failed`: it could not be finished; start-up recovery leaves it alone until a replay.
    A retracted batch stays done: the same bytes again are a duplicate."""

    batch_id: str
    seq: int
    file: str
    rows: int
    dates: tuple[str, ...]
    done: bool
    failed: bool = False
    #: "" counted; "retracting" a retraction began (`orderpipe batches retract`); "retracted" its
    #: rows count no more, since `retracted_at`.
    retracted: str = ""
    retracted_at: str = ""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One file through the workflow, as `orderpipe batches` shows it."""

    batch_id: str
    file: str
    status: str  # accepted | rejected | duplicate | failed | dismissed | retracted
    rows: int
    dates: tuple[str, ...]
    started_at: str
    finished_at: str
    message: str = ""
    seq: int = 0  # the batch's commit order when accepted, else 0
    report: str = ""  # a rejected file's problems, JSON (ValidationReport.brief), else empty
    #: Where the run stands in the history, as the ledger orders it (SQLite's row id, DynamoDB's
    #: sort key): `runs(before=...)` goes on after it, however many runs were recorded since.
    position: str = field(default="", compare=False)


class Ledger(Protocol):
    """Which batches are committed, in which order, and what happened to every file."""

    def get(self, batch_id: str) -> BatchRecord | None: ...

    def commit(self, batch_id: str, file: str, rows: int, parts: Mapping[str, Sequence[int]]) -> BatchRecord:
        """Atomically give the batch the next sequence number; returns the existing record if any."""

    def mark_done(self, batch_id: str) -> None: ...

    def mark_failed(self, batch_id: str) -> None:
        """A committed batch that cannot be finished: no longer among the unfinished ones, so
        it never blocks a start-up; finishing it later (`mark_done`) clears the mark."""

    def compact(self, order_date: str, covered: Sequence[FactEntry], merged: FactEntry) -> bool:
        """Atomically replace the `covered` entries of a date by `merged` (their facts merged);
        False, changing nothing, when any of them is gone (another process compacted first)."""

    def begin_retract(self, batch_id: str) -> BatchRecord | None:
        """Mark a committed batch "retracting" (with the time) unless a retraction of it already
        began; returns its record, None when it is not committed."""

    def retract_entries(
        self, order_date: str, covered: Sequence[FactEntry], added: Sequence[FactEntry], marker: str
    ) -> bool:
        """Atomically replace the `covered` entries of a date by `added`, plus an entry named
        `marker` with no parts and the next seq of the commit sequence (so the date's KPI version
        rises); False, changing nothing, when any covered entry is gone or `marker` is there."""

    def finish_retract(self, batch_id: str, run: RunRecord) -> bool:
        """Atomically mark a retracting batch "retracted" and record `run`; False, changing
        nothing, when it is not retracting (another process finished it)."""

    def failed(self) -> list[BatchRecord]:
        """Committed batches marked failed, in seq order."""

    def unfinished(self) -> list[BatchRecord]:
        """Committed, neither done nor failed, in seq order."""

    def fact_entries(self, dates: Sequence[str]) -> dict[str, list[FactEntry]]:
        """Committed facts per date, read consistently (never a subset of an earlier read)."""

    def index_products(self, dates_by_product: Mapping[str, Sequence[str]]) -> None:
        """Remember on which dates each product sold (with the catalog on). Written before the
        batch's commit and never removed: a superset only costs a recompute, never a wrong KPI."""

    def product_dates(self, products: Sequence[str]) -> list[str]:
        """The dates on which any of `products` sold, sorted: what a catalog change recomputes."""

    def record_run(self, run: RunRecord) -> None: ...

    def runs(
        self,
        limit: int | None = None,
        status: str | None = None,
        batch_id: str | None = None,
        before: str | None = None,
    ) -> list[RunRecord]:
        """The run history, oldest first: the latest `limit` runs, of one status, of the batch
        ids that start with `batch_id`, recorded before the run at `before` (a `position`;
        ValueError when it cannot be one)."""

    def runs_of(self, batch_id: str) -> list[RunRecord]:
        """The runs of exactly this batch, oldest first; as cheap with a long history as with
        none (every file asks)."""

    def last_run(self) -> str:
        """Changes whenever a run is recorded; cheap (one row)."""


class KpiStore(Protocol):
    """KPIs per date, each date written whole under a monotonic version."""

    def write(self, kpis: Mapping[str, tuple[int, DateKpis]]) -> list[str]:
        """Replace each date's KPIs unless a newer version is stored; returns the dates skipped."""

    def daily(self, start: str | None, end: str | None) -> list[dict[str, object]]: ...

    def category(self, name: str | None, start: str | None, end: str | None) -> list[dict[str, object]]: ...

    def generation(self) -> int:
        """Raised by every write that stored some KPIs: a cheap way to see that any changed."""


@dataclass(frozen=True, slots=True)
class Notification:
    """What happened to one file, for people and machines downstream."""

    event: str  # accepted | rejected | duplicate | failed
    file: str
    batch_id: str
    summary: str
    rows: int = 0
    dates: tuple[str, ...] = ()
    details: dict[str, object] = field(default_factory=dict)


class Notifier(Protocol):
    def notify(self, notification: Notification) -> None:
        """Deliver or log; never raises (a lost notification must not lose a batch)."""
