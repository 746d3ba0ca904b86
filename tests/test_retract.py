"""Retracting an accepted batch (`orderpipe batches retract`): its rows stop counting, every date
it touched is recomputed, an order it corrected counts again as the batch before had it, and a
catalog batch's products take their earlier categories again. KPIs are checked against the
decimal reference of `test_line_items.py`, with and without compaction merging the batch's rows
first; the history keeps the batch, retracted, and the same bytes again are a duplicate."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderpipe.bootstrap import open_pipeline
from orderpipe.cli import main
from orderpipe.config import load_settings
from orderpipe.errors import InfrastructureError, OrderpipeError, UsageError
from orderpipe.facts import HISTORY
from orderpipe.ports import FactEntry, RunRecord
from orderpipe.retract import Retracted, Retraction
from orderpipe.workflow import Pipeline

from .conftest import HEADER, examples, order, snapshot, write
from .test_catalog import LINES, categorized, drop_catalog, drop_orders, mixed_drops
from .test_line_items import CATS, DAYS, LINE, Line, comparable, line_batches, reference


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False, env=env)


def retract(pipeline: Pipeline, batch_id: str) -> Retracted:
    retraction = Retraction(pipeline)
    return retraction.retract(retraction.find(batch_id))


def history(home: Path) -> list[tuple[str, str]]:
    runs = [json.loads(line) for line in cli(home, "batches", "--format", "jsonl").output.splitlines()]
    return [(r["status"], r["file"]) for r in runs]


# -- one correction, by hand --------------------------------------------------------------------
@pytest.fixture
def corrected(home: Path, tmp_path: Path) -> tuple[Path, str]:
    """a.csv: O1 (10.00) and O2 (2 x 5.00) on 07-06. b.csv corrects O1 (99.00, returned) and
    adds O3 on 07-07. Returns the home and b's batch id."""
    a = write(tmp_path / "a.csv", [order("O1", "C1", price="10.00"), order("O2", "C2", quantity="2", price="5.00")])
    b = write(
        tmp_path / "b.csv",
        [order("O1", "C1", price="99.00", returned="true"), order("O3", "C3", "2025-07-07", price="7.00")],
    )
    assert cli(home, "run", str(a), str(b)).exit_code == 0
    batch = json.loads(cli(home, "batches", "--format", "jsonl").output.splitlines()[-1])["batch_id"]
    return home, str(batch)


def daily(home: Path) -> list[dict[str, Any]]:
    lines = cli(home, "kpis", "daily", "--format", "jsonl").output.splitlines()
    return [json.loads(line, parse_float=Decimal) for line in lines]


def test_retracting_a_correction_counts_the_earlier_order_again(corrected: tuple[Path, str]) -> None:
    home, batch = corrected
    result = cli(home, "batches", "retract", batch[:12])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"retracted b.csv  batch {batch[:12]}: its rows no longer count")
    # 07-06 as a.csv had it: O1 at 10.00 not returned, O2 2 x 5.00; 07-07 held only b's O3: gone.
    assert [tuple(d.values()) for d in daily(home)] == [("2025-07-06", 2, Decimal("20.00"), 3, Decimal("0"), 2, 0)]
    assert history(home) == [("accepted", "a.csv"), ("accepted", "b.csv"), ("retracted", "b.csv")]
    assert (home / "processed" / "b.csv").exists()  # its archived file stays


def test_the_history_says_when_and_a_second_retract_has_nothing_to_do(corrected: tuple[Path, str]) -> None:
    home, batch = corrected
    assert cli(home, "batches", "retract", batch[:12]).exit_code == 0
    runs = [json.loads(line) for line in cli(home, "batches", "--format", "jsonl").output.splitlines()]
    retracted = runs[-1]
    assert retracted["status"] == "retracted" and retracted["batch_id"] == batch
    assert retracted["started_at"] <= retracted["finished_at"]
    (run,) = open_pipeline(load_settings(home, environ={})).ledger.runs(limit=1)
    assert run.message == "retracted: its rows no longer count; the KPIs of 2 date(s) were recomputed"
    assert (run.rows, run.dates, run.finished_at >= run.started_at) == (2, ("2025-07-06", "2025-07-07"), True)
    again = cli(home, "batches", "retract", batch[:12])
    assert again.exit_code == 0
    assert f"batch {batch[:12]} (b.csv) was retracted at " in again.output
    assert "nothing to do" in again.output
    assert history(home)[-1] == ("retracted", "b.csv") and len(history(home)) == 3  # recorded once


