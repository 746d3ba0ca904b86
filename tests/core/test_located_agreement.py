"""Invalid files, located: `ingest.inspect_file` gives an invalid file the report the exact
validator's full read gives (`report.to_dict()`: codes, counts, samples with lines, columns and
messages, hints, warnings), while the exact rules read only the suspect rows (`locate.py`); the
full read runs only where locating is not proved the same (a row with too many fields: Polars
refuses it; a line break inside quotes). Files break several rules at once, in few rows or
most, at the edges of the screen's batches, with blank lines, orders whose lines are not
together, in every shape (order and line grain, timestamps, a status, the catalog) and catalog
files, in any spelling (`tests/spelling.py`: quotes, CRLF, a BOM, padding)."""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import orderpipe.ingest as ingest
import orderpipe.shaped as shaped
from orderpipe.core.catalog import validate_catalog
from orderpipe.core.shape import InputShape
from orderpipe.core.shape_validate import validate_shaped
from tests.conftest import examples
from tests.core.test_catalog_agreement import SHAPES as CATALOG_SHAPES
from tests.core.test_catalog_agreement import categories, products
from tests.core.test_shape_agreement import CATS, PADS, break_rule, draw_orders, draw_shape
from tests.spelling import spelled

#: The rules an order file's rows break here (each in a shape that has it, or harmlessly not).
ORDER_RULES = [
    "blank-value",
    "invalid-integer",
    "invalid-timestamp",
    "duplicate-order-id",
    "duplicate-line",
    "inconsistent-order",
    "short",
    "long",
    "blank-line",
]


@dataclass
class Case:
    shape: InputShape
    name: str
    data: bytes
    located: bool  # the full read must not run: nothing here stops locating


def _edges(draw: st.DrawFn, rows: int) -> int:
    """A row to break: often the first or the last (the edges of the screen's batches)."""
    return draw(st.sampled_from([0, rows - 1]) | st.integers(0, rows - 1))


@st.composite
def padded(draw: st.DrawFn, rows: list[list[str]]) -> list[list[str]]:
    """The rows with their values padded with white space: any value, or only in a few rows (a
    padded id then has its unpadded twin in a row the untrimmed screen passes)."""
    few = draw(st.sets(st.integers(0, len(rows) - 1), max_size=2)) if draw(st.booleans()) else None
    pad = st.sampled_from(PADS)
    return [[draw(pad) + v + draw(pad) for v in row] if few is None or i in few else row for i, row in enumerate(rows)]


@st.composite
def order_case(draw: st.DrawFn) -> Case:
    shape, header = draw(draw_shape(None))
    rows = []
    for group in range(draw(st.integers(1, 3))):  # up to 36 rows, in orders #1000…, #2000…, #3000…
        for row in draw(draw_orders(shape, None)):
            rows.append(row | {"order_id": row["order_id"].replace("#1", f"#{group + 1}", 1)})
    breaks = draw(st.lists(st.sampled_from(ORDER_RULES), min_size=1, max_size=max(2, len(rows))))
    for rule in breaks:
        at = _edges(draw, len(rows))
        if rule == "duplicate-line":  # often right below its first: the order's lines stay together
            rows.insert(draw(st.sampled_from([at + 1, len(rows)])), dict(rows[at]))
        elif rule not in ("short", "long", "blank-line"):
            draw(break_rule(rows, at, shape, rule))
    if draw(st.integers(0, 4)) == 0:  # an order's lines apart, ids repeated out of order
        rows = draw(st.permutations(rows))
    sources = {shape.source(f): f for f in (*shape.required(), "line_id")}
    text_rows = [[r[sources.get(name, name)] for name in header] for r in rows]
    for rule in breaks:
        at = _edges(draw, len(text_rows))
        if rule == "short":
            text_rows[at] = text_rows[at][:-1]
        elif rule == "long":
            text_rows[at] = [*text_rows[at], "z"]
        elif rule == "blank-line":
            text_rows.insert(at, [draw(st.sampled_from(["", "  "]))])
    text_rows = draw(padded(text_rows))
    broken_line = draw(st.integers(0, 9)) == 0  # a line break inside a quoted value
    if broken_line:
        row = text_rows[_edges(draw, len(text_rows))]
        row[0] = row[0] + "\n"
    data = draw(spelled([header, *text_rows]))
    return Case(shape, "orders.csv", data, located="long" not in breaks and not broken_line)


