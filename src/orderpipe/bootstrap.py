"""The one wiring point: settings in, a Pipeline with its adapters out."""

from __future__ import annotations

from orderpipe.adapters.folder import FolderStore
from orderpipe.adapters.notify import LogNotifier, WebhookNotifier
from orderpipe.adapters.sqlite import SqliteDatabase, SqliteKpiStore, SqliteLedger
from orderpipe.config import Settings
from orderpipe.ports import Notifier
from orderpipe.workflow import Pipeline

__all__ = ["DATABASE_FILE", "open_pipeline"]

DATABASE_FILE = "orderpipe.db"
FOLDERS = ("input", "processed", "rejected", "warehouse")


def open_pipeline(settings: Settings) -> Pipeline:
    """Local mode: the home folder is the bucket, SQLite holds the ledger and the KPIs."""
    for folder in FOLDERS:
        (settings.home / folder).mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(settings.home / DATABASE_FILE)
    notifier: Notifier = WebhookNotifier(settings.webhook_url) if settings.webhook_url else LogNotifier()
    return Pipeline(
        store=FolderStore(settings.home),
        ledger=SqliteLedger(db),
        kpis=SqliteKpiStore(db),
        notifier=notifier,
        categories=settings.categories,
        workdir=settings.home / ".work",
        rows_per_part=settings.rows_per_part,
    )
