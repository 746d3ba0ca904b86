"""The product catalog end to end: categories from `products*.csv` catalog batches, `Unknown`
until a catalog names a product, the dates of changed products recomputed (and only those).

KPIs are checked against the decimal reference of `test_line_items.py`, fed with each line's
category as the latest catalog says; on folder + SQLite and on S3 + DynamoDB (moto).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orderpipe.ingest as ingest
from orderpipe.bootstrap import open_pipeline
from orderpipe.catalogs import product_index
from orderpipe.config import ConfigError, load_settings
from orderpipe.ports import BatchRecord
from orderpipe.workflow import Pipeline

from .conftest import examples, keys, snapshot
from .test_line_items import CATS, DAYS, Line, comparable, line_batches, reference

CATALOG = {"ORDERPIPE_INPUT_CATALOG": "true", "ORDERPIPE_CATEGORIES": ",".join(CATS)}
LINES = CATALOG | {"ORDERPIPE_INPUT_GRAIN": "line"}
ORDER_HEADER = "order_id,customer_id,order_date,product_id,quantity,unit_price,returned"


def order_rows(lines: list[Line]) -> list[str]:
    """Order-file rows without a category (the catalog gives it)."""
    flag = {True: "true", False: "false"}
    return [
        ",".join([x.order_id, x.customer, x.day, x.product, str(x.quantity), str(x.price), flag[x.returned]])
        for x in lines
    ]


def drop(pipeline: Pipeline, path: Path, text: str) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return pipeline.process(pipeline.submit(path))


def drop_orders(pipeline: Pipeline, path: Path, lines: list[Line]) -> Any:
    return drop(pipeline, path, "\n".join([ORDER_HEADER, *order_rows(lines)]) + "\n")


def drop_catalog(pipeline: Pipeline, path: Path, products: dict[str, str]) -> Any:
    rows = [f"{p},{c}" for p, c in sorted(products.items())]
    return drop(pipeline, path, "\n".join(["product_id,category", *rows]) + "\n")


def categorized(batches: list[list[Line]], catalog: dict[str, str]) -> list[list[Line]]:
    """The orders as the reference sees them: each line in its product's current category."""
    return [
        [Line(x.order_id, x.customer, x.day, catalog.get(x.product, "Unknown"), *vars_tail(x)) for x in batch]
        for batch in batches
    ]


def vars_tail(x: Line) -> tuple[str, int, Decimal, bool]:
    return x.product, x.quantity, x.price, x.returned


