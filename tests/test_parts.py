"""The fast reading of relational header and line files against the exact rules: on any file,
the same verdict, the same report and the same staged rows (`parts.py`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderpipe.core.shape import InputShape
from orderpipe.parts import _screened, inspect_part
from tests.conftest import examples
from tests.core.test_relational_rows import LAB, PLAIN

NOW = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)
IDS = st.sampled_from(["O1", "O2", "O3", "7", " O4", "O5 ", "", "\u200b", "Ö6"])
TIMESTAMPS = st.sampled_from(
    [
        "2025-03-01T10:00:00",
        "2025-03-01T23:30:00-02:00",
        "2025-03-02 09:50:26 +0200",
        "2025-03-01T10:00:00Z",
        "1999-12-31T23:00:00",
        "2031-01-01T00:00:00",
        "2025-02-30T10:00:00",
        "soon",
        "",
        " 2025-03-01T10:00:00",
        "2025-03-11T23:59:59",  # the window's bounds (NOW: tomorrow is the latest date allowed)
        "2025-03-12T00:00:00",
        "2000-01-01T00:00:00",
    ]
)
DATES = st.sampled_from(
    ["2025-03-01", "2025-3-1", "2025-02-30", "1999-01-01", "", "0001-01-01", " 2025-03-02", "2025-03-11", "2025-03-12"]
)
STATUSES = st.sampled_from(["returned", "Returned", "RETURNED", "delivered", "", " returned", "shipped"])
FLAGS = st.sampled_from(["true", "false", "True", "FALSE", "yes", "", " true"])
COUNTS = st.sampled_from(["", "0", "1", "3", "007", "123456789", "1234567890", "-1", "x", " 2"])
PRICES = st.sampled_from(["1", "10.50", "0.0001", "0", "-1", "1.23456", " 2", "", "1e3", "999999999999.9999"])


GOOD_TIMESTAMPS = st.sampled_from(["2025-03-01T10:00:00", "2025-03-01T23:30:00-02:00", "2025-03-02 09:50:26 +0200"])
GOOD_COUNTS = st.sampled_from(["", "1", "3", "123456789"])


@st.composite
def header_file(draw: st.DrawFn, plain: bool) -> str:
    """Mostly rows as exports write them (so the fast reading decides), some with one field of
    any value (so each rule alone is compared)."""
    anything = (IDS, IDS, DATES if plain else TIMESTAMPS, FLAGS if plain else STATUSES, COUNTS)
    rows = []
    for n in range(draw(st.integers(1, 6))):
        day = draw(st.just("2025-03-01") if plain else GOOD_TIMESTAMPS)
        flag = draw(st.sampled_from(["true", "false", "True"]) if plain else st.sampled_from(["returned", "shipped"]))
        row = [f"O{n}", f"C{n % 3}", day, flag, draw(GOOD_COUNTS)]
        if draw(st.integers(0, 9)) >= 8:
            at = draw(st.integers(0, 4))
            row[at] = draw(anything[at])
        rows.append(",".join(row))
    head = (
        "order_id,customer_id,order_date,returned,num_of_item"
        if plain
        else "order_id,user_id,created_at,status,num_of_item"
    )
    return "\n".join([head, *rows]) + "\n"


@st.composite
def line_file(draw: st.DrawFn) -> str:
    rows = []
    for n in range(draw(st.integers(1, 6))):
        row = [f"{n}", f"O{n % 2}", f"P{n % 3}", draw(st.sampled_from(["1", "10.50", "0.0001", "999999999999.9999"]))]
        if draw(st.integers(0, 9)) >= 8:
            at = draw(st.integers(0, 3))
            row[at] = draw((IDS, IDS, IDS, PRICES)[at])
        rows.append(",".join(row))
    return "\n".join(["id,order_id,product_id,sale_price", *rows]) + "\n"


DECIDED: list[bool] = []  # per comparison: whether the fast reading decided it


def both_ways(folder: Path, name: str, text: str, shape: InputShape) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    kind = shape.kind_of(name)
    fast_dir, exact_dir = folder / "fast", folder / "exact"
    for d in (fast_dir, exact_dir):
        d.mkdir(exist_ok=True)
    fast = inspect_part(path, name, shape, fast_dir, kind, lambda *a: None, NOW)
    exact = inspect_part(path, name, shape, exact_dir, kind, lambda *a: None, NOW, fast=False)
    DECIDED.append(
        _screened(path, name, shape, kind or "", shape.date_window(NOW) if kind == "headers" else None) is not None
    )
    assert fast.batch_id == exact.batch_id
    assert fast.report == exact.report, text
    if exact.part is None:
        assert fast.part is None
        return
    assert fast.part is not None and fast.part.rows == exact.part.rows
    assert pl.read_parquet(fast.part.path).equals(pl.read_parquet(exact.part.path)), text


@settings(
    max_examples=examples(150),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=header_file(plain=False))
def test_a_header_file_with_timestamps_and_statuses_is_read_alike(text: str, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    both_ways(tmp_path_factory.mktemp("h"), "orders_1.csv", text, LAB)


@settings(
    max_examples=examples(100),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=header_file(plain=True))
def test_a_header_file_with_dates_and_flags_is_read_alike(text: str, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    shape = InputShape(grain="relational", catalog=True, columns=(("items_expected", "num_of_item"),))
    both_ways(tmp_path_factory.mktemp("p"), "orders_1.csv", text, shape)


@settings(
    max_examples=examples(150),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=line_file())
def test_a_line_file_is_read_alike(text: str, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    both_ways(tmp_path_factory.mktemp("l"), "order_items_1.csv", text, LAB)


def test_the_comparisons_above_were_decided_by_the_fast_reading_as_often_as_not() -> None:
    """Else they would compare the exact rules with themselves (run after them: file order)."""
    assert len(DECIDED) >= 30
    assert 0.3 < sum(DECIDED) / len(DECIDED) < 0.95


def test_plain_valid_files_are_decided_by_the_fast_reading(tmp_path: Path) -> None:
    headers = tmp_path / "orders_1.csv"
    headers.write_text("order_id,user_id,created_at,status,num_of_item,extra\nO1,7,2025-03-01T10:00:00,returned,,x\n")
    decided = _screened(headers, headers.name, LAB, "headers", LAB.date_window(NOW))
    assert decided is not None
    report, rows = decided
    assert report.warnings and rows.to_dicts() == [
        {
            "order_id": "O1",
            "customer_id": "7",
            "order_date": dt.date(2025, 3, 1),
            "returned": True,
            "items_expected": None,
        }
    ]
    lines = tmp_path / "order_items_1.csv"
    lines.write_text("id,order_id,product_id,sale_price\r\n1,O1,P1,10.5\r\n2,O1,P1,3\r\n")
    assert _screened(lines, lines.name, LAB, "lines", None) is not None
    plain = tmp_path / "orders_2.csv"
    plain.write_text("order_id,customer_id,order_date,returned\nO1,7,2025-03-01,TRUE\n")
    assert _screened(plain, plain.name, PLAIN, "headers", PLAIN.date_window(NOW)) is not None


def test_what_the_fast_reading_leaves_to_the_exact_rules(tmp_path: Path) -> None:
    """A blank line, a short row, a line break inside quotes: never decided fast."""
    cases = {
        "blank": "id,order_id,product_id,sale_price\n1,O1,P1,1\n\n2,O1,P1,1\n",
        "short": "id,order_id,product_id,sale_price\n1,O1,P1\n",
        "quoted-break": 'id,order_id,product_id,sale_price\n1,O1,"P\n1",1\n',
        "duplicate": "id,order_id,product_id,sale_price\n1,O1,P1,1\n1,O2,P1,1\n",
    }
    for label, text in cases.items():
        path = tmp_path / f"order_items_{label}.csv"
        path.write_text(text)
        assert _screened(path, path.name, LAB, "lines", None) is None, label
        both_ways(tmp_path / label, path.name, text, LAB) if (tmp_path / label).mkdir() is None else None


def _values(strategy: st.SearchStrategy[str]) -> list[str]:
    return (
        list(strategy.wrapped_strategy.elements) if hasattr(strategy, "wrapped_strategy") else list(strategy.elements)
    )  # type: ignore[attr-defined]


def test_every_value_of_every_field_alone_is_read_alike(tmp_path: Path) -> None:
    """A valid file but for one field of one row, for every value drawn above: each rule of the
    fast reading against the exact one, none left to chance."""
    timestamped = "order_id,user_id,created_at,status,num_of_item"
    dated = "order_id,customer_id,order_date,returned"
    cases = [
        (LAB, "orders_1.csv", timestamped, ["O1", "C1", "2025-03-01T10:00:00", "returned", "2"],
         (IDS, IDS, TIMESTAMPS, STATUSES, COUNTS)),
        (PLAIN, "orders_1.csv", dated, ["O1", "C1", "2025-03-01", "true"], (IDS, IDS, DATES, FLAGS)),
        (LAB, "order_items_1.csv", "id,order_id,product_id,sale_price", ["1", "O1", "P1", "2.50"],
         (IDS, IDS, IDS, PRICES)),
    ]  # fmt: skip
    n = 0
    for shape, name, head, valid, strategies in cases:
        first = ",".join(["Z0", *valid[1:]])  # a valid row of another id
        for at, strategy in enumerate(strategies):
            for value in _values(strategy):
                row = list(valid)
                row[at] = value
                n += 1
                both_ways(tmp_path / str(n), name, f"{head}\n{first}\n{','.join(row)}\n", shape)
    assert n > 60
