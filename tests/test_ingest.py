"""The byte-level prescan that decides whether the exact validator must run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from orderpipe import ingest, shaped
from orderpipe.core.shape import SEED_SHAPE, InputShape
from tests.conftest import order


@pytest.mark.parametrize(
    ("data", "needs_exact"),
    [
        (b"ab\r\ncd\r\n", False),
        (b"abc\r\ndef\r\n", False),  # a CRLF split across two chunks
        (b"abcd\r\nef", False),
        (b"abc\rdef\n", True),  # a bare CR inside a chunk
        (b"abcd\refgh", True),  # a bare CR at the end of a chunk
        (b"abc\r", True),
        (b"ab\x00c", True),
        (b"plain,text\n", False),
        # Quotes where Polars and Python's csv read alike: the fast path's
        (b'"a","b"\r\n"c","d"\r\n', False),
        (b'\xef\xbb\xbf"a",b\n', False),
        (b'"a""b","",""""\n', False),  # doubled quotes, an empty field, a lone quote
        (b'"a,b","c\nd"\n"e"', False),  # a comma and a line break inside quotes
        (b'x,"y"\n"z",w', False),
        # Quotes where they part: the exact validator's
        (b'a"b', True),  # inside an unquoted field
        (b'ab,c"\n', True),
        (b'"a"b,c\n', True),  # text after a closing quote
        (b'"a" ,b\n', True),
        (b' "a",b\n', True),  # white space before an opening quote
        (b'"a","b\n', True),  # left open
        (b'"a\r\nb",c\r\n', True),  # a CRLF inside quotes: Python reads LF
        (b'"a",b\rc\n', True),  # a bare CR, a NUL, a CR as the last byte, beside quotes
        (b'"a",\x00\n', True),
        (b'"a","b"\r', True),
    ],
)
@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 7, 1 << 20])
def test_fingerprint_flags_nuls_bare_crs_and_stray_quotes_across_chunks(
    data: bytes, needs_exact: bool, chunk: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "CHUNK", chunk)
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    fingerprint = ingest.fingerprint(path)
    assert fingerprint.needs_exact is needs_exact
    assert fingerprint.sha256 == hashlib.sha256(data).hexdigest()


