"""The one wiring point: settings in, a Pipeline with its adapters out."""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orderpipe.adapters.sqlite import SCHEMA, SqliteDatabase, SqliteKpiStore, SqliteLedger, database_error
from orderpipe.config import DATABASE_FILE, Settings
from orderpipe.core.kpis import KPIS
from orderpipe.errors import ConfigError, InfrastructureError, UsageError
from orderpipe.ports import KpiStore, Ledger, Notifier, ObjectStore

if TYPE_CHECKING:
    from orderpipe.workflow import Pipeline

# The readers import no Polars and no HTTP client: the API's Lambda package holds neither, so
# what only the pipeline needs is imported when a pipeline is opened.

__all__ = ["DATABASE_FILE", "Reader", "open_pipeline", "open_reader", "require_home"]

FOLDERS = ("input", "processed", "rejected", "warehouse")


#: What `ORDERPIPE_BACKEND=aws` needs beyond the core install (the `aws` extra).
AWS_MODULES = ("boto3", "botocore")
AWS_EXTRA_HINT = (
    "pip install 'orderpipe[aws]' (in a checkout: .venv/bin/pip install -e '.[aws]'),"
    " or use the local backend (backend = 'local', the default)"
)


def _require_aws_extra() -> None:
    """The AWS adapters without the `aws` extra installed (`make demo` installs the core only)
    are a configuration error with the command that fixes it, not a traceback. Checked before
    they are opened: they import boto3 only when they first make a client."""
    for module in AWS_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            missing = (getattr(exc, "name", None) or module).partition(".")[0]
            raise ConfigError(
                f"backend 'aws' needs the aws extra, which is not installed (no module named {missing!r}): "
                + AWS_EXTRA_HINT
            ) from exc


def open_pipeline(settings: Settings) -> Pipeline:
    """Local: the home folder is the bucket, SQLite the ledger and KPI store.
    AWS: S3, DynamoDB and SNS, with the home as local scratch space."""
    from orderpipe.adapters.folder import FolderStore
    from orderpipe.adapters.notify import LogNotifier, WebhookNotifier
    from orderpipe.workflow import Pipeline, Prefixes

    prefixes = Prefixes(
        settings.input_prefix,
        settings.processed_prefix,
        settings.rejected_prefix,
        settings.warehouse_prefix,
        settings.dismissed_prefix,
    )
    notifier: Notifier = WebhookNotifier(settings.webhook_url) if settings.webhook_url else LogNotifier()
    store: ObjectStore
    ledger: Ledger
    kpis: KpiStore
    if settings.backend == "aws":
        _require_aws_extra()
        from orderpipe.adapters.dynamodb import DynamoLedger, TableNames
        from orderpipe.adapters.dynamodb_kpis import DynamoKpiStore
        from orderpipe.adapters.s3 import S3Store
        from orderpipe.adapters.sns import SnsNotifier

        assert settings.bucket is not None
        store = S3Store(settings.bucket, settings.home / ".work" / "s3")
        ledger = DynamoLedger(settings.ledger_table)
        kpis = DynamoKpiStore(TableNames(settings.ledger_table, settings.category_table, settings.order_table))
        if settings.success_topic_arn and settings.failure_topic_arn:
            notifier = SnsNotifier(settings.success_topic_arn, settings.failure_topic_arn)
    else:
        # dismissed/ is made by the first file set aside: most homes never have one
        for prefix in (*FOLDERS, prefixes.input, prefixes.processed, prefixes.rejected, prefixes.warehouse):
            (settings.home / prefix).mkdir(parents=True, exist_ok=True)
        db = SqliteDatabase(settings.home / DATABASE_FILE)
        store, ledger, kpis = FolderStore(settings.home), SqliteLedger(db), SqliteKpiStore(db)
    pipeline = Pipeline(
        store=store,
        ledger=ledger,
        kpis=kpis,
        notifier=notifier,
        categories=settings.categories,
        workdir=settings.home / ".work",
        prefixes=prefixes,
        rows_per_part=settings.rows_per_part,
        shape=settings.shape,
    )
    pipeline.settings_record.check(f"s3://{settings.bucket}" if settings.backend == "aws" else str(settings.home))
    return pipeline


@dataclass(frozen=True, slots=True)
class Reader:
    """What the read-only commands and the API use: the KPIs and the run history."""

    kpis: KpiStore
    ledger: Ledger
    db: SqliteDatabase | None = None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def require_home(settings: Settings) -> None:
    """Reading a home that is not there would otherwise create an empty one and show nothing."""
    if not settings.home.is_dir():
        raise UsageError(
            f"no orderpipe home at {settings.home}: run `orderpipe run FILE` to create one, "
            "or point --home / $ORDERPIPE_HOME at an existing home"
        )


def open_reader(settings: Settings) -> Reader:
    """Open the stores for reading only: creates no folder, no database, writes nothing, and so
    works on a read-only home. Local: the home must exist; AWS: nothing local is touched."""
    if settings.backend == "aws":
        _require_aws_extra()
        from orderpipe.adapters.dynamodb import DynamoLedger, TableNames
        from orderpipe.adapters.dynamodb_kpis import DynamoKpiStore

        names = TableNames(settings.ledger_table, settings.category_table, settings.order_table)
        return Reader(DynamoKpiStore(names), DynamoLedger(settings.ledger_table))
    require_home(settings)
    db = ReadOnlyDatabase(settings.home / DATABASE_FILE)
    return Reader(SqliteKpiStore(db), SqliteLedger(db), db)


class ReadOnlyDatabase(SqliteDatabase):
    """The SQLite database opened so that reading it writes nothing.

    A plain read-only open of a WAL database creates the -wal and -shm files when they are
    missing (and fails on a read-only home). So: with no -wal file, nothing is pending and no
    writer is active, and the file is read as immutable (no side files, no locks); should a
    writer start meanwhile (a -wal appears), the query is read again through the WAL, read-only.
    A home without a database yet reads as empty.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.schema = KPIS
        self.ddl = SCHEMA
        self.wal = path.with_name(path.name + "-wal")
        self.immutable = False
        self.connection = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            if not self.path.exists():
                empty = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                empty.executescript(SCHEMA)
                return empty
            self.immutable = not self.wal.exists()
            mode = "immutable=1" if self.immutable else "mode=ro"
            uri = f"{self.path.resolve().as_uri()}?{mode}"
            return sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise database_error(self.path, exc, opening=True) from exc

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        rows = super().query(sql, params)
        if self.immutable and self.wal.exists():  # a writer started while we read
            self.connection.close()
            self.connection = self._connect()
            rows = super().query(sql, params)
        return rows

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        raise InfrastructureError(f"{self.path} is open for reading only")
        yield self.connection  # pragma: no cover - makes this a generator