def test_dry_run_prints_the_changes_and_changes_nothing(corrected: tuple[Path, str]) -> None:
    home, batch = corrected
    before = daily(home)
    result = cli(home, "batches", "retract", batch[:12], "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("2025-07-06  total_revenue 109.00 → 20.00 (-89.00)  return_rate 0.500000 → 0.000000")
    assert "total_orders" not in lines[0]  # unchanged: two orders before and after
    assert lines[1].startswith("2025-07-07  total_orders 1 → -  total_revenue 7.00 → -")
    assert daily(home) == before
    assert history(home)[-1] == ("accepted", "b.csv")


def test_the_same_bytes_after_a_retract_are_a_duplicate_that_says_how_to_count_them(
    corrected: tuple[Path, str], tmp_path: Path
) -> None:
    home, batch = corrected
    assert cli(home, "batches", "retract", batch[:12]).exit_code == 0
    again = cli(home, "run", str(tmp_path / "b.csv"))
    assert again.exit_code == 0
    assert f"duplicate b.csv  2 rows  same bytes as b.csv (batch {batch[:12]}), which was retracted" in again.output
    assert "to count these orders again, send them in a new file (other bytes" in again.output
    assert [d["order_date"] for d in daily(home)] == ["2025-07-06"]  # still not counted
    replay = cli(home, "replay", batch[:12])
    assert replay.exit_code == 0
    assert f"batch {batch[:12]} (b.csv) was retracted; a replay does not count it again" in replay.output
    # Its rows in another order: other bytes, a new batch, counted (latest: O1 at 99.00 again).
    lines = (tmp_path / "b.csv").read_text().splitlines()
    resent = tmp_path / "b-again.csv"
    resent.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    assert cli(home, "run", str(resent)).exit_code == 0
    assert [(d["order_date"], d["total_revenue"]) for d in daily(home)] == [
        ("2025-07-06", Decimal("109.00")),
        ("2025-07-07", Decimal("7.00")),
    ]


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("0123abcd", "no accepted batch 0123abcd in the history (`orderpipe batches` lists them)"),
        ("0123", "a batch id prefix needs at least 8 characters"),
    ],
)
def test_a_batch_that_is_not_there_is_a_usage_error(corrected: tuple[Path, str], given: str, says: str) -> None:
    home, _ = corrected
    result = cli(home, "batches", "retract", given)
    assert result.exit_code == 2
    assert says in result.output
    assert "Traceback" not in result.output


def test_a_rejected_batch_has_nothing_to_retract(home: Path, tmp_path: Path) -> None:
    bad = write(tmp_path / "gadgets.csv", [order("O1", category="Gadgets")])
    assert cli(home, "run", str(bad)).exit_code == 1
    batch = json.loads(cli(home, "batches", "--format", "jsonl").output)["batch_id"]
    result = cli(home, "batches", "retract", batch[:12])
    assert result.exit_code == 2
    assert f"batch {batch[:12]} (gadgets.csv) was never accepted (rejected): none of its rows count, so there is" in (
        " ".join(result.output.split())
    )
    assert "nothing to retract" in result.output


def test_the_listing_still_works_beside_the_subcommand(corrected: tuple[Path, str]) -> None:
    home, _ = corrected
    listing = cli(home, "batches", "--wide")
    assert listing.exit_code == 0 and "b.csv" in listing.output


# -- any history, against the decimal reference ------------------------------------------------
def run_lines(pipeline: Pipeline, path: Path, lines: list[Line]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *(x.csv() for x in lines)]) + "\n")
    outcome = pipeline.process(pipeline.submit(path))
    assert outcome.status in ("accepted", "duplicate"), outcome.message
    return str(outcome.batch_id)


@settings(
    max_examples=examples(25),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=line_batches(), after=line_batches(), pick=st.integers(0, 3), every=st.sampled_from([1, 2, 3, 1000]))