def test_a_thread_beside_the_screen_never_prints_its_own_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted run removes the file under the hashing thread: the user must see the
    interruption, not that thread's traceback. The caller raises the thread's failure instead."""
    import threading

    from orderpipe.errors import InfrastructureError
    from orderpipe.ingest import Beside, inspect_file

    printed: list[object] = []
    monkeypatch.setattr(threading, "excepthook", printed.append)
    gone = tmp_path / "gone.csv"
    with pytest.raises(FileNotFoundError):  # the main thread's own read fails first
        inspect_file(gone, "gone.csv", ["Books"], tmp_path)
    failing = Beside(lambda: gone.read_bytes())
    with pytest.raises(InfrastructureError, match=r"gone\.csv: could not read the file"):
        failing.result("gone.csv")
    assert printed == []


# -- the batch's facts, cut as the screen reads ----------------------------------------------------
DAYS = ["2025-07-01", "2025-07-02", "2025-07-03"]


def eleven_orders(tmp_path: Path, last: str | None = None) -> Path:
    from tests.conftest import order, write

    rows = [order(f"O{i:02d}", date=DAYS[i % 3]) for i in range(11)]
    if last is not None:
        rows[-1] = last
    return write(tmp_path / "f.csv", rows)


def facts_of(inspection: ingest.Inspection) -> dict[tuple[str, int], list[str]]:
    """(first date, part) of each facts file → its order ids, in file order."""
    import polars as pl

    assert inspection.facts is not None
    return {
        (day, part): pl.read_parquet(path).get_column("order_id").to_list()
        for day, part, path in inspection.facts.files
    }


def parquet_files(folder: Path) -> set[Path]:
    return set(folder.glob("*.parquet"))


@pytest.mark.parametrize("handed_over", [1, 3, 4, 100])
def test_facts_are_cut_by_row_number_whatever_the_screen_hands_over(
    handed_over: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Part k holds rows 4k..4k+3 of the file, grouped by date (file order within a date), so a
    retry writes the same files under the same names."""
    monkeypatch.setattr(shaped, "SCREEN_ROWS", handed_over)
    monkeypatch.setattr(ingest, "BUNDLE_BELOW", 2)  # dates with 2+ rows in a slice: files of their own
    path = eleven_orders(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    inspection = ingest.inspect_file(path, "f.csv", ["Electronics"], work, rows_per_part=4)
    assert inspection.report.valid
    bundle = ingest.BUNDLE
    assert facts_of(inspection) == {
        ("2025-07-01", 0): ["O00", "O03"],
        ("2025-07-02", bundle + 0): ["O01", "O02"],  # one row each in the slice: bundled, by date
        ("2025-07-02", 1): ["O04", "O07"],
        ("2025-07-01", bundle + 1): ["O06", "O05"],
        ("2025-07-01", bundle + 2): ["O09", "O10", "O08"],
    }
    assert inspection.facts is not None
    assert inspection.facts.parts == {
        "2025-07-01": [0, bundle + 1, bundle + 2],
        "2025-07-02": [bundle + 0, 1, bundle + 2],
        "2025-07-03": [bundle + 0, bundle + 1, bundle + 2],
    }
    assert inspection.facts is not None
    assert inspection.facts.rows == 11
    assert parquet_files(work) == set(inspection.facts.paths)


@pytest.mark.parametrize(
    ("last", "valid"),
    [
        ("O10,C1,2025-07-02,Electronics,P1,0,10.00,false", False),  # a bad row after slices were cut
        ("O00,C1,2025-07-02,Electronics,P1,1,10.00,false", False),  # an order id seen slices before
        ('"O10",C1,2025-07-02,Electronics,P1,1,10.00,false', True),  # quotes: the exact validator decides
        (" O10,C1,2025-07-02,Electronics,P1,1,10.00,false", True),  # screened again, trimmed
    ],
    ids=["bad-row", "duplicate-id", "quoted", "untrimmed"],
)
def test_only_the_facts_of_the_verdict_are_left(
    last: str, valid: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files cut before a row fails, or before the exact validator takes over, are deleted: the
    scratch folder holds exactly the facts of the verdict."""
    monkeypatch.setattr(shaped, "SCREEN_ROWS", 2)
    path = eleven_orders(tmp_path, last)
    work = tmp_path / "work"
    work.mkdir()
    inspection = ingest.inspect_file(path, "f.csv", ["Electronics"], work, rows_per_part=4)
    assert inspection.report.valid is valid
    if not valid:
        assert inspection.facts is None
        assert parquet_files(work) == set()
        return
    assert inspection.facts is not None
    assert parquet_files(work) == set(inspection.facts.paths)
    assert sorted(i for ids in facts_of(inspection).values() for i in ids) == [f"O{i:02d}" for i in range(11)]


@pytest.mark.parametrize(
    ("spelled", "returned"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ("tRUE", True),
        ("fAlse", False),
    ],
)
def test_true_and_false_however_spelled_are_read_by_the_screen(
    spelled: str, returned: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual spellings as written; any other in the trimmed screen: never the exact validator."""
    import polars as pl

    from tests.conftest import order, write

    monkeypatch.setattr(ingest, "validate", lambda *a, **k: pytest.fail("the exact validator ran"))
    path = write(tmp_path / "f.csv", [order("O1", returned=spelled), order("O2", returned="false")])
    inspection = ingest.inspect_file(path, "f.csv", ["Electronics"], tmp_path)
    assert inspection.report.valid
    assert inspection.facts is not None
    facts = pl.read_parquet(inspection.facts.paths).sort("order_id")
    assert facts.get_column("returned").to_list() == [returned, False]


@pytest.mark.parametrize(
    ("rows", "valid"),
    [
        ([order("O1") + ",", order("O2") + ",note"], True),  # an empty last field: the fields are counted
        ([order("O1") + ",", order("O2")], False),  # a row short of the unused last column
        ([order("O1") + ",x,y", order("O2") + ",x"], False),  # a row with a field too many
    ],
    ids=["empty-last-field", "short-row", "long-row"],
)
def test_a_file_whose_last_field_is_empty_is_screened_and_its_fields_counted(
    rows: list[str], valid: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polars pads a short row with empty fields, so a row whose last field is empty might be
    short: the screen counts the file's commas against its lines, and the exact validator runs
    only when a row is short or long (to say which)."""
    from tests.conftest import HEADER, write

    calls: list[int] = []
    real = ingest.validate
    monkeypatch.setattr(ingest, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = write(tmp_path / "f.csv", rows, header=HEADER + ",note")
    report = ingest.inspect_file(path, "f.csv", ["Electronics"], tmp_path).report
    assert report.valid is valid
    assert calls == ([] if valid else [1])
    if not valid:
        assert [i.code for i in report.errors] == ["wrong-field-count"]


HEADER = "order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned\n"
CATEGORIES = ["Books", "Toys"]


def _validated(path: Path, shape: InputShape = SEED_SHAPE) -> tuple[list[str], list[tuple[str, int, int]]]:
    steps: list[tuple[str, int, int]] = []
    report = ingest.validate_file(
        path, path.name, CATEGORIES, shape, progress=lambda step, done, total: steps.append((step, done, total))
    )
    return [issue.code for issue in report.errors], steps


def test_validate_tells_its_progress_through_to_the_last_byte_on_either_path(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text(HEADER + "O1,C1,2025-07-06,Books,P1,1,10.00,false\n")
    codes, steps = _validated(plain)
    size = plain.stat().st_size
    assert codes == [] and steps[-1] == ("reading", size, size) and {s for s, _, _ in steps} == {"reading"}
    # Invalid, with a line break inside quotes (no row can be located by its line): the exact
    # validator reads the whole file again, and says so.
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(
        HEADER + 'O1,C1,2025-07-06,Books,"P\n1",1,10.00,false\nO2,C1,2025-07-06,Gadgets,P2,1,1.00,false\n'
    )
    codes, steps = _validated(quoted)
    size = quoted.stat().st_size
    assert codes == ["unknown-category"]
    assert ("reading", size, size) in steps and steps[-1] == ("validating", size, size)


def test_unknown_is_a_category_of_order_files_only_with_a_catalog(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "O1,C1,2025-07-06,Unknown,P1,1,10.00,false\n")
    assert _validated(path)[0] == ["unknown-category"]
    catalog = InputShape(catalog=True)  # order files then carry no category column at all
    path.write_text(HEADER.replace("category,", "") + "O1,C1,2025-07-06,P1,1,10.00,false\n")
    assert _validated(path, catalog)[0] == []


# -- what a stage leaves behind ---------------------------------------------------------------------
def test_discarding_staged_facts_deletes_every_file_they_were_cut_into(tmp_path: Path) -> None:
    path = eleven_orders(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    inspection = ingest.inspect_file(path, "f.csv", ["Electronics"], work, rows_per_part=4)
    assert inspection.facts is not None and len(parquet_files(work)) == len(inspection.facts.files) > 1
    inspection.facts.discard()
    assert parquet_files(work) == set()
    inspection.facts.discard()  # twice: nothing left to delete is no error


@pytest.mark.parametrize("catalog", [False, True], ids=["facts", "catalog"])
def test_rows_staged_but_not_validated_are_an_error_and_leave_no_file(catalog: bool, tmp_path: Path) -> None:
    """The exact validator's count and the stage's must agree: when they do not (a bug), the run
    fails as an infrastructure error and the staged files are deleted, whichever kind they are."""
    from orderpipe.core.report import ValidationReport
    from orderpipe.errors import InfrastructureError

    stage = ingest.TableStage(tmp_path) if catalog else ingest.FactSlices(tmp_path, rows_per_part=1)
    exact = ingest.ExactStage(stage, ingest._typing(["Books", "Electronics"], catalog))
    rows = [["P1", "Books"], ["P2", "Books"]] if catalog else [order(f"O{i}").split(",") for i in range(2)]
    for values in rows:
        exact.add(values)
    with pytest.raises(InfrastructureError, match=r"f\.csv: staged 2 rows but validated 3"):
        exact.inspection("batch", ValidationReport("f.csv", True, 3))
    assert parquet_files(tmp_path) == set()


def test_a_catalog_stage_writes_its_rows_sorted_by_product_and_starts_empty_again(tmp_path: Path) -> None:
    """The same rows give the same file whatever order they came in; a stage with no rows gives
    an empty file of the catalog's two string columns (what a reader of it expects)."""
    import polars as pl

    stage = ingest.TableStage(tmp_path)
    stage.add(pl.DataFrame({"product_id": ["P3", "P1"], "category": ["Toys", "Books"], "other": ["x", "y"]}))
    stage.add(pl.DataFrame({"product_id": ["P2"], "category": ["Garden"], "other": ["z"]}))
    first = stage.finish()
    frame = pl.read_parquet(first.path)
    assert first.rows == 3 and frame.columns == ["product_id", "category"]
    assert frame.rows() == [("P1", "Books"), ("P2", "Garden"), ("P3", "Toys")]
    again = stage.finish()  # the rows were handed over: none are kept
    empty = pl.read_parquet(again.path)
    assert again.rows == 0 and again.path != first.path
    assert empty.schema == pl.Schema({"product_id": pl.String(), "category": pl.String()}) and empty.height == 0
    stage.add(pl.DataFrame({"product_id": ["P9"], "category": ["Toys"]}))
    stage.discard()
    assert stage.finish().rows == 0
