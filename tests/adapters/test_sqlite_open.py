"""Processes that open one new SQLite database at the same moment (two `watch` workers, a
`run` beside the API) all get it: none is told "database is locked"."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path
from queue import Queue

import pytest

from orderpipe.adapters.sqlite import SqliteDatabase
from orderpipe.errors import InfrastructureError


def _open_at(path: str, moment: float, answers: Queue[str]) -> None:
    while time.time() < moment:  # every process starts the same instant
        pass
    try:
        SqliteDatabase(Path(path)).connection.close()
        answers.put("")
    except Exception as exc:  # what went wrong is the answer
        answers.put(str(exc))


def test_processes_opening_a_new_database_at_once_all_get_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    failures: list[str] = []
    for round_ in range(8):
        answers: Queue[str] = context.Queue()  # type: ignore[assignment]
        path = str(tmp_path / f"round-{round_}" / "orderpipe.db")
        moment = time.time() + 0.4
        processes = [context.Process(target=_open_at, args=(path, moment, answers)) for _ in range(8)]
        for process in processes:
            process.start()
        failures += [answer for answer in (answers.get(timeout=120) for _ in processes) if answer]
        for process in processes:
            process.join()
    assert failures == []


def _busy() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
    return error


def test_an_open_told_the_database_is_locked_tries_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite answers "database is locked" at once, without waiting, when another process is
    switching the new database to WAL: opening waits and tries again instead."""
    real, calls = SqliteDatabase._open, []

    def locked_twice(self: SqliteDatabase) -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise _busy()
        real(self)

    monkeypatch.setattr(SqliteDatabase, "_open", locked_twice)
    database = SqliteDatabase(tmp_path / "orderpipe.db")
    assert len(calls) == 3 and [tuple(row) for row in database.query("SELECT count(*) FROM batches")] == [(0,)]


def test_a_database_locked_for_longer_than_the_wait_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SqliteDatabase, "_open", lambda self: (_ for _ in ()).throw(_busy()))
    monkeypatch.setattr("orderpipe.adapters.sqlite.BUSY_SECONDS", 0.2)
    with pytest.raises(InfrastructureError, match=r"cannot open the database .*orderpipe\.db: database is locked"):
        SqliteDatabase(tmp_path / "orderpipe.db")