def test_any_history_with_a_batch_retracted_matches_the_reference(
    batches: list[list[Line]],
    after: list[list[Line]],
    pick: int,
    every: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Line grain, compacted every `every` entries (or never): retract one batch, then more
    batches arrive on the same dates (and are compacted with the retraction's rewrite)."""
    home = tmp_path_factory.mktemp("home")
    pipeline = open_pipeline(load_settings(home, environ=LINE | {"ORDERPIPE_CATEGORIES": ",".join(CATS)}))
    pipeline.compact_after = every
    ids = [run_lines(pipeline, home / "files" / f"b{n}.csv", batch) for n, batch in enumerate(batches)]
    gone = pick % len(batches)
    if ids[gone] in ids[:gone]:  # the same bytes twice: the second was a duplicate
        gone = ids.index(ids[gone])
    retract(pipeline, ids[gone][:12])
    kept = [b for n, b in enumerate(batches) if ids[n] != ids[gone]]
    assert comparable(snapshot(pipeline)) == comparable(reference(kept))
    for n, batch in enumerate(after):
        if run_lines(pipeline, home / "files" / f"a{n}.csv", batch) not in ids:
            kept.append(batch)
        assert comparable(snapshot(pipeline)) == comparable(reference(kept))


@settings(
    max_examples=examples(15),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(drops=mixed_drops(), pick=st.integers(0, 10))
def test_retracting_an_order_or_a_catalog_batch_matches_the_reference(
    drops: list[tuple[str, Any]], pick: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With the catalog: a retracted catalog batch's products take the categories the other
    catalog batches give them; a retracted order batch's lines go."""
    home = tmp_path_factory.mktemp("home")
    pipeline = open_pipeline(load_settings(home, environ=LINES))
    ids = []
    for n, (kind, content) in enumerate(drops):
        dropped = drop_catalog if kind == "catalog" else drop_orders
        name = f"products-{n}.csv" if kind == "catalog" else f"orders-{n}.csv"
        outcome = dropped(pipeline, home / "files" / name, content)
        assert outcome.status in ("accepted", "duplicate"), outcome.message
        ids.append(outcome.batch_id)
    gone = ids[pick % len(drops)]
    retract(pipeline, gone[:12])
    orders = [c for n, (k, c) in enumerate(drops) if k == "orders" and ids[n] != gone]
    catalog: dict[str, str] = {}
    for n, (kind, content) in enumerate(drops):
        if kind == "catalog" and ids[n] != gone:
            catalog |= content
    assert comparable(snapshot(pipeline)) == comparable(reference(categorized(orders, catalog)))


def test_a_process_that_kept_a_dates_orders_reads_them_again_after_a_retract(home: Path, tmp_path: Path) -> None:
    """A watcher keeps the current orders of the dates it counted; a retraction by another
    process must not leave the retracted rows among them for its next file."""
    watcher = open_pipeline(load_settings(home, environ={}))
    a = write(tmp_path / "a.csv", [order("O1", "C1", price="10.00")])
    b = write(tmp_path / "b.csv", [order("O2", "C2", price="20.00")])
    c = write(tmp_path / "c.csv", [order("O3", "C3", price="40.00")])
    watcher.process(watcher.submit(a))
    batch = watcher.process(watcher.submit(b)).batch_id
    retract(open_pipeline(load_settings(home, environ={})), batch[:12])
    watcher.process(watcher.submit(c))
    [day] = watcher.kpis.daily(None, None)
    assert (day["total_orders"], day["total_revenue"]) == (2, Decimal("50.00"))


def test_a_retraction_stays_visible_to_a_process_that_kept_orders_after_another_compacts(
    home: Path, tmp_path: Path
) -> None:
    """The marker must outlive compaction: a third process merging the date's entries after the
    retraction leaves the watcher's next file still reading the date again."""
    watcher = open_pipeline(load_settings(home, environ={}))
    files = [write(tmp_path / f"{n}.csv", [order(f"O{n}", f"C{n}", price=f"{10 * 2**n}.00")]) for n in range(4)]
    watcher.process(watcher.submit(files[0]))
    batch = watcher.process(watcher.submit(files[1])).batch_id
    retract(open_pipeline(load_settings(home, environ={})), batch[:12])
    compacting = open_pipeline(load_settings(home, environ={}))
    compacting.compact_after = 1
    compacting.process(compacting.submit(files[2]))
    entries = [e.batch_id for e in compacting.ledger.fact_entries([DAYS[0]])[DAYS[0]]]
    assert entries == [f"retracted-{batch}", "compact-000000000004"]  # merged around the marker
    watcher.process(watcher.submit(files[3]))
    [day] = watcher.kpis.daily(None, None)
    assert (day["total_orders"], day["total_revenue"]) == (3, Decimal("130.00"))  # 10 + 40 + 80


def test_retracting_a_batch_merged_into_a_compacted_entry(any_pipeline: Pipeline, tmp_path: Path) -> None:
    """The corrected order's earlier row is restored from the merged entry's history (folder +
    SQLite, S3 + DynamoDB)."""
    pipeline = any_pipeline
    pipeline.compact_after = 1
    ids = []
    for n, price in enumerate(["10.00", "20.00", "40.00"]):
        path = write(tmp_path / f"f{n}.csv", [order("O1", "C1", price=price), order(f"N{n}", "C2", price="1.00")])
        ids.append(pipeline.process(pipeline.submit(path)).batch_id)
    [entry] = pipeline.ledger.fact_entries([DAYS[0]])[DAYS[0]]
    assert entry.batch_id.startswith("compact-")  # every batch's rows merged into one entry
    retract(pipeline, ids[2][:12])  # O1 at 40.00 goes: 20.00 counts again
    [day] = pipeline.kpis.daily(None, None)
    assert (day["total_orders"], day["total_revenue"]) == (3, Decimal("22.00"))
    retract(pipeline, ids[1][:12])  # and then 10.00
    [day] = pipeline.kpis.daily(None, None)
    assert (day["total_orders"], day["total_revenue"]) == (2, Decimal("11.00"))


def test_a_retract_on_either_home_counts_the_earlier_order_again(any_pipeline: Pipeline, tmp_path: Path) -> None:
    """Own entries (a bundle of two dates), a correction, a batch after the retraction."""
    pipeline = any_pipeline
    a = write(tmp_path / "a.csv", [order("O1", "C1", DAYS[0], price="10.00"), order("O2", "C2", DAYS[1])])
    b = write(tmp_path / "b.csv", [order("O1", "C1", DAYS[0], price="30.00"), order("O3", "C3", DAYS[1])])
    pipeline.process(pipeline.submit(a))
    batch = pipeline.process(pipeline.submit(b)).batch_id
    done = retract(pipeline, batch[:12])
    assert done.dates == tuple(DAYS) and not done.already
    assert [(d["order_date"], d["total_orders"], d["total_revenue"]) for d in pipeline.kpis.daily(None, None)] == [
        (DAYS[0], 1, Decimal("10.00")),
        (DAYS[1], 1, Decimal("10.00")),
    ]
    record = pipeline.ledger.get(batch)
    assert record is not None and record.retracted == "retracted" and record.done
    assert [r.status for r in pipeline.ledger.runs_of(batch)] == ["accepted", "retracted"]
    assert retract(pipeline, batch[:12]).already
    c = write(tmp_path / "c.csv", [order("O4", "C4", DAYS[0], price="1.00")])
    pipeline.process(pipeline.submit(c))
    assert pipeline.kpis.daily(DAYS[0], DAYS[0])[0]["total_revenue"] == Decimal("11.00")


def test_the_api_lists_retracted_batches(corrected: tuple[Path, str]) -> None:
    import httpx

    from orderpipe.bootstrap import open_reader
    from orderpipe.web.app import create_app
    from tests.web.conftest import running

    home, batch = corrected
    assert cli(home, "batches", "retract", batch[:12]).exit_code == 0
    settings = load_settings(home, environ={})
    with running(create_app(lambda: open_reader(settings))) as url:
        answer = httpx.get(url + "/api/batches", params={"status": "retracted"}, timeout=30)
    assert answer.status_code == 200, answer.text
    [run] = answer.json()["runs"]
    assert (run["status"], run["file"], run["batch_id"]) == ("retracted", "b.csv", batch)


def test_rows_merged_without_a_history_are_refused_before_anything_changes(home: Path, tmp_path: Path) -> None:
    """A merge by an older orderpipe kept no history: the batch's rows cannot be told apart."""
    pipeline = open_pipeline(load_settings(home, environ={}))
    pipeline.compact_after = 1
    a = write(tmp_path / "a.csv", [order("O1", "C1", DAYS[0], price="10.00")])
    b = write(tmp_path / "b.csv", [order("O1", "C1", DAYS[0], price="30.00"), order("O2", "C2", DAYS[1])])
    pipeline.process(pipeline.submit(a))
    batch = pipeline.process(pipeline.submit(b)).batch_id
    [merged] = pipeline.ledger.fact_entries([DAYS[0]])[DAYS[0]]
    older = FactEntry(DAYS[0], merged.batch_id, merged.seq, tuple(p for p in merged.parts if p < HISTORY))
    assert pipeline.ledger.compact(DAYS[0], [merged], older)
    before = snapshot(pipeline), pipeline.ledger.fact_entries(DAYS)
    result = cli(home, "batches", "retract", batch[:12])
    assert result.exit_code == 3
    assert f"batch {batch[:12]} (b.csv) cannot be retracted: its rows of {DAYS[0]} were merged" in result.output
    assert "nothing was changed" in result.output and "Traceback" not in result.output
    assert (snapshot(pipeline), pipeline.ledger.fact_entries(DAYS)) == before
    record = pipeline.ledger.get(batch)
    assert record is not None and record.retracted == ""


def test_retracting_a_catalog_batch_merged_into_the_compacted_catalog(tmp_path: Path) -> None:
    """The merged catalog keeps its history too: the products take the categories the other
    catalog batches give them, the dates where they sold are recomputed."""
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=LINES))
    pipeline.compact_after = 1
    lines = [
        Line("O1", "C1", DAYS[0], "", "P1", 2, Decimal("10.00"), False),
        Line("O2", "C2", DAYS[1], "", "P2", 1, Decimal("5.00"), True),
    ]
    first = drop_catalog(pipeline, tmp_path / "products-1.csv", {"P1": "Books", "P2": "Home"})
    assert drop_orders(pipeline, tmp_path / "orders.csv", lines).status == "accepted"
    second = drop_catalog(pipeline, tmp_path / "products-2.csv", {"P1": "Toys"})
    drop_catalog(pipeline, tmp_path / "products-3.csv", {"P3": "Books"})  # merges the first two
    entries = pipeline.ledger.fact_entries(["catalog"])["catalog"]
    assert [e.batch_id[:8] for e in entries][:1] == ["compact-"]  # the first two catalog batches merged
    assert second.batch_id not in [e.batch_id for e in entries]
    assert comparable(snapshot(pipeline)) == comparable(reference(categorized([lines], {"P1": "Toys", "P2": "Home"})))
    done = retract(pipeline, second.batch_id[:12])
    assert done.dates == (DAYS[0],)  # where P1 sold
    assert comparable(snapshot(pipeline)) == comparable(reference(categorized([lines], {"P1": "Books", "P2": "Home"})))
    retract(pipeline, first.batch_id[:12])
    assert comparable(snapshot(pipeline)) == comparable(reference(categorized([lines], {})))


# -- what a retraction finds, says and leaves: every case its messages name ------------------------
def test_a_batch_merged_into_the_newer_of_two_merged_entries_is_taken_out_of_that_one(
    home: Path, tmp_path: Path
) -> None:
    """Merges in tiers leave two merged entries on a date: the big one of the first batches and
    one of later small batches (`compact-<first>-<top>`). The first batch of that run is found
    in the entry whose range starts at its own seq (not in the first merged entry), and only
    its rows go; the rewritten entry's files are deleted."""
    pipeline = open_pipeline(load_settings(home, environ={}))
    pipeline.compact_after = 2
    price = [f"{n * 7919 % 10007 + 1}.{n % 97:02d}" for n in range(6000)]  # (bytes that do not compress)
    big = [order(f"B{n}", f"C{n * 7919 % 10007}", DAYS[0], price=price[n]) for n in range(6000)]
    for n in range(2):
        pipeline.process(pipeline.submit(write(tmp_path / f"big{n}.csv", big[n * 3000 : (n + 1) * 3000])))
    ids = [
        pipeline.process(pipeline.submit(write(tmp_path / f"s{n}.csv", [order(f"S{n}", "C", DAYS[0], price="7.00")])))
        for n in range(3)
    ]
    entries = pipeline.ledger.fact_entries([DAYS[0]])[DAYS[0]]
    ranges = [e.batch_id for e in entries if e.batch_id.startswith("compact-")]
    record = pipeline.ledger.get(ids[1].batch_id)  # (the first small one went into the big merge)
    assert record is not None
    later = record.seq
    assert len(ranges) == 2 and ranges[1].startswith(f"compact-{later:012d}-"), [e.batch_id for e in entries]
    retract(pipeline, ids[1].batch_id[:12])
    [day] = pipeline.kpis.daily(None, None)
    revenue = sum(Decimal(p) for p in price)
    assert (day["total_orders"], day["total_revenue"]) == (6002, revenue + Decimal("14.00"))
    named = {e.batch_id for e in pipeline.ledger.fact_entries([DAYS[0]])[DAYS[0]]}
    files = [k.rsplit("/", 1)[1] for k in pipeline.store.list("warehouse/orders/")]
    assert ranges[1] not in named
    assert not [f for f in files if f.startswith((f"batch-{ranges[1]}-0", f"history-{ranges[1]}-0"))], files


def test_a_retraction_under_a_warehouse_prefix_of_its_own_reads_and_writes_there(tmp_path: Path) -> None:
    """Merged order entries and merged catalog entries, rewritten without the batch's rows,
    all under the configured prefix; nothing under the default one."""
    environ = {**LINES, "ORDERPIPE_PREFIXES_WAREHOUSE": "lake/"}
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=environ))
    pipeline.compact_after = 1
    lines = [Line(f"O{n}", "C1", DAYS[0], "", "P1", 1, Decimal(f"{n}.00"), False) for n in range(1, 4)]
    orders = [drop_orders(pipeline, tmp_path / f"orders-{n}.csv", [line]) for n, line in enumerate(lines)]
    first = drop_catalog(pipeline, tmp_path / "products-1.csv", {"P1": "Books"})
    second = drop_catalog(pipeline, tmp_path / "products-2.csv", {"P1": "Toys"})
    drop_catalog(pipeline, tmp_path / "products-3.csv", {"P3": "Books"})  # merges the first two
    retract(pipeline, orders[1].batch_id[:12])
    assert retract(pipeline, second.batch_id[:12]).dates == (DAYS[0],)
    kept = [lines[0], lines[2]]
    assert comparable(snapshot(pipeline)) == comparable(reference(categorized([kept], {"P1": "Books"})))
    assert first.status == "accepted"
    assert not list(pipeline.store.list("warehouse/")), "nothing under the default prefix"