@st.composite
def catalog_case(draw: st.DrawFn) -> Case:
    shape = draw(st.sampled_from(CATALOG_SHAPES))
    product, category = shape.catalog_product_id, shape.catalog_category
    header = draw(st.permutations([product, category, *draw(st.sampled_from([[], ["Title"]]))]))
    names = draw(st.lists(products, min_size=1, max_size=12, unique=True))
    rows = [{product: p, category: draw(categories), "Title": "t"} for p in names]
    rules = ["blank-value", "unknown-category", "duplicate-product", "short", "blank-line"]
    breaks = draw(st.lists(st.sampled_from(rules), min_size=1, max_size=max(2, len(rows))))
    for rule in breaks:
        at = _edges(draw, len(rows))
        if rule == "blank-value":
            rows[at][draw(st.sampled_from([product, category]))] = draw(st.sampled_from(["", " ", "\u200b"]))
        elif rule == "unknown-category":
            rows[at][category] = draw(st.sampled_from(["books", "Gadgets", "unknown"]))
        elif rule == "duplicate-product":
            rows.insert(draw(st.integers(0, len(rows))), dict(rows[at]) | {category: draw(categories)})
    text_rows = [[r.get(h, "t") for h in header] for r in rows]
    for rule in breaks:
        at = _edges(draw, len(text_rows))
        if rule == "short":
            text_rows[at] = text_rows[at][:-1]
        elif rule == "blank-line":
            text_rows.insert(at, [draw(st.sampled_from(["", "  "]))])
    text_rows = draw(padded(text_rows))
    return Case(shape, "products.csv", draw(spelled([header, *text_rows])), located=True)