# -- the reference ----------------------------------------------------------------------------------
@st.composite
def mixed_drops(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Order files (multi-category orders, partial returns, corrections that add or drop lines)
    and catalog files (upserts of a few products), interleaved: catalog changes arrive before
    and after the orders they affect."""
    orders = draw(line_batches())
    catalogs = draw(
        st.lists(
            st.dictionaries(st.sampled_from(["P1", "P2", "P3", "P4"]), st.sampled_from(CATS), min_size=1, max_size=3),
            min_size=1,
            max_size=3,
        )
    )
    drops: list[tuple[str, Any]] = [("orders", b) for b in orders]
    for catalog in catalogs:
        drops.insert(draw(st.integers(0, len(drops))), ("catalog", catalog))
    return drops


@settings(
    max_examples=examples(15),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(drops=mixed_drops())
def test_catalog_kpis_match_the_decimal_reference(
    drops: list[tuple[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("home")
    pipeline = open_pipeline(load_settings(home, environ=LINES))
    orders: list[list[Line]] = []
    catalog: dict[str, str] = {}
    for n, (kind, content) in enumerate(drops):
        if kind == "catalog":
            outcome = drop_catalog(pipeline, home / "files" / f"products-{n}.csv", content)
            catalog |= content
        else:
            outcome = drop_orders(pipeline, home / "files" / f"orders-{n}.csv", content)
            orders.append(content)
        assert outcome.status in ("accepted", "duplicate"), outcome.message
        assert comparable(snapshot(pipeline)) == comparable(reference(categorized(orders, catalog))), n
    pipeline.compact_after = 1  # compacting facts and catalog entries changes nothing
    pipeline.compact([*DAYS, "catalog"])
    pipeline.recompute(DAYS)
    assert comparable(snapshot(pipeline)) == comparable(reference(categorized(orders, catalog)))


def test_order_grain_with_a_catalog(tmp_path: Path) -> None:
    """At order grain too: one row per order, its category from its product."""
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=CATALOG))
    first = [
        Line("O1", "C1", DAYS[0], "", "P1", 2, Decimal("10.00"), False),
        Line("O2", "C2", DAYS[0], "", "P2", 1, Decimal("3.333"), True),
    ]
    assert drop_orders(pipeline, tmp_path / "a.csv", first).status == "accepted"
    assert drop_catalog(pipeline, tmp_path / "products.csv", {"P1": "Books"}).status == "accepted"
    assert comparable(snapshot(pipeline)) == comparable(reference(categorized([first], {"P1": "Books"})))
    daily, category = snapshot(pipeline)
    assert [(c["category"], c["daily_revenue"]) for c in category] == [
        ("Books", Decimal("20.00")),
        ("Unknown", Decimal("3.33")),
    ]
    assert daily[0]["total_revenue"] == Decimal("23.33")


# -- both backends -------------------------------------------------------------------------------
@pytest.fixture(params=["local", "aws"])
def catalog_pipeline(request: pytest.FixtureRequest, tmp_path: Path) -> Pipeline:
    env = request.getfixturevalue("aws_env") if request.param == "aws" else {}
    return open_pipeline(load_settings(tmp_path / "home", environ=env | LINES))


def test_catalog_before_and_after_the_orders_on_both_backends(catalog_pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline = catalog_pipeline
    assert drop_catalog(pipeline, tmp_path / "products.csv", {"P1": "Books"}).status == "accepted"
    lines = [
        Line("O1", "C1", DAYS[0], "", "P1", 2, Decimal("10.00"), True),
        Line("O1", "C1", DAYS[0], "", "P2", 1, Decimal("5.25"), False),
        Line("O2", "C2", DAYS[1], "", "P2", 1, Decimal("3.00"), False),
    ]
    assert drop_orders(pipeline, tmp_path / "orders.csv", lines).status == "accepted"
    _, category = snapshot(pipeline)
    assert [(c["category"], c["order_date"], c["orders"]) for c in category] == [
        ("Books", DAYS[0], 1),
        ("Unknown", DAYS[0], 1),
        ("Unknown", DAYS[1], 1),
    ]
    outcome = drop_catalog(pipeline, tmp_path / "products-2.csv", {"P2": "Home", "P1": "Books"})
    assert outcome.status == "accepted" and outcome.dates == tuple(DAYS)  # P2 changed; P1 did not
    assert (
        outcome.message == f"products-2.csv: accepted, catalog of 2 products; recomputed 2 date(s) {DAYS[0]}…{DAYS[1]}"
    )
    _, category = snapshot(pipeline)
    assert [(c["category"], c["order_date"], c["daily_revenue"], c["avg_return_rate"]) for c in category] == [
        ("Books", DAYS[0], Decimal("20.00"), Decimal("1.000000")),
        ("Home", DAYS[0], Decimal("5.25"), Decimal("0.000000")),
        ("Home", DAYS[1], Decimal("3.00"), Decimal("0.000000")),
    ]
    # The same bytes again: a duplicate, nothing changes; a file that changes nothing recomputes nothing.
    assert (
        drop_catalog(pipeline, tmp_path / "again" / "products-2.csv", {"P2": "Home", "P1": "Books"}).status
        == "duplicate"
    )
    same = drop(pipeline, tmp_path / "products-3.csv", "product_id,category,note\nP1,Books,unchanged\n")
    assert same.status == "accepted" and same.dates == ()
    history = pipeline.ledger.runs()
    assert [(r.file, r.status) for r in history] == [
        ("products.csv", "accepted"),
        ("orders.csv", "accepted"),
        ("products-2.csv", "accepted"),
        ("products-2.csv", "duplicate"),
        ("products-3.csv", "accepted"),
    ]
    assert keys(pipeline, "processed/") == ["orders.csv", "products-2.csv", "products-3.csv", "products.csv"]


def test_a_category_column_in_an_order_file_is_ignored_with_a_warning(tmp_path: Path) -> None:
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=LINES))
    header = "order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned"
    text = f"{header}\nO1,C1,2025-07-06,Nope,P1,1,2.50,false\n"
    outcome = drop(pipeline, tmp_path / "orders.csv", text)
    assert outcome.status == "accepted"
    assert outcome.report.warnings == (
        "column 'category' ignored: categories come from the product catalog ([input] catalog = true)",
    )
    assert [c["category"] for c in snapshot(pipeline)[1]] == ["Unknown"]


def test_renamed_catalog_columns_and_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "orderpipe.toml").write_text(
        '[input]\ncatalog = true\ncatalog_files = "skus*.csv"\n'
        '[input.catalog_columns]\nproduct_id = "Variant SKU"\ncategory = "Type"\n'
        '[input.columns]\nproduct_id = "sku"\n'
    )
    pipeline = open_pipeline(load_settings(home, environ={}))
    orders = "order_id,customer_id,order_date,sku,quantity,unit_price,returned\nO1,C1,2025-07-06,S1,1,2.50,false\n"
    assert drop(pipeline, tmp_path / "orders.csv", orders).status == "accepted"
    # products.csv is not a catalog file here: it is read as orders and rejected.
    assert drop(pipeline, tmp_path / "products.csv", "Variant SKU,Type\nS1,Books\n").status == "rejected"
    outcome = drop(pipeline, tmp_path / "skus-1.csv", "Type,Variant SKU,Note\nBooks,S1,x\n")
    assert outcome.status == "accepted" and outcome.report.warnings == ("extra columns ignored: 'Note'",)
    assert [c["category"] for c in snapshot(pipeline)[1]] == ["Books"]


# -- catalog file errors: each code fails, and its fix passes ----------------------------------------
BAD_CATALOGS = [
    ("missing-column", "product_id,kind\nP1,Books\n", "product_id,kind,category\nP1,Books,Books\n", 1, "category"),
    (
        "duplicate-column",
        "product_id,category,category\nP1,Books,Books\n",
        "product_id,category\nP1,Books\n",
        1,
        "category",
    ),
    (
        "blank-value",
        "product_id,category\nP1,Books\n ,Home\n",
        "product_id,category\nP1,Books\nP2,Home\n",
        3,
        "product_id",
    ),
    ("blank-value", "product_id,category\nP1,\n", "product_id,category\nP1,Books\n", 2, "category"),
    (
        "duplicate-product",
        "product_id,category\nP1,Books\nP1,Home\n",
        "product_id,category\nP1,Home\n",
        3,
        "product_id",
    ),
    ("unknown-category", "product_id,category\nP1,books\n", "product_id,category\nP1,Books\n", 2, "category"),
    ("wrong-field-count", "product_id,category\nP1,Books,x\n", "product_id,category\nP1,Books\n", 2, None),
    ("no-rows", "product_id,category\n", "product_id,category\nP1,Books\n", 2, None),
    ("no-rows", "", "product_id,category\nP1,Books\n", 1, None),
    ("encoding-error", "product_id,category\nP1,B\xe9\n", "product_id,category\nP1,Books\n", 2, None),
    ("csv-error", 'product_id,category\nP1,"Bo"oks\n', 'product_id,category\nP1,"Books"\n', 2, None),
]


@pytest.mark.parametrize(("code", "bad", "good", "line", "column"), BAD_CATALOGS)
def test_each_catalog_error_rejects_and_its_fix_passes(
    code: str, bad: str, good: str, line: int, column: str | None, tmp_path: Path
) -> None:
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=LINES))
    path = tmp_path / "bad" / "products.csv"
    path.parent.mkdir()
    path.write_bytes(bad.encode("latin-1"))
    outcome = pipeline.process(pipeline.submit(path))
    assert outcome.status == "rejected"
    assert [i.code for i in outcome.report.errors] == [code]
    sample = outcome.report.errors[0].samples[0]
    assert (sample.line, sample.column) == (line, column)
    assert outcome.message.startswith(f"products.csv: invalid, {code} ×1 (first at line {line}")
    assert keys(pipeline, "rejected/") == ["products.csv", "products.csv.report.json"]
    report = json.loads(pipeline.store.get_bytes("rejected/products.csv.report.json"))
    assert report["errors"][0]["code"] == code and report["errors"][0]["hint"]
    assert pipeline.ledger.fact_entries(["catalog"])["catalog"] == []  # nothing of it counts
    fixed = drop(pipeline, tmp_path / "good" / "products.csv", good)
    assert fixed.status == "accepted", fixed.message


# -- the bound: a catalog change reads and recomputes only the dates its products sold on -------------
@pytest.mark.parametrize("warehouse", [None, "facts/daily/"], ids=["default-prefix", "own-prefix"])
def test_a_catalog_change_reads_only_the_dates_where_changed_products_sold(
    tmp_path: Path, warehouse: str | None
) -> None:
    """Also under a warehouse prefix of its own: the catalog before the change is read from
    there, or every product would look changed."""
    prefix = {} if warehouse is None else {"ORDERPIPE_PREFIXES_WAREHOUSE": warehouse}
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=LINES | prefix))
    days = [f"2025-08-{d:02d}" for d in range(1, 11)]
    for n, day in enumerate(days):  # one file per date: P<n> sells on its date, P0 on the first two
        lines = [Line(f"O{n}", "C1", day, "", f"P{n}", 1, Decimal("1.00"), False)]
        if n < 2:
            lines.append(Line(f"O{n}", "C1", day, "", "P0x", 1, Decimal("2.00"), False))
        assert drop_orders(pipeline, tmp_path / f"orders-{n}.csv", lines).status == "accepted"
    assert drop_catalog(pipeline, tmp_path / "products.csv", {f"P{n}": "Books" for n in range(10)}).status == "accepted"
    read: list[str] = []
    written: list[str] = []
    fact_entries, write = pipeline.ledger.fact_entries, pipeline.kpis.write

    def reading(dates: Any) -> Any:
        read.extend(dates)
        return fact_entries(dates)

    def writing(kpis: Any) -> Any:
        written.extend(kpis)
        return write(kpis)

    pipeline.ledger.fact_entries = reading  # type: ignore[method-assign]
    pipeline.kpis.write = writing  # type: ignore[method-assign]
    changed = {f"P{n}": "Books" for n in range(10)} | {"P0x": "Toys"}  # a full re-export, one product changed
    outcome = drop_catalog(pipeline, tmp_path / "products-2.csv", changed)
    assert outcome.dates == (days[0], days[1])
    assert sorted(set(read) - {"catalog"}) == days[:2]
    assert sorted(written) == days[:2]
    categories = {(c["order_date"], c["category"]) for c in snapshot(pipeline)[1]}
    assert (days[0], "Toys") in categories and (days[1], "Toys") in categories and (days[2], "Toys") not in categories


# -- versions: a recompute with an older catalog never overwrites a newer one -------------------------------
def test_a_stale_recompute_never_overwrites_kpis_of_a_newer_catalog(tmp_path: Path) -> None:
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=LINES))
    drop_orders(pipeline, tmp_path / "o.csv", [Line("O1", "C1", DAYS[0], "", "P1", 1, Decimal("1.00"), False)])
    fact_entries = pipeline.ledger.fact_entries
    stale = fact_entries([DAYS[0], "catalog"])  # read before the catalog batch commits
    drop_catalog(pipeline, tmp_path / "products.csv", {"P1": "Books"})
    pipeline.ledger.fact_entries = lambda dates: {d: stale[d] for d in dates}  # type: ignore[method-assign,assignment]
    assert pipeline.recompute([DAYS[0]]) == [DAYS[0]]  # skipped: a newer version is stored
    pipeline.ledger.fact_entries = fact_entries  # type: ignore[method-assign]
    assert [c["category"] for c in snapshot(pipeline)[1]] == ["Books"]


def test_catalog_compaction_keeps_the_kpis(tmp_path: Path) -> None:
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=LINES))
    pipeline.compact_after = 2
    drop_orders(
        pipeline,
        tmp_path / "o.csv",
        [Line("O1", "C1", DAYS[0], "", f"P{k}", 1, Decimal("1.00"), False) for k in range(4)],
    )
    catalog: dict[str, str] = {}
    for n in range(6):
        change = {f"P{n % 4}": CATS[n % 3], f"P{(n + 1) % 4}": CATS[(n + 1) % 3]}
        catalog |= change
        assert drop_catalog(pipeline, tmp_path / f"products-{n}.csv", change).status == "accepted"
    entries = pipeline.ledger.fact_entries(["catalog"])["catalog"]
    assert len(entries) <= 3 and entries[0].batch_id.startswith("compact-")
    assert [k for k in keys(pipeline, "warehouse/orders/catalog/")] == sorted(
        [f"batch-{e.batch_id}.parquet" for e in entries]
        + [f"history-{e.batch_id}.parquet" for e in entries if e.batch_id.startswith("compact-")]
    )  # a merged entry's history: what a retraction rewrites it from
    expected = reference(
        categorized([[Line("O1", "C1", DAYS[0], "", f"P{k}", 1, Decimal("1.00"), False) for k in range(4)]], catalog)
    )
    assert comparable(snapshot(pipeline)) == comparable(expected)


# -- settings ------------------------------------------------------------------------------------------
def test_catalog_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("input.columns.category is not read with input.catalog = true")):
        load_settings(tmp_path, environ={"ORDERPIPE_INPUT_CATALOG": "true", "ORDERPIPE_INPUT_COLUMNS_CATEGORY": "Type"})
    with pytest.raises(ConfigError, match=re.escape("read only with input.catalog = true")):
        load_settings(tmp_path, environ={"ORDERPIPE_INPUT_CATALOG_FILES": "skus*.csv"})
    with pytest.raises(ConfigError, match="must be true or false"):
        load_settings(tmp_path, environ={"ORDERPIPE_INPUT_CATALOG": "yes"})
    with pytest.raises(ConfigError, match=re.escape("must end in '.csv'")):
        load_settings(tmp_path, environ={"ORDERPIPE_INPUT_CATALOG": "true", "ORDERPIPE_INPUT_CATALOG_FILES": "skus*"})
    shape = load_settings(
        tmp_path, environ={"ORDERPIPE_INPUT": '{"catalog": true, "catalog_columns": {"category": "Type"}}'}
    ).shape
    assert shape.catalog and shape.catalog_category == "Type" and shape.is_catalog_file("products-2025.csv")
    assert not shape.is_catalog_file("orders.csv")


# -- the command line ------------------------------------------------------------------------------
def test_validate_explains_a_products_file_and_the_catalog(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from orderpipe.cli import main

    home = tmp_path / "home"
    home.mkdir()
    (home / "orderpipe.toml").write_text('[input]\ngrain = "line"\ncatalog = true\n')
    good = tmp_path / "products.csv"
    good.write_text("product_id,category\nP1,Books\nP2,Home\n")
    bad = tmp_path / "products-x.csv"
    bad.write_text("product_id,category\nP1,Books\nP1,Home\n")
    runner = CliRunner()
    result = runner.invoke(main, ["--home", str(home), "validate", str(good)])
    assert result.exit_code == 0
    assert result.output == (
        "products.csv: valid, 2 rows\n"
        "  read as: catalog: a products*.csv file; each row sets one product's category (products it does not"
        " name keep theirs)\n"
        "  read as: product_id <- 'product_id'\n"
        "  read as: category <- 'category'\n"
    )
    result = runner.invoke(main, ["--home", str(home), "validate", str(bad)])
    assert result.exit_code == 1
    assert "duplicate-product ×1 — give each product one row per catalog file" in result.output
    assert "line 3 [product_id]: product 'P1' already appears at line 2: give each product one row" in result.output
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDER_HEADER + "\nO1,C1,2025-07-06,P1,1,2.50,false\n")
    result = runner.invoke(main, ["--home", str(home), "validate", str(orders)])
    assert result.exit_code == 0
    assert result.output.endswith(
        "  read as: category <- the product's category in the latest catalog (products*.csv files); 'Unknown'"
        " until a catalog names the product\n"
    )


def test_the_shopify_preset_offers_the_catalog(tmp_path: Path) -> None:
    from orderpipe.presets import PRESETS

    text = PRESETS["shopify"]
    assert "# [input.catalog_columns]" in text
    enabled = (
        text.replace('category = "Vendor"', "")
        .replace('grain = "line"', 'grain = "line"\ncatalog = true')
        .replace("# [input.catalog_columns]", "[input.catalog_columns]")
        .replace('# product_id = "Variant SKU"', 'product_id = "Variant SKU"')
        .replace('# category = "Type"', 'category = "Type"')
    )
    home = tmp_path / "home"
    home.mkdir()
    (home / "orderpipe.toml").write_text(enabled)
    shape = load_settings(home, environ={}).shape
    assert shape.catalog and (shape.catalog_product_id, shape.catalog_category) == ("Variant SKU", "Type")
    assert shape.is_catalog_file("products_export_1.csv") and "category" not in shape.required()


def _an_unfinished_catalog_batch(tmp_path: Path) -> tuple[Pipeline, str, BatchRecord]:
    """Orders, two finished catalog batches and a third committed but not finished (as if its
    process had been killed after the commit), compacting after every entry."""
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=LINES))
    pipeline.compact_after = 1
    drop_orders(pipeline, tmp_path / "o.csv", [Line("O1", "C1", DAYS[0], "", "P1", 1, Decimal("1.00"), False)])
    drop_catalog(pipeline, tmp_path / "products-1.csv", {"P1": "Books"})
    drop_catalog(pipeline, tmp_path / "products-2.csv", {"P2": "Books"})
    path = tmp_path / "products-3.csv"
    path.write_text("product_id,category\nP1,Toys\n")
    key = pipeline.submit(path)
    with pipeline.inspected(key) as (inspection, _scratch, _snapshot):
        record = pipeline.commit("products-3.csv", inspection)
    return pipeline, key, record


def test_catalog_compaction_leaves_an_unfinished_catalog_batch_alone(tmp_path: Path) -> None:
    """A committed catalog batch not yet finished keeps its own entry, so it can still find the
    products it changed (and so the dates to recompute) after a compaction."""
    pipeline, key, record = _an_unfinished_catalog_batch(tmp_path)
    pipeline.compact(["catalog"])
    entries = pipeline.ledger.fact_entries(["catalog"])["catalog"]
    assert [e.batch_id for e in entries][1:] == [record.batch_id] and entries[0].batch_id.startswith("compact-")
    assert pipeline.batch_dates(record) == [DAYS[0]]
    outcome = pipeline.process(key)
    assert outcome.status == "accepted" and outcome.dates == (DAYS[0],)
    assert [c["category"] for c in snapshot(pipeline)[1]] == ["Toys"]


def test_a_catalog_commit_between_the_ledger_reads_is_read_again(tmp_path: Path) -> None:
    """A ledger read per key (DynamoDB) can see the catalog before a catalog batch commits and
    a date after a later order batch did: both versions would be equal, the KPIs not. The
    catalog is read again after the dates, and everything again when it changed."""
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=LINES))
    drop_orders(pipeline, tmp_path / "o1.csv", [Line("O1", "C1", DAYS[0], "", "P1", 1, Decimal("1.00"), False)])
    real = pipeline.ledger.fact_entries
    before = real(["catalog"])["catalog"]
    drop_catalog(pipeline, tmp_path / "products.csv", {"P1": "Books"})
    drop_orders(pipeline, tmp_path / "o2.csv", [Line("O2", "C2", DAYS[0], "", "P1", 1, Decimal("2.00"), False)])
    calls: list[list[str]] = []

    def racing(keys: list[str]) -> dict[str, Any]:
        calls.append(list(keys))
        read = real(keys)
        if len(calls) == 1:  # the catalog as it was before the catalog batch, the date as it is now
            read["catalog"] = before
        return read

    pipeline.ledger.fact_entries = racing  # type: ignore[method-assign,assignment]
    assert pipeline.recompute([DAYS[0]]) == []  # written: the same version as stored
    assert [(c["category"], c["orders"]) for c in snapshot(pipeline)[1]] == [("Books", 2)]
    assert calls == [["catalog", DAYS[0]], ["catalog"], ["catalog", DAYS[0]], ["catalog"]]


def test_a_second_compaction_beside_an_unfinished_catalog_batch_keeps_the_merged_file(tmp_path: Path) -> None:
    """While a catalog batch is unfinished, only the entries before it may be merged. Once they
    are one merged entry, a second worker's compaction finds a single entry to merge: merging it
    would give it its own name again, and deleting what it replaced would delete the file the
    ledger still names. A single entry is left as it is, and the unfinished batch still finishes."""
    pipeline, key, record = _an_unfinished_catalog_batch(tmp_path)
    assert pipeline.compact(["catalog"]) == ["catalog"]
    merged, unfinished = pipeline.ledger.fact_entries(["catalog"])["catalog"]
    assert merged.batch_id.startswith("compact-") and unfinished.batch_id == record.batch_id
    files = keys(pipeline, "warehouse/orders/catalog/")
    assert files == sorted(
        [f"batch-{merged.batch_id}.parquet", f"batch-{record.batch_id}.parquet", f"history-{merged.batch_id}.parquet"]
    )

    second = open_pipeline(load_settings(tmp_path / "home", environ=LINES))  # another worker on the same home
    second.compact_after = 1
    assert second.compact(["catalog"]) == []
    assert second.ledger.fact_entries(["catalog"])["catalog"] == [merged, unfinished]
    assert keys(second, "warehouse/orders/catalog/") == files
    outcome = second.process(key)
    assert outcome.status == "accepted" and outcome.dates == (DAYS[0],), outcome.message
    assert [(c["category"], c["order_date"]) for c in snapshot(second)[1]] == [("Toys", DAYS[0])]


def test_recovery_of_a_committed_catalog_batch_recomputes_the_dates_it_changed(tmp_path: Path) -> None:
    """A catalog batch whose run died after its commit and its archiving is finished by the
    next start-up: the dates on which the products it changed sold are recomputed (not its
    `catalog` key), and the run history says so."""
    home = tmp_path / "home"
    pipeline = open_pipeline(load_settings(home, environ=LINES))
    lines = [
        Line("O1", "C1", DAYS[0], "", "P1", 1, Decimal("1.00"), False),
        Line("O2", "C2", DAYS[1], "", "P2", 1, Decimal("2.00"), False),
    ]
    assert drop_orders(pipeline, tmp_path / "o.csv", lines).status == "accepted"
    path = tmp_path / "products.csv"
    path.write_text("product_id,category\nP1,Books\n")
    key = pipeline.submit(path)
    with pipeline.inspected(key) as (inspection, _scratch, snapshot_):
        record = pipeline.commit("products.csv", inspection)
        pipeline.archive.to_processed(key, "products.csv", record.batch_id, snapshot_)  # then "killed"
    assert [(c["category"], c["order_date"]) for c in snapshot(pipeline)[1]] == [
        ("Unknown", DAYS[0]),
        ("Unknown", DAYS[1]),
    ]

    restarted = open_pipeline(load_settings(home, environ=LINES))
    assert restarted.recover() == [record.batch_id]
    assert [(c["category"], c["order_date"]) for c in snapshot(restarted)[1]] == [
        ("Books", DAYS[0]),
        ("Unknown", DAYS[1]),
    ]
    last = restarted.ledger.runs()[-1]
    assert (last.file, last.status, last.dates) == ("products.csv", "accepted", (DAYS[0],))
    assert last.message == f"products.csv: accepted (finished after an interruption), 1 rows {DAYS[0]}…{DAYS[0]}"
    assert restarted.ledger.unfinished() == []


def test_an_older_catalog_batch_finished_after_a_newer_one_still_recomputes(tmp_path: Path) -> None:
    """What a catalog batch changed is measured against the catalog before it, never against
    batches committed after it: a newer batch that repeats its change finds nothing changed
    (the older one is committed), so the older one, finishing last, must recompute the date."""
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=LINES))
    drop_orders(pipeline, tmp_path / "o.csv", [Line("O1", "C1", DAYS[0], "", "P1", 1, Decimal("1.00"), False)])
    path = tmp_path / "products-1.csv"
    path.write_text("product_id,category\nP1,Books\n")
    older = pipeline.submit(path)
    with pipeline.inspected(older) as (inspection, _scratch, _snapshot):
        pipeline.commit("products-1.csv", inspection)  # committed; its run goes on later
    newer = drop_catalog(pipeline, tmp_path / "products-2.csv", {"P1": "Books", "P2": "Toys"})
    assert newer.status == "accepted" and newer.dates == ()  # P1 as the older batch set it; P2 sold nowhere
    assert [c["category"] for c in snapshot(pipeline)[1]] == ["Unknown"]
    outcome = pipeline.process(older)
    assert outcome.status == "accepted" and outcome.dates == (DAYS[0],), outcome.message
    assert [(c["category"], c["order_date"], c["daily_revenue"]) for c in snapshot(pipeline)[1]] == [
        ("Books", DAYS[0], Decimal("1.00"))
    ]


def test_the_product_index_names_each_product_and_date_once(tmp_path: Path) -> None:
    """What an order batch adds to the product index: each product with the dates it sold on,
    in order, each date once however many lines (in however many facts files) sold it there: a
    DynamoDB batch write refuses one key twice."""
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    day = [dt.date(2025, 7, d) for d in (1, 2, 3)]
    pl.DataFrame(
        {"product_id": ["P1", "P1", "P2", "P1"], "order_date": [day[1], day[1], day[0], day[0]]}
    ).write_parquet(first)
    pl.DataFrame({"product_id": ["P1", "P2"], "order_date": [day[1], day[0]]}).write_parquet(second)
    index = product_index([first, second])
    assert {p: list(dates) for p, dates in index.items()} == {
        "P1": ["2025-07-01", "2025-07-02"],
        "P2": ["2025-07-01"],
    }


def test_a_catalog_row_may_set_a_product_back_to_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Unknown` is an allowed category in a catalog whatever `categories` lists: it sets a
    product back to unknown. The screen takes it (the exact validator is not needed), and the
    dates the product sold on are recomputed."""
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=LINES))
    assert "Unknown" not in pipeline.categories
    drop_orders(pipeline, tmp_path / "o.csv", [Line("O1", "C1", DAYS[0], "", "P1", 1, Decimal("1.00"), False)])
    assert drop_catalog(pipeline, tmp_path / "products-1.csv", {"P1": "Books"}).status == "accepted"
    calls: list[int] = []
    real = ingest.validate
    monkeypatch.setattr(ingest, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
    outcome = drop_catalog(pipeline, tmp_path / "products-2.csv", {"P1": "Unknown", "P2": "Unknown"})
    assert outcome.status == "accepted" and outcome.report.errors == (), outcome.message
    assert outcome.dates == (DAYS[0],) and calls == []
    assert [(c["category"], c["order_date"]) for c in snapshot(pipeline)[1]] == [("Unknown", DAYS[0])]
    assert keys(pipeline, "processed/") == ["o.csv", "products-1.csv", "products-2.csv"]