def test_a_catalog_merged_without_a_history_is_refused_naming_the_catalog(tmp_path: Path) -> None:
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=LINES))
    pipeline.compact_after = 1
    drop_orders(pipeline, tmp_path / "orders.csv", [Line("O1", "C1", DAYS[0], "", "P1", 1, Decimal("1.00"), False)])
    drop_catalog(pipeline, tmp_path / "products-1.csv", {"P1": "Books"})
    second = drop_catalog(pipeline, tmp_path / "products-2.csv", {"P1": "Toys"})
    drop_catalog(pipeline, tmp_path / "products-3.csv", {"P3": "Books"})  # merges the first two
    merged = pipeline.ledger.fact_entries(["catalog"])["catalog"][0]
    assert merged.batch_id.startswith("compact-") and any(p >= HISTORY for p in merged.parts)
    older = FactEntry("catalog", merged.batch_id, merged.seq, tuple(p for p in merged.parts if p < HISTORY))
    assert pipeline.ledger.compact("catalog", [merged], older)
    with pytest.raises(OrderpipeError) as raised:
        retract(pipeline, second.batch_id[:12])
    assert str(raised.value) == (
        f"batch {second.batch_id[:12]} (products-2.csv) cannot be retracted: its rows of the catalog were merged"
        " with other batches' without a history of which rows were whose (a compaction by an older orderpipe);"
        " nothing was changed: send a file that corrects its orders instead"
    )