def check(case: Case, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.BytesIO(case.data)
    if case.shape.is_catalog_file(case.name):
        exact = validate_catalog(stream, case.name, case.shape, frozenset(CATS))
    else:
        exact = validate_shaped(stream, case.name, case.shape, frozenset(CATS))
    assume(not exact.valid)
    calls: list[int] = []
    real = ingest.validate
    monkeypatch.setattr(ingest, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = tmp / case.name
    path.write_bytes(case.data)
    inspection = ingest.inspect_file(path, case.name, CATS, tmp, ingest.ROWS_PER_PART, case.shape)
    assert inspection.report.to_dict() == exact.to_dict()
    assert inspection.facts is None and inspection.catalog is None
    if case.located:
        assert not calls, "an invalid file whose rows are one line each is located, not read whole"
    assert ingest.validate_file(path, case.name, CATS, case.shape).to_dict() == exact.to_dict()


SETTINGS = settings(
    derandomize=True,
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("kind", ["orders", "catalog"])
@SETTINGS
@given(data=st.data())
def test_a_located_report_is_the_full_reads(kind: str, data: st.DataObject, monkeypatch: pytest.MonkeyPatch) -> None:
    # Batches of any size: a suspect row and the rows related to it fall in different batches.
    monkeypatch.setattr(shaped, "SCREEN_ROWS", data.draw(st.sampled_from([1, 2, 3, 7, shaped.SCREEN_ROWS])))
    # Now and then the untrimmed screen gives up at once (many rows fail): the trimmed one locates.
    monkeypatch.setattr(shaped, "LOCATE_FLOOR", data.draw(st.sampled_from([1, shaped.LOCATE_FLOOR])))
    with tempfile.TemporaryDirectory() as tmp:
        check(data.draw(order_case() if kind == "orders" else catalog_case()), Path(tmp), monkeypatch)


HEADER = "order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned\n"


@pytest.mark.parametrize(
    ("shape", "rows"),
    [
        # the padded copy fails the untrimmed screen; its trimmed id repeats the clean first row's
        (
            InputShape(),
            "O1,C1,2025-01-01,Books,P1,1,2.5,false\nO2,C1,2025-01-01,Books,P1,x,2.5,false\n"
            " O1,C1,2025-01-01,Books,P1,1,2.5,false\n",
        ),
        # a later line, padded, inherits its order's fields from a first line the screen passes
        (
            InputShape(grain="line"),
            "O1,C1,2025-01-01,Books,P1,1,2.5,false\n O1,,,Books,P2,1,2.5,\nO2,C1,2025-01-01,Books,P1,0,2.5,false\n",
        ),
    ],
    ids=["order-grain", "line-grain"],
)
def test_a_padded_id_relates_its_row_to_the_trimmed_ids_rows(shape: InputShape, rows: str, tmp_path: Path) -> None:
    """A row is related by its id as the exact rules trim it: a row whose padded id fails the
    screen is read with every row of the same trimmed id."""
    path = tmp_path / "f.csv"
    path.write_text(HEADER + rows)
    exact = validate_shaped(io.BytesIO(path.read_bytes()), "f.csv", shape, frozenset(CATS))
    report = ingest.inspect_file(path, "f.csv", CATS, tmp_path, ingest.ROWS_PER_PART, shape).report
    assert not exact.valid and report.to_dict() == exact.to_dict()


@pytest.mark.parametrize(
    ("shape", "rows", "located"),
    [
        # an order's lines together, the later one disagreeing: only the screen's flag names it
        (
            InputShape(grain="line"),
            "O1,C1,2025-01-01,Books,P1,1,2.5,false\nO2,C1,2025-01-01,Books,P1,x,2.5,false\n"
            "O3,C1,2025-01-01,Books,P1,1,2.5,false\nO3,C2,2025-01-01,Books,P2,1,2.5,false\n",
            True,
        ),
        # a line break inside quotes: row k is no longer line k + 2, the full read reports
        (
            InputShape(),
            'O1,"C\n1",2025-01-01,Books,P1,1,2.5,false\nO2,C1,2025-01-01,Books,P1,1,2.5,false\n'
            "O3,C1,2025-01-01,Books,P1,x,2.5,false\nO4,C1,2025-01-01,Books,P1,0,2.5,false\n",
            False,
        ),
    ],
    ids=["inconsistent-order", "line-break-in-quotes"],
)
def test_what_only_the_file_shows_is_located_or_read_whole(
    shape: InputShape, rows: str, located: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule broken between rows the screen passes one by one is still located; lines that are
    not one row each are read whole."""
    path = tmp_path / "f.csv"
    path.write_text(HEADER + rows)
    calls: list[int] = []
    real = ingest.validate
    monkeypatch.setattr(ingest, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
    exact = validate_shaped(io.BytesIO(path.read_bytes()), "f.csv", shape, frozenset(CATS))
    report = ingest.inspect_file(path, "f.csv", CATS, tmp_path, ingest.ROWS_PER_PART, shape).report
    assert not exact.valid and report.to_dict() == exact.to_dict()
    assert bool(calls) is not located


def test_the_progress_bar_reads_on_past_a_failing_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The screen reads every row of an invalid file to locate: a bar counting its rows must
    not stop at the first failing batch."""
    monkeypatch.setattr(shaped, "SCREEN_ROWS", 2)
    path = tmp_path / "f.csv"
    rows = [f"O{n},C1,2025-01-01,Books,P1,{'x' if n == 1 else 1},2.5,false\n" for n in range(9)]
    path.write_text(HEADER + "".join(rows))
    counts: list[int] = []
    fast = ingest._screened(path, "f.csv", InputShape(), CATS, ingest.Unstaged, False, on_rows=counts.append)
    assert isinstance(fast, shaped.Suspects) and fast.read.to_list() == [1]
    assert max(counts) == len(rows)
