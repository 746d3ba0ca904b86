"""Relational grain: headers, lines and the catalog in files of their own, through the pipeline,
held to the independent reference (`tests/lab_reference.py`) in every order of arrival."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import pytest

from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from orderpipe.core.relational import describe_waiting
from orderpipe.errors import InfrastructureError
from orderpipe.ports import FactEntry
from orderpipe.presets import PRESETS
from orderpipe.relational import READS, read_tables, with_tables
from orderpipe.status import home_status, status_lines
from orderpipe.workflow import Pipeline
from tests.conftest import MUTATION, run_file, snapshot
from tests.lab_reference import LabData, arrival_orders
from tests.test_lab_reference import HEADERS, ITEMS, PEER, PRODUCTS
from tests.test_lab_reference import write as write_in
from tests.test_line_items import comparable


def lab_pipeline(home: Path, environ: dict[str, str] | None = None) -> Pipeline:
    home.mkdir(parents=True, exist_ok=True)
    (home / "orderpipe.toml").write_text(PRESETS["lab"])
    return open_pipeline(load_settings(home, environ=environ or {}))


@pytest.fixture(params=["local"] if MUTATION else ["local", "aws"])
def relational(request: pytest.FixtureRequest, tmp_path: Path) -> Pipeline:
    """The lab preset on both adapter sets: folder + SQLite, S3 + DynamoDB on moto."""
    env = request.getfixturevalue("aws_env") if request.param == "aws" else {}
    return lab_pipeline(tmp_path / "home", env)


def write(folder: Path, name: str, header: str, rows: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_in(folder, name, header, rows)


def run_all(pipeline: Pipeline, paths: list[Path]) -> None:
    for path in paths:
        outcome = run_file(pipeline, path)
        assert outcome.status == "accepted", outcome.message


def hand_files(folder: Path) -> list[Path]:
    """O1 (two lines, one of a product the catalog lacks), O2 (returned), O3 (no line yet), and
    a line of O9, whose header has not come (as in tests/test_lab_reference.py)."""
    return [
        write(folder, "orders_part1.csv", HEADERS, [
            "O1,7,delivered,2025-03-01T10:00:00,,,,2",
            "O2,8,returned,2025-03-01T23:59:59,2025-03-05T10:00:00,,,1",
            "O3,7,delivered,2025-03-02T00:00:00,,,,1",
        ]),
        write(folder, "order_items_part1.csv", ITEMS, [
            "1,O1,7,P1,delivered,2025-03-01T10:05:00,,,,10.00",
            "2,O1,7,P2,delivered,2025-03-01T10:05:00,,,,5.50",
            "3,O2,8,P1,returned,2025-03-02T00:10:00,,,,20.00",
            "4,O9,9,P1,delivered,2025-03-02T08:00:00,,,,1.00",
        ]),
        write(folder, "products.csv", PRODUCTS, ["P1,S1,1.00,Books,A book,B,2.00,D"]),
    ]  # fmt: skip


def daily_of(pipeline: Pipeline) -> list[tuple[object, ...]]:
    fields = ("order_date", "total_orders", "total_revenue", "total_items_sold", "return_rate", "unique_customers")
    return [tuple(d[f] for f in fields) for d in pipeline.kpis.daily(None, None)]


def test_an_order_counts_once_its_header_and_a_line_are_in_whatever_came_first(tmp_path: Path) -> None:
    files = hand_files(tmp_path / "files")
    for n, order in enumerate(itertools.permutations(files)):
        pipeline = lab_pipeline(tmp_path / f"home-{n}")
        run_all(pipeline, list(order))
        assert daily_of(pipeline) == [("2025-03-01", 2, 35.5, 3, 0.5, 2)], [p.name for p in order]
        by_category = pipeline.kpis.category(None, None, None)
        assert sorted((c["category"], c["orders"], c["daily_revenue"]) for c in by_category) == [
            ("Books", 2, 30.0),
            ("Unknown", 1, 5.5),
        ]
        assert comparable(snapshot(pipeline)) == comparable(LabData().add_all(order).kpis())


def test_corrections_replace_headers_lines_and_products_on_both_backends(relational: Pipeline, tmp_path: Path) -> None:
    """O2's header sent again (no longer returned), O9's header at last (its waiting line
    counts), line 2 at a new price, P2 into the catalog; then O1 moved to another date and line
    3 moved to O9."""
    folder = tmp_path / "files"
    first = hand_files(folder)
    run_all(relational, [first[1], first[0], first[2]])  # lines first
    second = [
        write(folder, "orders_part2.csv", HEADERS, [
            "O2,8,delivered,2025-03-01T23:59:59,,,,1",
            "O9,9,delivered,2025-03-02T07:00:00,,,,3",
        ]),
        write(folder, "order_items_part2.csv", ITEMS, ["2,O1,7,P2,delivered,2025-03-01T10:05:00,,,,6.50"]),
        write(folder, "products_2.csv", PRODUCTS, ["P2,S2,1.00,Toys,A toy,B,2.00,D"]),
    ]  # fmt: skip
    run_all(relational, second)
    assert daily_of(relational) == [("2025-03-01", 2, 36.5, 3, 0.0, 2), ("2025-03-02", 1, 1.0, 1, 0.0, 1)]
    assert comparable(snapshot(relational)) == comparable(LabData().add_all([*first, *second]).kpis())
    moved = [write(folder, "orders_part3.csv", HEADERS, ["O1,7,delivered,2025-03-04T10:00:00,,,,2"])]
    run_all(relational, moved)  # O1 leaves 03-01 for 03-04
    assert daily_of(relational) == [
        ("2025-03-01", 1, 20.0, 1, 0.0, 1),
        ("2025-03-02", 1, 1.0, 1, 0.0, 1),
        ("2025-03-04", 1, 16.5, 2, 0.0, 1),
    ]
    line_moved = [write(folder, "order_items_part3.csv", ITEMS, ["3,O9,8,P1,returned,2025-03-02T00:10:00,,,,20.00"])]
    run_all(relational, line_moved)  # line 3 leaves O2 (03-01 keeps no order) for O9
    assert daily_of(relational) == [("2025-03-02", 1, 21.0, 2, 0.0, 1), ("2025-03-04", 1, 16.5, 2, 0.0, 1)]
    everything = [*first, *second, *moved, *line_moved]
    assert comparable(snapshot(relational)) == comparable(LabData().add_all(everything).kpis())


def lab_like(folder: Path, seed: int) -> list[Path]:
    """A dataset shaped like the lab's, small: headers and items in parts, some sent again with
    another status, date, price or order, items whose order never comes, and two catalogs."""
    rng = random.Random(seed)
    orders = [f"{n}" for n in range(1, 61)]
    header_rows = {
        o: f"{o},{rng.randint(1, 25)},{rng.choice(['delivered', 'returned', 'shipped'])},"
        f"2025-03-{rng.randint(1, 5):02d}T{rng.randint(0, 23):02d}:15:00,,,,{rng.randint(1, 3)}"
        for o in orders
    }
    items = []
    for n in range(1, 151):
        order = rng.choice([*orders, "999"])  # 999: a header that never comes
        price = f"{rng.randint(1, 9999) / 100:.2f}"
        items.append(f"{n},{order},0,P{rng.randint(1, 12)},x,2025-03-01T00:00:00,,,,{price}")
    resent_headers = [
        f"{o},{rng.randint(1, 25)},{rng.choice(['delivered', 'returned'])},2025-03-0{rng.randint(1, 5)}T12:00:00,,,,2"
        for o in rng.sample(orders, 10)
    ]
    resent_items = [
        f"{n},{rng.choice(orders)},0,P{rng.randint(1, 12)},x,2025-03-01T00:00:00,,,,{rng.randint(1, 500)}.5"
        for n in rng.sample(range(1, 151), 15)
    ]
    catalog = [f"P{p},S,1,{rng.choice(['Books', 'Toys', 'Beauty'])},n,b,2,d" for p in range(1, 10)]
    later_catalog = [f"P{p},S,1,{rng.choice(['Books', 'Sports'])},n,b,2,d" for p in range(5, 13)]
    headers = list(header_rows.values())
    return [
        write(folder, "orders_part1.csv", HEADERS, headers[:30]),
        write(folder, "orders_part2.csv", HEADERS, headers[30:]),
        write(folder, "order_items_part1.csv", ITEMS, items[:70]),
        write(folder, "order_items_part2.csv", ITEMS, items[70:]),
        write(folder, "orders_part3.csv", HEADERS, resent_headers),
        write(folder, "order_items_part3.csv", ITEMS, resent_items),
        write(folder, "products.csv", PRODUCTS, catalog),
        write(folder, "products_2.csv", PRODUCTS, later_catalog),
    ]


def test_a_lab_like_dataset_matches_the_reference_in_any_order_of_arrival(tmp_path: Path) -> None:
    """Re-sent headers and items count in the order their files land (a later file wins), so
    every order of arrival is compared with the reference fed in that same order."""
    rng = random.Random(7)
    for n in range(3 if MUTATION else 6):
        files = lab_like(tmp_path / f"files-{n}", seed=n)
        rng.shuffle(files)
        pipeline = lab_pipeline(tmp_path / f"home-{n}")
        run_all(pipeline, files)
        expected = LabData().add_all(files).kpis()
        assert expected[0], "the dataset counts some orders"
        assert comparable(snapshot(pipeline)) == comparable(expected), [f.name for f in files]


def test_a_header_file_with_a_bad_row_is_rejected_with_its_line_and_column(tmp_path: Path) -> None:
    pipeline = lab_pipeline(tmp_path / "home")
    rows = ["O1,7,delivered,2025-03-01T10:00:00,,,,2", "O2,,returned,never,,,,x"]
    bad = write(tmp_path, "orders_part1.csv", HEADERS, rows)
    outcome = run_file(pipeline, bad)
    assert outcome.status == "rejected"
    found = {(i.code, s.line, s.column) for i in outcome.report.errors for s in i.samples}
    assert found == {
        ("blank-value", 3, "user_id"),
        ("invalid-timestamp", 3, "created_at"),
        ("invalid-integer", 3, "num_of_item"),
    }
    assert pipeline.kpis.daily(None, None) == []
    lines = write(tmp_path, "order_items_part1.csv", ITEMS, ["1,O1,7,P1,x,t,,,,1.00", "1,O1,7,P1,x,t,,,,0"])
    outcome = run_file(pipeline, lines)
    found = {(i.code, s.line, s.column) for i in outcome.report.errors for s in i.samples}
    assert outcome.status == "rejected" and found == {("not-positive", 3, "sale_price"), ("duplicate-line", 3, "id")}


def test_a_file_whose_name_places_it_nowhere_is_rejected_saying_how_to_name_it(tmp_path: Path) -> None:
    pipeline = lab_pipeline(tmp_path / "home")
    outcome = run_file(pipeline, write(tmp_path, "march.csv", HEADERS, ["O1,7,delivered,2025-03-01T10:00:00,,,,2"]))
    assert outcome.status == "rejected"
    (issue,) = outcome.report.errors
    assert (issue.code, issue.count, outcome.report.rows) == ("unknown-file", 1, 0)
    (sample,) = issue.samples
    assert (sample.line, sample.column, sample.value) == (1, None, None)
    assert sample.message == (
        "the name does not say what the file holds: name header files like 'orders*.csv', line files like"
        " 'order_items*.csv' and catalog files like 'products*.csv' (or change input.header_files,"
        " input.line_files, input.catalog_files)"
    )
    assert outcome.archived_as.startswith("rejected/")


@pytest.mark.skipif(not PEER.is_dir(), reason="the lab's dataset is not beside the repository")
@pytest.mark.slow
def test_the_labs_dataset_through_the_pipeline_matches_the_reference_in_every_order(tmp_path: Path) -> None:
    orders = arrival_orders(PEER)
    expected = comparable(LabData().add_all(orders["headers first"]).kpis())
    for name, paths in orders.items():
        pipeline = lab_pipeline(tmp_path / name.replace(" ", "-"))
        run_all(pipeline, paths)
        assert comparable(snapshot(pipeline)) == expected, name
    day = next(d for d in pipeline.kpis.daily(None, None) if d["order_date"] == "2025-03-08")
    assert (day["total_orders"], day["total_revenue"], day["total_items_sold"]) == (286, Decimal("69188.47"), 870)
    assert (day["return_rate"], day["unique_customers"]) == (Decimal("0.237762"), 281)


def test_status_says_what_waits_for_its_header_and_what_is_incomplete(tmp_path: Path) -> None:
    home, folder = tmp_path / "home", tmp_path / "files"
    pipeline = lab_pipeline(home)
    first = hand_files(folder)
    lines = run_file(pipeline, first[1])  # before any header: every line waits
    assert lines.message == (
        "order_items_part1.csv: accepted, 4 order lines; recomputed 0 date(s);"
        " 4 lines of 3 orders waiting for the header"
    )
    run_all(pipeline, [first[0], first[2]])
    (last,) = pipeline.ledger.runs(limit=1)
    assert last.message.endswith("; 1 line of 1 order waiting for the header; 1 header without a line yet")
    status = home_status(load_settings(home, environ={}))
    assert status["unjoined"] == LabData().add_all(first).waiting()
    assert status["unjoined"] == {
        "waiting_lines": 1,
        "waiting_orders": 1,
        "orders_without_lines": 1,
        "incomplete_orders": 0,
    }
    assert "unjoined   1 line of 1 order waiting for the header; 1 header without a line yet" in status_lines(status)
    late = write(folder, "orders_part2.csv", HEADERS, ["O9,9,delivered,2025-03-02T07:00:00,,,,3"])
    run_all(pipeline, [late])
    status = home_status(load_settings(home, environ={}))
    assert status["unjoined"] == LabData().add_all([*first, late]).waiting()
    assert status["unjoined"]["incomplete_orders"] == 1 and status["unjoined"]["waiting_lines"] == 0
    assert daily_of(pipeline)[-1] == ("2025-03-02", 1, 1.0, 1, 0.0, 1)  # the waiting line counts now


def test_retracting_a_header_or_line_batch_is_refused_saying_how_to_correct_instead(tmp_path: Path) -> None:
    from tests.test_retract import cli

    home = tmp_path / "home"
    pipeline = lab_pipeline(home)
    files = hand_files(tmp_path / "files")
    run_all(pipeline, files)
    before = snapshot(pipeline)
    catalog = next(r.batch_id for r in pipeline.ledger.runs() if r.file == "products.csv")
    dry = cli(home, "batches", "retract", catalog[:12], "--dry-run")  # the lines move to Unknown
    assert dry.exit_code == 0 and "total_orders" not in dry.output, dry.output
    assert "Books.orders 2 → -" in dry.output and "Unknown.orders 1 → 2 (+1)" in dry.output
    assert snapshot(pipeline) == before
    for batch in pipeline.ledger.runs():
        result = cli(home, "batches", "retract", batch.batch_id[:12])
        if batch.file == "products.csv":
            assert result.exit_code == 0, result.output
            continue
        assert result.exit_code == 2, result.output
        assert " ".join(result.output.split()) == (
            f"orderpipe: batch {batch.batch_id[:12]} ({batch.file}) holds order headers or lines, which cannot be"
            " retracted yet: send a file that corrects them instead (a header sent again replaces its order's, a"
            " line sent again with its line id replaces it)"
        )
    # The catalog's retraction puts every line back in `Unknown`; the daily KPIs stay.
    assert snapshot(pipeline)[0] == before[0]
    assert comparable(snapshot(pipeline)) == comparable(LabData().add_all(files[:2]).kpis())


def test_compacted_header_and_line_tables_keep_the_kpis_and_read_few_files(tmp_path: Path) -> None:
    """Each table merged once it has more than two entries (the latest row per id among them):
    the KPIs stay those of the reference, and at most three files per table remain."""
    files = lab_like(tmp_path / "files", seed=11)
    more = [
        write(tmp_path / "files", f"order_items_part{n}.csv", ITEMS, [f"{n},{n},0,P1,x,t,,,,{n}.25"])
        for n in range(4, 9)
    ]
    pipeline = lab_pipeline(tmp_path / "home")
    pipeline.warehouse.compact_after = 2
    run_all(pipeline, [*files, *more])
    assert comparable(snapshot(pipeline)) == comparable(LabData().add_all([*files, *more]).kpis())
    entries = pipeline.ledger.fact_entries(["headers", "lines", "catalog"])
    assert all(len(entries[k]) <= 3 for k in ("headers", "lines", "catalog"))
    assert all(any(e.batch_id.startswith("compact-") for e in entries[k]) for k in ("headers", "lines"))
    named = {f"{k}/batch-{e.batch_id}.parquet" for k in ("headers", "lines") for e in entries[k]}
    stored = {k.removeprefix("warehouse/orders/") for k in pipeline.store.list("warehouse/orders/")}
    assert {k for k in stored if k.startswith(("headers/", "lines/"))} == named


def test_under_a_warehouse_prefix_of_its_own_every_table_is_read_and_merged_there(tmp_path: Path) -> None:
    """The tables' files, their merges, a catalog change, moved headers and lines, all under
    the configured prefix; nothing under the default one."""
    files = lab_like(tmp_path / "files", seed=5)
    more = [
        write(tmp_path / "files", f"order_items_part{n}.csv", ITEMS, [f"{n},{n},0,P{n},x,t,,,,{n}.25"])
        for n in range(4, 9)
    ]
    pipeline = lab_pipeline(tmp_path / "home", {"ORDERPIPE_PREFIXES_WAREHOUSE": "facts/daily/"})
    pipeline.warehouse.compact_after = 2
    run_all(pipeline, [*files, *more])
    assert comparable(snapshot(pipeline)) == comparable(LabData().add_all([*files, *more]).kpis())
    stored = list(pipeline.store.list("facts/daily/"))
    assert any(k.startswith("facts/daily/lines/batch-compact-") for k in stored)
    assert any(k.startswith("facts/daily/headers/") for k in stored)
    entries = pipeline.ledger.fact_entries(["headers", "lines"])
    named = {f"facts/daily/{k}/batch-{e.batch_id}.parquet" for k in ("headers", "lines") for e in entries[k]}
    assert {k for k in stored if k.startswith(("facts/daily/headers/", "facts/daily/lines/"))} == named, "merged: gone"
    assert list(pipeline.store.list("warehouse/")) == []
    assert (
        home_status(load_settings(tmp_path / "home", environ={"ORDERPIPE_PREFIXES_WAREHOUSE": "facts/daily/"}))[
            "unjoined"
        ]
        == LabData().add_all([*files, *more]).waiting()
    )


def test_a_header_that_does_not_say_how_many_lines_is_never_incomplete(tmp_path: Path) -> None:
    pipeline = lab_pipeline(tmp_path / "home")
    headers = write(
        tmp_path,
        "orders_part1.csv",
        HEADERS,
        ["O1,7,delivered,2025-03-01T10:00:00,,,,", "O2,8,x,2025-03-01T11:00:00,,,,3"],
    )
    items = write(tmp_path, "order_items_part1.csv", ITEMS, ["1,O1,7,P1,x,t,,,,10.00", "2,O2,8,P1,x,t,,,,1.00"])
    run_all(pipeline, [headers, items])
    assert pipeline.engine.unjoined == {
        "waiting_lines": 0,
        "waiting_orders": 0,
        "orders_without_lines": 0,
        "incomplete_orders": 1,
    }
    assert daily_of(pipeline) == [("2025-03-01", 2, 11.0, 2, 0.0, 2)]


def test_what_waits_is_said_in_words_with_only_the_counts_that_are_not_zero() -> None:
    counts = {"waiting_lines": 0, "waiting_orders": 0, "orders_without_lines": 0, "incomplete_orders": 0}
    assert describe_waiting(counts) == "nothing waits: every line has its header, every header a line"
    assert (
        describe_waiting(counts | {"incomplete_orders": 2})
        == "2 orders with fewer lines than the header says (counted)"
    )
    assert describe_waiting(counts | {"waiting_lines": 1, "waiting_orders": 1, "orders_without_lines": 3}) == (
        "1 line of 1 order waiting for the header; 3 headers without a line yet"
    )


def test_a_rejected_rows_message_says_which_column_feeds_which_field(tmp_path: Path) -> None:
    pipeline = lab_pipeline(tmp_path / "home")
    outcome = run_file(
        pipeline, write(tmp_path, "orders_part1.csv", HEADERS, ["O1,,delivered,2025-03-01T10:00:00,,,,2"])
    )
    assert outcome.report is not None
    (issue,) = outcome.report.errors
    (sample,) = issue.samples
    assert (sample.line, sample.column, sample.value) == (2, "user_id", "")
    assert sample.message == "customer_id is empty ('user_id' is read as customer_id)"
    lines = write(tmp_path, "order_items_part1.csv", "id,order_id,product_id,sale_price", ["1,,P1,2.00"])
    outcome = run_file(pipeline, lines)  # a column read under its own name: no note
    assert outcome.report is not None
    assert outcome.report.errors[0].samples[0].message == "order_id is empty"


def test_work_on_the_tables_is_done_again_only_when_they_changed_under_it(tmp_path: Path) -> None:
    """A compaction that removes a file under a read: the work is done again on a new read. A
    failure on tables that did not change is a real one, raised at once."""
    pipeline = lab_pipeline(tmp_path / "home")
    headers, items, _ = hand_files(tmp_path / "files")
    run_all(pipeline, [headers])
    calls: list[int] = []

    def changing(read: Mapping[str, list[FactEntry]]) -> int:
        calls.append(len(read["lines"]))
        if len(calls) == 1:
            run_all(pipeline, [items])  # the tables change meanwhile
            raise OSError("no such object")
        return len(read["lines"])

    assert with_tables(pipeline.ledger, ["headers", "lines"], changing) == 1 and calls == [0, 1]

    def failing(read: Mapping[str, list[FactEntry]]) -> int:
        calls.append(-1)
        raise OSError("disk gone")

    calls.clear()
    with pytest.raises(OSError, match="disk gone"):
        with_tables(pipeline.ledger, ["headers", "lines"], failing)
    assert calls == [-1]


def test_tables_that_keep_changing_are_read_a_bounded_number_of_times() -> None:
    reads = itertools.count()

    class Busy:
        def fact_entries(self, keys: list[str]) -> dict[str, list[FactEntry]]:
            return {"lines": [FactEntry("lines", f"b{next(reads)}", 1, (0,))]}

    with pytest.raises(InfrastructureError) as raised:
        read_tables(Busy(), ["lines"])
    said = "header and line batches kept committing while the KPIs were read; it will be read again"
    assert str(raised.value) == said
    assert next(reads) == READS + 1


def test_a_read_that_caught_a_merge_half_switched_is_read_again() -> None:
    """A DynamoDB query is not isolated from a transaction: it may see a merged entry beside
    the last entry it replaces (one seq twice), even twice in a row. Such a read never counts."""
    merged = [FactEntry("lines", "compact-000000000002", 2, (0,)), FactEntry("lines", "b3", 3, (0,))]
    half = [FactEntry("lines", "compact-000000000002", 2, (0,)), FactEntry("lines", "b2", 2, (0,)), merged[1]]
    reads = iter([half, half, half, merged, merged])

    class Switching:
        def fact_entries(self, keys: list[str]) -> dict[str, list[FactEntry]]:
            return {"lines": next(reads)}

    assert read_tables(Switching(), ["lines"]) == {"lines": merged}


def test_a_header_with_a_date_outside_the_window_is_rejected_a_line_file_has_no_dates(tmp_path: Path) -> None:
    pipeline = lab_pipeline(tmp_path / "home")
    late = write(tmp_path, "orders_part1.csv", HEADERS, ["O1,7,delivered,2999-03-01T10:00:00,,,,1"])
    outcome = run_file(pipeline, late)
    assert outcome.status == "rejected" and outcome.report is not None
    assert [(i.code, i.samples[0].line, i.samples[0].column) for i in outcome.report.errors] == [
        ("implausible-date", 2, "created_at")
    ]
    lines = run_file(pipeline, write(tmp_path, "order_items_part1.csv", ITEMS, ["1,O1,7,P1,x,2999-01-01,,,,1.00"]))
    assert lines.status == "accepted"  # an item's own dates are not read


def test_reading_a_relational_file_reports_its_bytes_then_its_validation(tmp_path: Path) -> None:
    """A plainly valid file is read once (its bytes, by Polars); one the exact rules must read
    is validated after."""
    from orderpipe.core.shape import InputShape
    from orderpipe.ingest import inspect_file

    shape = InputShape(grain="relational", catalog=True, columns=(("line_id", "id"), ("unit_price", "sale_price")))
    work = tmp_path / "work"
    work.mkdir()
    for rows, valid, validated in ((["1,O1,7,P1,x,t,,,,1.00"], True, False), (["1,O1,7,P1,x,t,,,,0"], False, True)):
        path = write(tmp_path / str(valid), "order_items_part1.csv", ITEMS, rows)
        size = path.stat().st_size
        heard: list[tuple[str, int, int]] = []
        inspection = inspect_file(
            path, path.name, (), work, shape=shape, progress=lambda *step, seen=heard: seen.append(step)
        )
        assert inspection.report.valid is valid and (inspection.part is not None) is valid
        assert heard[0] == ("reading", 0, size) and ("reading", size, size) in heard
        assert (heard[-1] == ("validating", size, size)) is validated


def test_a_table_file_no_entry_names_is_deleted_by_the_next_compaction_once_old(tmp_path: Path) -> None:
    """A merge written but never switched (a kill in between, or a lost race) is as large as
    the table: the next compaction of the table deletes it once it is older than any run."""
    import os
    import time

    from orderpipe.warehouse import STRAY_FACTS_AGE

    home = tmp_path / "home"
    pipeline = lab_pipeline(home)
    pipeline.warehouse.compact_after = 2
    old = home / "warehouse" / "orders" / "lines" / "batch-compact-000000000777.parquet"
    young = old.with_name("batch-compact-000000000778.parquet")
    for path in (old, young):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"a merge no entry names")
    then = time.time() - STRAY_FACTS_AGE - 60
    os.utime(old, (then, then))
    files = lab_like(tmp_path / "files", seed=2)
    run_all(pipeline, files)
    assert not old.exists() and young.exists()
    assert comparable(snapshot(pipeline)) == comparable(LabData().add_all(files).kpis())
    named = {f"batch-{e.batch_id}.parquet" for e in pipeline.ledger.fact_entries(["lines"])["lines"]}
    assert {p.name for p in old.parent.iterdir()} == named | {young.name}


def test_table_compaction_leaves_an_unfinished_line_batch_alone(tmp_path: Path) -> None:
    """A line batch committed but not finished (its process killed after the commit) keeps its
    own entry through a compaction of the table, so it still finds the dates it changed."""
    folder = tmp_path / "files"
    pipeline = lab_pipeline(tmp_path / "home")
    pipeline.warehouse.compact_after = 1
    done = [
        write(folder, "orders_1.csv", HEADERS, ["O1,7,delivered,2025-03-01T10:00:00,,,,3"]),
        *(write(folder, f"order_items_{n}.csv", ITEMS, [f"{n},O1,7,P1,x,t,,,,{n}.00"]) for n in range(1, 3)),
    ]
    run_all(pipeline, done)
    late = write(folder, "order_items_3.csv", ITEMS, ["3,O1,7,P1,x,t,,,,3.00"])
    key = pipeline.submit(late)
    with pipeline.inspected(key) as (inspection, _scratch, _snapshot):
        record = pipeline.commit(late.name, inspection)
    pipeline.compact(["lines"])
    entries = pipeline.ledger.fact_entries(["lines"])["lines"]
    assert [e.batch_id for e in entries][1:] == [record.batch_id] and entries[0].batch_id.startswith("compact-")
    assert pipeline.batch_dates(record) == ["2025-03-01"]
    assert pipeline.process(key).status == "accepted"
    assert comparable(snapshot(pipeline)) == comparable(LabData().add_all([*done, late]).kpis())


def test_an_old_home_keeps_every_table_file_its_ledger_names(tmp_path: Path) -> None:
    """Every file of a home made hours ago is older than the strays' age: the deletion after a
    merge takes the files no entry names (a header merge, a catalog file and a catalog
    history a kill left) and keeps every one the ledger names, under a prefix of its own."""
    import os
    import time

    from orderpipe.catalogs import catalog_history_key, catalog_key
    from orderpipe.facts import HISTORY
    from orderpipe.relational import part_key
    from orderpipe.warehouse import STRAY_FACTS_AGE

    home, prefix = tmp_path / "home", "facts/daily/"
    pipeline = lab_pipeline(home, {"ORDERPIPE_PREFIXES_WAREHOUSE": prefix})
    pipeline.warehouse.compact_after = 2
    files = lab_like(tmp_path / "files", seed=8)
    run_all(pipeline, files)
    folder = home / prefix
    strays = [folder / "headers" / "batch-compact-000000000777.parquet", folder / "catalog" / "batch-x.parquet"]
    strays.append(folder / "catalog" / "history-compact-000000000777.parquet")
    for stray in strays:
        stray.write_bytes(b"a file no entry names")
    then = time.time() - STRAY_FACTS_AGE - 60
    for path in folder.rglob("*.parquet"):
        os.utime(path, (then, then))
    to = tmp_path / "files"
    more = [
        *(write(to, f"orders_more{n}.csv", HEADERS, [f"{n},3,delivered,2025-03-02T10:00:00,,,,1"]) for n in range(3)),
        *(write(to, f"order_items_more{n}.csv", ITEMS, [f"{500 + n},{n},0,P2,x,t,,,,1.00"]) for n in range(3)),
        *(write(to, f"products_more{n}.csv", PRODUCTS, [f"P{20 + n},S,1,Toys,n,b,2,d"]) for n in range(3)),
    ]
    run_all(pipeline, more)
    assert not [s for s in strays if s.exists()]
    for path in folder.rglob("*.parquet"):  # the merges just written too
        os.utime(path, (then, then))
    for key in ("headers", "lines", "catalog"):
        pipeline.warehouse._delete_stray_tables(key)
    entries = pipeline.ledger.fact_entries(["headers", "lines", "catalog"])
    named = {part_key(k, e.batch_id, prefix) for k in ("headers", "lines") for e in entries[k]}
    named |= {catalog_key(e.batch_id, prefix) for e in entries["catalog"]}
    named |= {catalog_history_key(e.batch_id, prefix) for e in entries["catalog"] if HISTORY in e.parts}
    assert all(any(e.batch_id.startswith("compact-") for e in entries[k]) for k in entries), "each table merged"
    stored = {str(p.relative_to(home)) for p in folder.rglob("*.parquet")}
    assert stored == named
    assert comparable(snapshot(pipeline)) == comparable(LabData().add_all([*files, *more]).kpis())


def test_a_table_merge_that_lost_the_race_to_another_process_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes merge the same line entries; the one that reads them after the other
    deleted them gives up quietly (the other's merge stands), as a date's merge does."""
    import orderpipe.warehouse as warehouse

    home = tmp_path / "home"
    first, second = lab_pipeline(home), lab_pipeline(home)
    first.warehouse.compact_after = second.warehouse.compact_after = 50
    rows = [[f"{n},O{n},0,P1,x,t,,,,{n + 1}.00"] for n in range(4)]
    files = [write(tmp_path / "f", f"order_items_{n}.csv", ITEMS, row) for n, row in enumerate(rows)]
    run_all(first, files)
    first.warehouse.compact_after = second.warehouse.compact_after = 2
    real = warehouse.write_part_merge

    def beaten(*args: object, **kwargs: object) -> tuple[int, ...]:
        monkeypatch.setattr(warehouse, "write_part_merge", real)
        assert second.warehouse.compact(["lines"]) == ["lines"]  # the other process, first
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(warehouse, "write_part_merge", beaten)
    assert first.warehouse.compact(["lines"]) == []
    entries = first.ledger.fact_entries(["lines"])["lines"]
    assert [e.batch_id[:8] for e in entries] == ["compact-"]
    assert comparable(snapshot(first)) == comparable(LabData().add_all(files).kpis())


def test_a_table_merge_that_fails_on_its_own_entries_says_so(tmp_path: Path) -> None:
    """A file of the entries to merge is gone while the ledger still names every one of them:
    not another process's merge, a real failure, raised (and logged by the caller)."""
    pipeline = lab_pipeline(tmp_path / "home")
    pipeline.warehouse.compact_after = 50
    rows = [[f"{n},O{n},0,P1,x,t,,,,{n + 1}.00"] for n in range(3)]
    run_all(pipeline, [write(tmp_path / "f", f"order_items_{n}.csv", ITEMS, row) for n, row in enumerate(rows)])
    entries = pipeline.ledger.fact_entries(["lines"])["lines"]
    (tmp_path / "home" / "warehouse" / "orders" / "lines" / f"batch-{entries[1].batch_id}.parquet").unlink()
    pipeline.warehouse.compact_after = 2
    with pytest.raises((OSError, InfrastructureError)):
        pipeline.warehouse.compact(["lines"])
    assert pipeline.ledger.fact_entries(["lines"])["lines"] == entries