def test_what_find_refuses_says_which_batch_and_what_to_do(home: Path, tmp_path: Path) -> None:
    """Two batches under one prefix, a batch not finished: each refusal names the batch by its
    first 12 characters and says what to run."""
    pipeline = open_pipeline(load_settings(home, environ={}))
    seen: dict[str, str] = {}
    n = 0
    while True:  # files until two accepted batches share their first character
        n += 1
        batch = pipeline.process(pipeline.submit(write(tmp_path / f"f{n}.csv", [order(f"O{n}", "C1")]))).batch_id
        if batch[0] in seen:
            break
        seen[batch[0]] = batch
    with pytest.raises(UsageError) as raised:
        Retraction(pipeline).find(batch[0])
    assert str(raised.value) == f"several batches start with {batch[0]}: give more of the id (`orderpipe batches`)"
    path = write(tmp_path / "late.csv", [order("LATE", "C1")])
    key = pipeline.submit(path)
    with pipeline.inspected(key) as (inspection, _scratch, _snapshot):
        record = pipeline.commit("late.csv", inspection)
    pipeline.ledger.mark_failed(record.batch_id)  # (as a batch that could not be finished is)
    when = "2025-07-06T00:00:00+00:00"
    pipeline.ledger.record_run(RunRecord(record.batch_id, "late.csv", "failed", 1, record.dates, when, when))
    with pytest.raises(UsageError) as raised:
        Retraction(pipeline).find(record.batch_id[:12])
    short = record.batch_id[:12]
    assert str(raised.value) == (
        f"batch {short} (late.csv) is not finished yet: finish it first (`orderpipe replay {short}`), then retract it"
    )


