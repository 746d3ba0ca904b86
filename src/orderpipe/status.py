"""`orderpipe status`: a home at a glance, read without changing anything.

What a person asks first when something looks off: which home and settings this is (and
where each setting came from), what is waiting, what failed or was left half-done, what was
rejected and is still in `rejected/`, how far the KPIs reach, and how big the stores are.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orderpipe.bootstrap import DATABASE_FILE, open_reader
from orderpipe.config import Settings, settings_in_force
from orderpipe.core.meaning import MEANING_FILE
from orderpipe.core.names import REPORT_SUFFIX, display_name
from orderpipe.core.relational import describe_waiting
from orderpipe.logs import hide_secrets
from orderpipe.ports import ObjectStore, RunRecord
from orderpipe.relational import waiting_now

__all__ = ["home_status", "status_lines"]

#: Names listed per folder; the count is always whole.
LISTED = 10


def home_status(settings: Settings) -> dict[str, Any]:
    """Everything `status` shows, as plain data (its JSON form)."""
    reader = open_reader(settings)  # a local home must exist; nothing is created
    try:
        store = _store(settings)
        failed, stranded = reader.ledger.failed(), reader.ledger.unfinished()
        relational = settings.shape.relational
        daily = reader.kpis.daily(None, None)
        waiting = _names(store, settings.input_prefix)
        rejected = [k for k in _names(store, settings.rejected_prefix) if not k.endswith(REPORT_SUFFIX)]
        return {
            "home": f"s3://{settings.bucket}" if settings.backend == "aws" else str(settings.home),
            "backend": settings.backend,
            "settings": [
                {"name": name, "value": _plain(value), "from": source}
                for name, value, source in settings_in_force(settings)
            ],
            "settings_recorded": store.exists(MEANING_FILE),
            "waiting": {"count": len(waiting), "files": waiting[:LISTED]},
            "failed": [{"batch_id": b.batch_id, "file": b.file, "dates": list(b.dates)} for b in failed],
            "stranded": [{"batch_id": b.batch_id, "file": b.file, "dates": list(b.dates)} for b in stranded],
            "rejected": {"count": len(rejected), "files": rejected[:LISTED]},
            "kpis": {
                "dates": len(daily),
                "first_date": daily[0]["order_date"] if daily else None,
                "newest_date": daily[-1]["order_date"] if daily else None,
            },
            "last_run": _last_run(reader.ledger.runs(limit=1)),
            "sizes": _sizes(settings, store),
            **({"unjoined": waiting_now(store, reader.ledger, settings.warehouse_prefix)} if relational else {}),
        }
    finally:
        reader.close()


def _last_run(runs: list[RunRecord]) -> dict[str, Any] | None:
    if not runs:
        return None
    run = runs[0]
    return {"status": run.status, "file": run.file, "batch_id": run.batch_id, "finished_at": run.finished_at}


def _store(settings: Settings) -> ObjectStore:
    if settings.backend == "aws":
        from orderpipe.adapters.s3 import S3Store

        assert settings.bucket is not None
        return S3Store(settings.bucket, settings.home / ".work" / "s3")
    from orderpipe.adapters.folder import FolderStore

    return FolderStore(settings.home)  # lists and reads only: its scratch folder is made on first write


def _names(store: ObjectStore, prefix: str) -> list[str]:
    return [display_name(key.removeprefix(prefix)) for key in store.list(prefix)]


def _plain(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    return hide_secrets(value) if isinstance(value, str) else value


def _sizes(settings: Settings, store: ObjectStore) -> dict[str, Any]:
    """Objects per folder; bytes too on a local home (on S3 that would cost a request per object)."""
    folders = {
        "input": settings.input_prefix,
        "processed": settings.processed_prefix,
        "rejected": settings.rejected_prefix,
        "warehouse": settings.warehouse_prefix,
        "dismissed": settings.dismissed_prefix,
    }
    sizes: dict[str, Any] = {name: {"objects": sum(1 for _ in store.list(prefix))} for name, prefix in folders.items()}
    if settings.backend != "aws":
        for name, prefix in folders.items():
            sizes[name]["bytes"] = sum(_file_sizes(settings.home / prefix))
        database = [settings.home / (DATABASE_FILE + suffix) for suffix in ("", "-wal")]
        sizes["database"] = {"bytes": sum(p.stat().st_size for p in database if p.exists())}
    return sizes


def _file_sizes(folder: Path) -> Iterator[int]:
    for root, _, files in os.walk(folder):
        for name in files:
            yield (Path(root) / name).stat().st_size


def status_lines(status: dict[str, Any]) -> Iterator[str]:
    """The status for a person."""
    yield f"home       {status['home']} ({status['backend']})"
    waiting, rejected = status["waiting"], status["rejected"]
    yield f"waiting    {_counted(waiting['count'], waiting['files'], 'in input/')}"
    yield f"failed     {_batches(status['failed'])}"
    yield f"stranded   {_batches(status['stranded'])}"
    yield f"rejected   {_counted(rejected['count'], rejected['files'], 'in rejected/')}"
    if "unjoined" in status:
        yield f"unjoined   {describe_waiting(status['unjoined'])}"
    kpis = status["kpis"]
    reach = f"{kpis['dates']} dates, {kpis['first_date']} to {kpis['newest_date']}" if kpis["dates"] else "none yet"
    yield f"kpis       {reach}"
    last = status["last_run"]
    yield f"last run   {last['status']} {last['file']} at {last['finished_at']}" if last else "last run   none yet"
    sizes = ", ".join(_size_text(name, size) for name, size in status["sizes"].items())
    yield f"sizes      {sizes}"
    yield "settings   (where each was given; the rest are defaults)"
    recorded = "recorded with the first batch" if status["settings_recorded"] else "not recorded yet (nothing counted)"
    yield f"  input settings of the stored facts: {recorded}"
    for row in status["settings"]:
        if row["from"] != "default":
            yield f"  {row['name']} = {row['value']!r}  ({row['from']})"


def _size_text(name: str, size: dict[str, int]) -> str:
    if "objects" not in size:
        return f"{name} {_mb(size['bytes'])}"
    objects = f"{name} {size['objects']} object{'' if size['objects'] == 1 else 's'}"
    return objects + (f" ({_mb(size['bytes'])})" if "bytes" in size else "")


def _counted(count: int, names: list[str], where: str) -> str:
    if not count:
        return "nothing"
    more = f", and {count - len(names)} more" if count > len(names) else ""
    return f"{count} {where}: {', '.join(names)}{more}"


def _batches(batches: list[dict[str, Any]]) -> str:
    if not batches:
        return "none"
    shown = ", ".join(f"{b['batch_id'][:8]} {b['file']}" for b in batches[:LISTED])
    return f"{len(batches)}: {shown}" + (", …" if len(batches) > LISTED else "")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
