"""The archive room on its own: uploads into input/, the names files take in processed/ and
rejected/, the moves, quarantine and its reports, over a real folder store and SQLite ledger
(no workflow around it)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from orderpipe.adapters.folder import FolderStore
from orderpipe.adapters.sqlite import SqliteDatabase, SqliteLedger
from orderpipe.adapters.workspace import BatchLocks, Workspace
from orderpipe.archive import Archive, Snapshot, sha256
from orderpipe.core.report import ValidationReport
from orderpipe.ports import Prefixes


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    home = tmp_path / "home"
    for folder in ("input", "processed", "rejected"):
        (home / folder).mkdir(parents=True)
    ledger = SqliteLedger(SqliteDatabase(home / "orderpipe.db"))
    work = home / ".work"
    return Archive(FolderStore(home), ledger, Prefixes(), Workspace(work), BatchLocks(work / "locks" / "archive"))


def local(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "files" / text[:8].strip()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def batch_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_an_upload_never_replaces_a_different_waiting_file_and_reuses_the_same_bytes(
    archive: Archive, tmp_path: Path
) -> None:
    first = archive.submit(local(tmp_path, "x.csv", "first"))
    second = archive.submit(local(tmp_path, "x.csv", "second"))
    again = archive.submit(local(tmp_path, "x.csv", "first"))
    assert (first, second, again) == ("input/x.csv", "input/x.2.csv", "input/x.csv")
    assert archive.store.get_bytes("input/x.2.csv") == b"second"
    # The user's name and the hash of their bytes, told once to the run that processes it.
    name, digest = archive.upload_of(second)
    assert name == "x.csv" and digest is not None and digest() == batch_of("second")
    assert archive.upload_of(second) == ("x.2.csv", None)  # any other run: the upload's own name


def test_earlier_uploads_of_a_name_come_first_oldest_first(archive: Archive, tmp_path: Path) -> None:
    older = archive.submit(local(tmp_path, "x.csv", "older"))
    archive.submit(local(tmp_path, "xy.csv", "another name"))
    newer = archive.submit(local(tmp_path, "x.csv", "newer"))
    assert [key for key, _ in archive.earlier_uploads(newer)] == [older]
    assert archive.earlier_uploads(older) == [(newer, archive.store.stat(newer))]  # waiting beside it


def test_an_archive_name_is_the_users_unless_another_file_holds_it(archive: Archive) -> None:
    assert archive.target("processed/", "x.csv", batch_of("a"), 1) == "processed/x.csv"
    archive.store.put_bytes("processed/x.csv", b"a")
    assert archive.target("processed/", "x.csv", batch_of("a"), 1) == "processed/x.csv"  # the same bytes
    other = batch_of("b")
    assert archive.target("processed/", "x.csv", other, 1) == f"processed/x.{other[:12]}.csv"
    long = "é" * 200 + ".csv"  # 404 bytes: shortened, tagged, with room for the report suffix
    shortened = archive.target("rejected/", long, other, 1).removeprefix("rejected/")
    assert len((shortened + ".report.json").encode()) <= 255 and other[:12] in shortened


def test_the_bytes_archived_are_the_bytes_processed(archive: Archive, tmp_path: Path) -> None:
    key = archive.submit(local(tmp_path, "x.csv", "read"))
    with archive.store.snapshot(key) as path:
        snapshot = Snapshot(path, archive.store.stat(key))
        archive.store.put_bytes(key, b"a new upload, replacing it meanwhile")
        assert archive.to_processed(key, "x.csv", batch_of("read"), snapshot) == "processed/x.csv"
    assert archive.store.get_bytes("processed/x.csv") == b"read"
    assert archive.store.get_bytes(key) == b"a new upload, replacing it meanwhile"  # left for its own run


def test_archiving_bytes_whose_upload_left_input_is_logged(
    archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: list[str] = []
    monkeypatch.setattr("orderpipe.archive.log_event", lambda event, level, **fields: logged.append(event))
    for name in ("kept.csv", "gone.csv"):
        key = archive.submit(local(tmp_path, name, name))
        with archive.store.snapshot(key) as path:
            snapshot = Snapshot(path, archive.store.stat(key))
            if name == "gone.csv":
                archive.store.delete(key)  # by hand, while it was processed
            assert archive.to_processed(key, name, batch_of(name), snapshot) == f"processed/{name}"
        assert archive.store.get_bytes(f"processed/{name}") == name.encode()
    assert logged == ["archive.input_gone"]  # the second only


def test_the_same_rejected_bytes_replaced_in_input_meanwhile_keep_their_quarantined_name(
    archive: Archive, tmp_path: Path
) -> None:
    """Already in rejected/ (quarantined before), read again, and replaced in input/ by a new
    upload of another size before the quarantine: the bytes read are the copy already there."""
    text = "order_id\nO1\n"
    report = ValidationReport("bad.csv", valid=False, rows=1)
    archive.store.put_bytes("rejected/bad.csv", text.encode())
    key = archive.submit(local(tmp_path, "bad.csv", text))
    with archive.store.snapshot(key) as path:
        snapshot = Snapshot(path, archive.store.stat(key))
        archive.store.put_bytes(key, b"a new upload of another size")
        assert archive.reject(key, "bad.csv", report, batch_of(text), snapshot) == "rejected/bad.csv"
    assert sorted(archive.store.list("rejected/")) == ["rejected/bad.csv", "rejected/bad.csv.report.json"]
    assert archive.store.get_bytes(key) == b"a new upload of another size"  # left for its own run


def test_a_rejected_file_is_quarantined_with_its_report_and_found_again(archive: Archive, tmp_path: Path) -> None:
    text = "order_id\nO1\n"
    key = archive.submit(local(tmp_path, "bad.csv", text))
    with archive.store.snapshot(key) as path:
        report = ValidationReport("bad.csv", valid=False, rows=1)
        kept = archive.reject(key, "bad.csv", report, batch_of(text), Snapshot(path, archive.store.stat(key)))
    assert kept == "rejected/bad.csv" and not archive.store.exists(key)
    assert archive.report_of(kept) == {**report.to_dict(), "batch_id": batch_of(text), "checked_with": ""}
    assert archive.quarantined() == [kept]
    assert archive.quarantined(batch_of(text)[:8]) == [kept] and archive.quarantined("0000") == []
    archive.store.put_bytes(kept + ".report.json", b"{ damaged")
    assert archive.report_of(kept) is None
    assert list(archive.quarantined_batches()) == [(kept, batch_of(text))]  # by the hash of its bytes


def test_a_failed_file_is_quarantined_with_its_reason_unless_it_is_gone(archive: Archive, tmp_path: Path) -> None:
    key = archive.submit(local(tmp_path, "odd.csv", "odd"))
    assert archive.quarantine_failed("input/gone.csv", "gone.csv", "", "ValueError: x") == ""
    kept = archive.quarantine_failed(key, "odd.csv", batch_of("odd"), "ValueError: a bug")
    assert kept == "rejected/odd.csv"
    report = json.loads(archive.store.get_bytes(kept + ".report.json"))
    assert (report["status"], report["reason"], report["batch_id"]) == ("failed", "ValueError: a bug", batch_of("odd"))
    assert report["hint"].endswith(f"`orderpipe replay {batch_of('odd')[:12]}` runs it again")


def test_a_replay_copies_back_then_tidies_and_a_settled_report_goes(archive: Archive, tmp_path: Path) -> None:
    text = "a,b\n1,2\n"
    archive.store.put_bytes("rejected/r.csv", text.encode())
    body = {"file": "r.csv", "batch_id": batch_of(text)}
    archive.store.put_bytes("rejected/r.csv.report.json", json.dumps(body).encode())
    assert archive.requeue("rejected/r.csv") == "input/r.csv"
    assert archive.store.exists("rejected/r.csv")  # until the new outcome is recorded
    archive.drop_quarantined("rejected/r.csv")
    assert list(archive.store.list("rejected/")) == []
    # A report left without its file: removed once its batch is done, kept before.
    archive.store.put_bytes("rejected/r.csv.report.json", json.dumps(body).encode())
    record = archive.ledger.commit(batch_of(text), "r.csv", 1, {"2025-07-06": [0]})
    assert archive.remove_settled_reports() == 0
    archive.ledger.mark_done(record.batch_id)
    assert archive.remove_settled_reports() == 1
    assert list(archive.store.list("rejected/")) == []


def test_settling_a_counted_quarantined_file_moves_it_to_processed(archive: Archive) -> None:
    archive.store.put_bytes("rejected/s.csv", b"counted")
    archive.store.put_bytes("rejected/s.csv.report.json", b"{}")
    assert archive.settle("rejected/s.csv", "s.csv", batch_of("counted")) == "processed/s.csv"
    assert list(archive.store.list("rejected/")) == []
    assert archive.store.get_bytes("processed/s.csv") == b"counted"


def test_a_batch_id_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"x" * (9 << 20))  # more than one read of 8 MB
    assert sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_earlier_uploads_are_the_names_family_only_in_the_order_they_landed(archive: Archive, tmp_path: Path) -> None:
    first = archive.submit(local(tmp_path, "x.csv", "first"))
    second = archive.submit(local(tmp_path, "x.csv", "second"))
    latest = archive.submit(local(tmp_path, "x.csv", "latest"))
    assert (first, second, latest) == ("input/x.csv", "input/x.2.csv", "input/x.3.csv")
    # Landed in that order (mtimes apart), which is not the order of their names.
    for n, key in enumerate((first, second, latest)):
        os.utime(archive.store.path(key), (1_000_000 + n, 1_000_000 + n))  # type: ignore[attr-defined]
    # Not of the family: `x.02.csv` (listed before them), and a file in a folder under input/.
    archive.store.put_bytes("input/x.02.csv", b"not an upload of x.csv")
    archive.store.put_bytes("input/x.old/x.csv", b"in a folder")
    assert [key for key, _ in archive.earlier_uploads(latest)] == [first, second]
    # Landed in the same second: then by name.
    for key in (first, second):
        os.utime(archive.store.path(key), (1_000_000, 1_000_000))  # type: ignore[attr-defined]
    assert [key for key, _ in archive.earlier_uploads(latest)] == [second, first]


def test_only_a_file_with_its_report_is_quarantined_and_a_damaged_report_is_logged_once(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: list[str] = []
    monkeypatch.setattr("orderpipe.archive.log_event", lambda event, level, **fields: logged.append(event))
    archive.store.put_bytes("rejected/a.csv.report.json", b'{"batch_id": "aaaa"}')  # its file is gone
    archive.store.put_bytes("rejected/b.csv", b"unknown bytes")  # failed before they were read
    archive.store.put_bytes("rejected/b.csv.report.json", json.dumps({"file": "b.csv", "batch_id": ""}).encode())
    archive.store.put_bytes("rejected/c.csv", b"no report beside it")  # put there by hand
    archive.store.put_bytes("rejected/d.csv", b"damaged")
    archive.store.put_bytes("rejected/d.csv.report.json", b"{ damaged")
    assert list(archive.quarantined_batches()) == [("rejected/b.csv", ""), ("rejected/d.csv", batch_of("damaged"))]
    assert logged == []  # only `quarantined`, what `replay` lists, warns of a damaged report
    assert archive.quarantined() == ["rejected/b.csv", "rejected/d.csv"]
    assert archive.quarantined(batch_of("damaged")[:8]) == ["rejected/d.csv"]
    assert logged == ["replay.damaged_report"] * 2  # once a listing


def test_only_reports_left_alone_by_a_finished_replay_are_removed(archive: Archive) -> None:
    done = []
    for name in ("b", "c", "d"):
        record = archive.ledger.commit(batch_of(name), f"{name}.csv", 1, {"2025-07-06": [0]})
        archive.ledger.mark_done(record.batch_id)
        done.append(record.batch_id)
    # a: still quarantined (listed first); b: quarantined too, although its batch is done (the
    # same bytes counted under another name); c and d: their replays were interrupted as they tidied up.
    for name in ("a", "b"):
        archive.store.put_bytes(f"rejected/{name}.csv", name.encode())
    for name, batch_id in zip("abcd", [batch_of("a"), *done], strict=True):
        archive.store.put_bytes(f"rejected/{name}.csv.report.json", json.dumps({"batch_id": batch_id}).encode())
    assert archive.remove_settled_reports() == 2
    assert sorted(archive.store.list("rejected/")) == [
        "rejected/a.csv",
        "rejected/a.csv.report.json",
        "rejected/b.csv",
        "rejected/b.csv.report.json",
    ]