def test_a_retraction_another_process_finished_meanwhile_does_nothing(corrected: tuple[Path, str]) -> None:
    """The record read before the lock says not retracted; the ledger, read under it, says
    retracted: nothing is done again, and it says so."""
    home, batch = corrected
    pipeline = open_pipeline(load_settings(home, environ={}))
    retraction = Retraction(pipeline)
    stale = retraction.find(batch[:12])
    assert not retraction.retract(stale).already
    again = retraction.retract(stale)
    assert again.already and again.dates == () and again.batch.retracted == "retracted"


def test_a_date_that_keeps_changing_is_given_up_saying_to_run_it_again(
    corrected: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, batch = corrected
    pipeline = open_pipeline(load_settings(home, environ={}))
    monkeypatch.setattr(pipeline.ledger, "retract_entries", lambda *args: False)
    retraction = Retraction(pipeline)
    with pytest.raises(InfrastructureError) as raised:
        retraction.retract(retraction.find(batch[:12]))
    assert str(raised.value) == f"2025-07-06 kept changing while batch {batch[:12]} was retracted; run it again"


def test_a_dry_run_with_the_catalog_shows_each_dates_categories_before_and_after(tmp_path: Path) -> None:
    """Before: what is stored for that date only; after: with the catalog's categories."""
    home = tmp_path / "home"
    pipeline = open_pipeline(load_settings(home, environ=LINES))
    drop_catalog(pipeline, tmp_path / "products.csv", {"P1": "Books", "P2": "Toys"})
    first = [Line("O1", "C1", DAYS[0], "", "P1", 1, Decimal("10.00"), False)]
    drop_orders(pipeline, tmp_path / "a.csv", [*first, Line("O2", "C2", DAYS[1], "", "P2", 1, Decimal("3.00"), False)])
    gone = drop_orders(pipeline, tmp_path / "b.csv", [Line("O3", "C3", DAYS[1], "", "P1", 2, Decimal("4.00"), False)])
    retraction = Retraction(pipeline)
    changes = retraction.preview(retraction.find(gone.batch_id[:12]))
    before, after = changes[DAYS[1]]
    assert before is not None and before.order_date == DAYS[1]
    revenues = [(c.order_date, c.category, c.daily_revenue) for c in before.categories]
    assert revenues == [(DAYS[1], "Books", Decimal("8.00")), (DAYS[1], "Toys", Decimal("3.00"))]
    assert {c.category: c.daily_revenue for c in after.categories} == {"Toys": Decimal("3.00")}
    assert list(changes) == [DAYS[1]]
