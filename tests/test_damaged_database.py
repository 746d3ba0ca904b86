"""A damaged `orderpipe.db` gets one message, naming the file and what to do, from every command
and from the API: never an internal error with a traceback, whichever statement meets the damage
first."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from orderpipe.bootstrap import open_reader
from orderpipe.cli import main
from orderpipe.config import load_settings
from orderpipe.web.app import create_app
from tests.conftest import REPO, order, write
from tests.web.conftest import running

DAMAGED = "is damaged or is not an orderpipe database"


def _not_a_database(db: Path) -> None:
    db.write_bytes(b"this is not an SQLite file " * 10)


def _malformed_pages(db: Path) -> None:
    """A real SQLite header, pages overwritten: SQLite says 'database disk image is malformed'."""
    data = bytearray(db.read_bytes())
    for start in range(4096, len(data), 4096):
        data[start : start + 100] = b"\xff" * 100
    db.write_bytes(bytes(data))


DAMAGES: dict[str, Callable[[Path], None]] = {"not-a-database": _not_a_database, "malformed": _malformed_pages}
COMMANDS = [
    ["kpis", "daily"],
    ["kpis", "category"],
    ["kpis", "category", "Books", "--format", "json"],
    ["kpis", "rebuild"],
    ["batches"],
    ["batches", "--format", "jsonl"],
    ["replay", "--rejected"],
    ["run", "FILE"],
]


@pytest.fixture(params=sorted(DAMAGES))
def damaged_home(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    runner = CliRunner()
    result = runner.invoke(main, ["--home", str(home), "run", str(REPO / "data/sample/valid_order.csv")])
    assert result.exit_code == 0, result.output
    db = home / "orderpipe.db"
    with sqlite3.connect(db) as connection:  # everything into the main file: no -wal left
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    for side in ("orderpipe.db-wal", "orderpipe.db-shm"):
        (home / side).unlink(missing_ok=True)
    DAMAGES[request.param](db)
    return home


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_says_the_database_is_damaged(damaged_home: Path, tmp_path: Path, command: list[str]) -> None:
    args = [str(write(tmp_path / "new.csv", [order()])) if a == "FILE" else a for a in command]
    result = CliRunner().invoke(main, ["--home", str(damaged_home), "--log-format", "human", *args])
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"orderpipe: the database {damaged_home / 'orderpipe.db'} {DAMAGED} (SQLite: ")
    assert "restore it from a backup" in line
    assert "internal error" not in line and "Traceback" not in result.stderr


def test_the_api_says_the_same(damaged_home: Path) -> None:
    settings = load_settings(damaged_home, environ={})
    with running(create_app(lambda: open_reader(settings))) as url:
        for path in ("/api/kpis/daily", "/api/kpis/category", "/api/batches"):
            response = httpx.get(url + path)
            assert response.status_code == 503, (path, response.text)
            assert DAMAGED in response.json()["error"], path
