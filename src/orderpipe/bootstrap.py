"""The one wiring point: settings in, a Pipeline with its adapters out."""

from __future__ import annotations

from dataclasses import astuple

from orderpipe.adapters.folder import FolderStore
from orderpipe.adapters.notify import LogNotifier, WebhookNotifier
from orderpipe.adapters.sqlite import SqliteDatabase, SqliteKpiStore, SqliteLedger
from orderpipe.config import Settings
from orderpipe.ports import KpiStore, Ledger, Notifier, ObjectStore
from orderpipe.workflow import Pipeline, Prefixes

__all__ = ["DATABASE_FILE", "open_pipeline"]

DATABASE_FILE = "orderpipe.db"
FOLDERS = ("input", "processed", "rejected", "warehouse")


def open_pipeline(settings: Settings) -> Pipeline:
    """Local: the home folder is the bucket, SQLite the ledger and KPI store.
    AWS: S3, DynamoDB and SNS, with the home as local scratch space."""
    prefixes = Prefixes(
        settings.input_prefix, settings.processed_prefix, settings.rejected_prefix, settings.warehouse_prefix
    )
    notifier: Notifier = WebhookNotifier(settings.webhook_url) if settings.webhook_url else LogNotifier()
    store: ObjectStore
    ledger: Ledger
    kpis: KpiStore
    if settings.backend == "aws":
        from orderpipe.adapters.dynamodb import DynamoKpiStore, DynamoLedger, TableNames
        from orderpipe.adapters.s3 import S3Store
        from orderpipe.adapters.sns import SnsNotifier

        assert settings.bucket is not None
        store = S3Store(settings.bucket, settings.home / ".work" / "s3")
        ledger = DynamoLedger(settings.ledger_table)
        kpis = DynamoKpiStore(TableNames(settings.ledger_table, settings.category_table, settings.order_table))
        if settings.success_topic_arn and settings.failure_topic_arn:
            notifier = SnsNotifier(settings.success_topic_arn, settings.failure_topic_arn)
    else:
        for prefix in (*FOLDERS, *astuple(prefixes)):
            (settings.home / prefix).mkdir(parents=True, exist_ok=True)
        db = SqliteDatabase(settings.home / DATABASE_FILE)
        store, ledger, kpis = FolderStore(settings.home), SqliteLedger(db), SqliteKpiStore(db)
    return Pipeline(
        store=store,
        ledger=ledger,
        kpis=kpis,
        notifier=notifier,
        categories=settings.categories,
        workdir=settings.home / ".work",
        prefixes=prefixes,
        rows_per_part=settings.rows_per_part,
    )
