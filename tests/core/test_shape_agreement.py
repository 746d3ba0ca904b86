"""Every order shape, both paths: the fast Polars reading (`ingest.inspect_file`) and the exact
validator (`core/shape_validate.py`) give the same report and staged rows, and a valid file, in
any spelling (`tests/spelling.py`), is decided by the fast path alone (values padded with white
space: by its trimmed screen).
Shapes are drawn from the seed's (nothing configured) to line items with renamed columns,
timestamps in a zone, a status and a line id, with or without the product catalog. Each new
error code comes with files that break it and files that do not."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import orderpipe.ingest as ingest
import orderpipe.shaped as shaped
from orderpipe.core.rules import COLUMNS, DEFAULT_CATEGORIES
from orderpipe.core.shape import InputShape
from orderpipe.core.shape_validate import validate_shaped
from orderpipe.core.timestamps import local_date
from orderpipe.core.window import DateWindow
from tests.spelling import spelled

CATS = list(DEFAULT_CATEGORIES)
RULES = [
    None,
    "invalid-timestamp",
    "duplicate-line",
    "inconsistent-order",
    "duplicate-order-id",
    "blank-value",
    "invalid-integer",
    "wrong-field-count",
    "implausible-date",
]


@dataclass
class Case:
    shape: InputShape
    data: bytes
    codes: set[str]
    plain: bool


#: Zones with daylight saving time north and south, half and quarter hours, the date line, and
#: one Polars does not know: timestamps are read in one of them, over the years 2-9998.
ZONES = ["America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Kiritimati", "Europe/Dublin", "Factory"]
DAYS = st.dates(dt.date(2024, 1, 1), dt.date(2026, 12, 31)) | st.dates(dt.date(2, 1, 1), dt.date(9998, 12, 31))
#: The clock both paths read the date window on: 23:30 in UTC, 18:30 in New York, already the
#: next day in Kathmandu, Kiritimati and Lord Howe: "tomorrow" is 2026-01-01 or 2026-01-02.
NOW = dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.UTC)
#: The date window as it comes (2000-01-01 to tomorrow in the zone), fixed, or off.
WINDOWS: list[dict[str, str]] = [{}, {"earliest_date": "2010-03-01", "latest_date": "2030-06-30"}, {"dates": "any"}]
#: The date an inconsistent line is given: inside every window.
OTHER_DAY = "2011-11-11"
ONE_DAY = dt.timedelta(days=1)


def shape_of(
    lines: bool,
    timestamps: bool,
    status: bool,
    renamed: bool,
    line_id: bool,
    zone: str = "America/New_York",
    catalog: bool = False,
    window: dict[str, str] | None = None,
) -> InputShape:
    columns = {}
    if renamed:
        columns |= {"order_id": "Name", "customer_id": "Email", "quantity": "Lineitem quantity"}
        columns |= {"unit_price": "Lineitem price", "product_id": "Lineitem sku"}
    if timestamps:
        columns["order_timestamp"] = "Created at"
    if line_id:
        columns["line_id"] = "Line"
    return InputShape(
        grain="line" if lines else "order",
        columns=tuple(sorted(columns.items())),
        timezone=zone if timestamps else None,
        returned_column="Financial Status" if status else None,
        returned_values=("refunded", "voided") if status else (),
        catalog=catalog,
        **(window or {}),
    )


#: White space a value may be padded with: every value is trimmed, so it changes nothing but
#: which screen reads the file (the untrimmed one refuses it, the trimmed one takes it).
PADS = ["", "", "", " ", "\t", "\u00a0", "\u3000"]


@st.composite
def draw_case(draw: st.DrawFn, rule: str | None) -> Case:
    shape, header = draw(draw_shape(rule))
    rows = draw(draw_orders(shape, rule))
    at = draw(st.integers(0, len(rows) - 1))
    codes = {rule} if rule else set()
    draw(break_rule(rows, at, shape, rule))
    sources = {shape.source(f): f for f in (*shape.required(), "line_id")}
    text_rows = [[r[sources.get(name, name)] for name in header] for r in rows]
    if rule == "wrong-field-count":
        text_rows[at] = text_rows[at][:-1]
    text_rows = [[draw(st.sampled_from(PADS)) + v + draw(st.sampled_from(PADS)) for v in row] for row in text_rows]
    return Case(shape, draw(spelled([header, *text_rows])), codes, plain=True)


@st.composite
def draw_shape(draw: st.DrawFn, rule: str | None) -> tuple[InputShape, list[str]]:
    """A shape the rule can be broken in, and a file header for it (an unused `Note` column,
    and with the catalog on, now and then a `category` column it ignores)."""
    lines = draw(st.booleans()) if rule not in ("duplicate-line", "inconsistent-order") else True
    lines = False if rule == "duplicate-order-id" else lines
    timestamps = draw(st.booleans()) if rule != "invalid-timestamp" else True
    status, catalog = draw(st.booleans()), draw(st.integers(0, 3)) == 0
    zone = draw(st.sampled_from(ZONES))
    line_id = lines and draw(st.booleans())
    window = draw(st.sampled_from(WINDOWS if rule != "implausible-date" else WINDOWS[:-1]))
    shape = shape_of(lines, timestamps, status, draw(st.booleans()), line_id, zone, catalog, window)
    fields = [*shape.required(), *(["line_id"] if line_id else [])]
    header = [shape.source(f) for f in fields] + ["Note"] + (["category"] if catalog and draw(st.booleans()) else [])
    header = draw(st.permutations(header))
    if rule == "wrong-field-count" and draw(st.booleans()):  # the short row lacks only an unused column
        header = [h for h in header if h != "Note"] + ["Note"]
    return shape, header


@st.composite
def draw_orders(draw: st.DrawFn, shape: InputShape, rule: str | None) -> list[dict[str, str]]:
    """Valid rows of one to four orders, of one to three lines each at line grain."""
    rows: list[dict[str, str]] = []
    for n in range(draw(st.integers(1, 4))):
        day = draw(days_in(shape.date_window(NOW), shape.timestamped))
        assume(day.year != 2011)  # the date an inconsistent line is given
        order = {
            "order_id": f"#{1000 + n}",
            "customer_id": draw(st.sampled_from(["a@x.com", "b@x.com"])),
            "order_date": day.isoformat(),
            "order_timestamp": f"{day} {draw(st.integers(0, 23)):02d}:30:00"
            + draw(st.sampled_from(["", " +0200", " -0500", "Z"])),
            "returned": draw(st.sampled_from(["true", "FALSE"]))
            if not shape.returned_column
            else draw(st.sampled_from(["paid", "Refunded", "pending", "voided"])),
        }
        for k in range(draw(st.integers(1, 3)) if shape.lines else 1):
            line = dict(order)
            line |= {"category": draw(st.sampled_from(CATS)), "product_id": f"SKU{k}", "line_id": str(k + 1)}
            line |= {
                "quantity": str(draw(st.integers(1, 20))),
                "unit_price": draw(st.sampled_from(["9.99", "10", "0.5"])),
            }
            line["Note"] = "x"
            # Shopify: the order's own fields only on its first row (not when a row may lose a
            # field: a later line inheriting from a short first line is reported blank as well)
            if k and rule != "wrong-field-count" and draw(st.booleans()):
                for f in shape.order_level():
                    line[f] = ""
            rows.append(line)
    return rows


def days_in(window: DateWindow | None, timestamped: bool) -> st.SearchStrategy[dt.date]:
    """Days the window allows, now and then a bound; a timestamp's a day inside them (its offset
    may move its local date by a day: the edges are `break_rule`'s and the tests' below)."""
    if window is None:
        return DAYS
    first, last = (
        (window.earliest + ONE_DAY, window.latest - ONE_DAY) if timestamped else (window.earliest, window.latest)
    )
    return st.sampled_from([first, last]) | st.dates(first, last)


@st.composite
def beyond(draw: st.DrawFn, shape: InputShape) -> str:
    """An order date (or timestamp) outside the shape's window: a day beyond a bound, or far; a
    timestamp near midnight, with or without an offset, whose local date in the zone is outside."""
    window = shape.date_window(NOW)
    assert window is not None
    bound = draw(st.sampled_from([window.earliest, window.latest]))
    day = draw(
        st.sampled_from([bound - ONE_DAY, bound, bound + ONE_DAY]) | st.dates(dt.date(2, 1, 1), dt.date(1999, 1, 1))
    )
    if not shape.timestamped:
        assume(window.error(day) is not None)
        return day.isoformat()
    stamp = f"{day} {draw(st.sampled_from(['00:10', '23:50', '12:00']))}:00" + draw(
        st.sampled_from(["", " +0200", " -0500", "Z", "+14:00", "-11:00"])
    )
    local = local_date(stamp, shape.timezone or "UTC")
    assume(local is not None and window.error(local) is not None)
    return stamp


@st.composite
def break_rule(draw: st.DrawFn, rows: list[dict[str, str]], at: int, shape: InputShape, rule: str | None) -> None:
    """Make the rows break `rule`, in place."""
    if rule == "invalid-timestamp":
        rows[at]["order_timestamp"] = draw(st.sampled_from(["2025-13-01 10:00:00", "07/10/2025", "2025-10-07T25:00"]))
    elif rule == "duplicate-line":
        rows.append(dict(rows[at]))
    elif rule == "inconsistent-order":
        extra = dict(rows[at]) | {"product_id": "OTHER", "line_id": "99"}
        field = draw(st.sampled_from(["customer_id", shape.date_field]))
        extra[field] = {"customer_id": "z@x.com", "order_date": OTHER_DAY, "order_timestamp": OTHER_DAY}[field]
        rows.append(extra)
    elif rule == "duplicate-order-id":
        rows.append(dict(rows[at]) | {"product_id": "OTHER"})
    elif rule == "blank-value":  # with the catalog on, no category is read
        rows[at][draw(st.sampled_from(["quantity"] if shape.catalog else ["category", "quantity"]))] = ""
    elif rule == "invalid-integer":
        rows[at]["quantity"] = "2.0"
    elif rule == "implausible-date":  # every line of the order that gives its date: it stays consistent
        value, order_id = draw(beyond(shape)), rows[at]["order_id"]
        for row in rows:
            if row["order_id"] == order_id and (row is rows[at] or row[shape.date_field] != ""):
                row[shape.date_field] = value


def staged_rows(paths: list[Path]) -> list[dict[str, object]]:
    frame = pl.concat([pl.read_parquet(p) for p in paths])
    return frame.select(
        ["order_id", "customer_id", "order_date", "category", "product_id", "quantity", "unit_price", "returned"]
    ).to_dicts()


def check(case: Case, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = case.shape.date_window(NOW)
    exact = validate_shaped(io.BytesIO(case.data), "f.csv", case.shape, frozenset(CATS), window=window)
    assert {i.code for i in exact.errors} == case.codes, exact.to_dict()
    calls: list[int] = []
    real = ingest.validate
    monkeypatch.setattr(ingest, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = tmp / "f.csv"
    path.write_bytes(case.data)
    inspection = ingest.inspect_file(path, "f.csv", CATS, tmp, ingest.ROWS_PER_PART, case.shape, now=NOW)
    report = inspection.report
    assert report.to_dict() == exact.to_dict()  # verdict, rows, codes, lines, messages, warnings, shape
    assert report.dates == exact.dates
    if exact.valid:
        assert case.plain == (not calls), "the fast path must decide a plain valid file, and only that"
        assert inspection.facts is not None
        fast = sorted(staged_rows(inspection.facts.paths), key=repr)
        collected: list[list[str]] = []
        validate_shaped(io.BytesIO(case.data), "f.csv", case.shape, frozenset(CATS), collected.append, window)
        want = [
            dict(zip(COLUMNS, row, strict=True))
            | {
                "order_date": dt.date.fromisoformat(row[2]),
                "quantity": int(row[5]),
                "unit_price": Decimal(row[6]).quantize(Decimal("0.0001")),
                "returned": row[7] == "true",
            }
            for row in collected
        ]
        assert fast == sorted(want, key=repr)


SETTINGS = settings(
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("rule", RULES, ids=str)
@SETTINGS
@given(data=st.data())
def test_both_paths_agree(rule: str | None, data: st.DataObject, monkeypatch: pytest.MonkeyPatch) -> None:
    # The screen hands its rows over in batches of any size: a line inherits across their edges.
    monkeypatch.setattr(shaped, "SCREEN_ROWS", data.draw(st.sampled_from([1, 2, 3, shaped.SCREEN_ROWS])))
    with tempfile.TemporaryDirectory() as tmp:
        check(data.draw(draw_case(rule)), Path(tmp), monkeypatch)


def test_a_row_short_of_an_unused_last_column_is_refused(tmp_path: Path) -> None:
    """Polars pads a short row with empty fields; the field count of the whole file catches it."""
    path = tmp_path / "f.csv"
    header = ",".join([*COLUMNS, "Note"])
    path.write_text(f"{header}\nO1,C1,2025-01-01,Books,P1,1,2,false,x\nO2,C1,2025-01-01,Books,P1,1,2,false\n")
    report = ingest.inspect_file(path, "f.csv", CATS, tmp_path, ingest.ROWS_PER_PART, InputShape(grain="line")).report
    assert [(i.code, i.samples[0].line) for i in report.errors] == [("wrong-field-count", 3)]


def read(tmp: Path, shape: InputShape, fast: bool, date: str, day: str, returned: str, value: str) -> list[Path]:
    """The staged facts of one order, read as `inspect_file` reads it or (`fast=False`) by the exact
    validator alone."""
    path = tmp / f"{fast}.csv"
    path.write_text(
        f"order_id,customer_id,{date},category,product_id,quantity,unit_price,{returned}\n"
        f"O1,C1,{day},Books,P1,1,2.50,{value}\n"
    )
    calls: list[int] = []
    real = ingest.validate
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ingest, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
        if not fast:
            patch.setattr(ingest, "_screened", lambda *a, **k: None)
        inspection = ingest.inspect_file(path, path.name, CATS, tmp, ingest.ROWS_PER_PART, shape)
    assert inspection.report.valid and inspection.facts is not None, inspection.report.to_dict()
    assert fast or calls == [1]
    return list(inspection.facts.paths)


@pytest.mark.parametrize(
    ("zone", "stamp"),
    [
        ("America/New_York", "2100-07-01T04:30:00Z"),  # daylight saving time after 2099: 00:30 EDT
        ("Australia/Lord_Howe", "3168-07-15T19:08:30+05:45"),  # standard time in July, +10:30
        ("Factory", "2025-10-07T23:30:00Z"),  # a zone Polars' own database does not have
    ],
)
def test_a_timestamp_has_one_date_on_both_paths(
    zone: str, stamp: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exact validator must stage an order on the date the fast path gives the same row, or a
    correction lands on another date and is counted twice."""
    shape = InputShape(columns=(("order_timestamp", "Created at"),), timezone=zone, dates="any")  # far years
    staged = []
    for fast in (True, False):
        facts = read(tmp_path, shape, fast, "Created at", stamp, "returned", "false")
        staged.append(staged_rows(facts)[0]["order_date"])
    moment = dt.datetime.fromisoformat(stamp).astimezone(ZoneInfo(zone))
    assert staged == [moment.date(), moment.date()]


@pytest.mark.parametrize(
    ("status", "values"),
    [
        ("REFUNDED\ua7da", ("refunded\ua7db",)),  # 'Ꟛ': lower case 'ꟛ' for Polars, none for Python 3.11
        ("Remboursé", ("REMBOURSÉ",)),
        ("Refunded", ("refunded",)),
    ],
)
def test_a_status_has_one_meaning_on_both_paths(status: str, values: tuple[str, ...], tmp_path: Path) -> None:
    """The status column's "any case" is Python's: the fast path and the exact validator stage
    the same `returned`."""
    shape = InputShape(returned_column="Status", returned_values=values)
    staged = []
    for fast in (True, False):
        facts = read(tmp_path, shape, fast, "order_date", "2025-01-01", "Status", status)
        staged.append(staged_rows(facts)[0]["returned"])
    assert staged == [shape.is_returned(status)] * 2


def inspected(path: Path, shape: InputShape, fast: bool) -> tuple[ingest.Inspection, list[int]]:
    """`path` as `inspect_file` reads it, or (`fast=False`) by the exact validator alone; with
    the calls of the exact validator."""
    calls: list[int] = []
    real = ingest.validate
    workdir = path.parent / f"stage-{fast}"
    workdir.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ingest, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
        if not fast:
            patch.setattr(ingest, "_screened", lambda *a, **k: None)
        return ingest.inspect_file(path, path.name, CATS, workdir, ingest.ROWS_PER_PART, shape, now=NOW), calls


LINE_HEADER = "order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned,Line"


def test_two_lines_of_one_product_with_their_own_line_ids_are_valid_on_both_paths(tmp_path: Path) -> None:
    """With a line id column a line is (order, line id): one product on two lines of an order
    is two lines, staged both, by the fast path alone; the same line id twice is a duplicate."""
    shape = shape_of(lines=True, timestamps=False, status=False, renamed=False, line_id=True)
    path = tmp_path / "f.csv"
    path.write_text(
        f"{LINE_HEADER}\nO1,C1,2025-07-01,Books,P1,1,2.50,false,1\nO1,C1,2025-07-01,Books,P1,2,2.50,false,2\n"
    )
    for fast in (True, False):
        inspection, calls = inspected(path, shape, fast)
        assert inspection.report.valid and inspection.report.errors == (), inspection.report.to_dict()
        assert calls == ([] if fast else [1])  # a plain valid file: the screen decides it
        assert inspection.facts is not None
        assert sorted((r["product_id"], r["quantity"]) for r in staged_rows(inspection.facts.paths)) == [
            ("P1", 1),
            ("P1", 2),
        ]
    twice = tmp_path / "twice" / "f.csv"
    twice.parent.mkdir()
    twice.write_text(path.read_text().replace("false,2\n", "false,1\n"))
    for fast in (True, False):
        report = inspected(twice, shape, fast)[0].report
        assert [(i.code, i.samples[0].line, i.samples[0].column) for i in report.errors] == [
            ("duplicate-line", 3, "Line")
        ]


@pytest.mark.parametrize("window", WINDOWS, ids=["default-window", "fixed-window", "any-date"])
def test_an_order_whose_first_line_has_a_bad_timestamp_is_reported_as_such(
    window: dict[str, str], tmp_path: Path
) -> None:
    """The first line of an order gives its date; when its timestamp is not one, a later line
    with a good one (or none: it would inherit the bad one) neither disagrees with it nor
    breaks anything else: the report is `invalid-timestamp`, naming the file, the line and
    the column, on both paths, whether or not a date window also checks the date."""
    shape = shape_of(lines=True, timestamps=True, status=False, renamed=False, line_id=False, zone="UTC", window=window)
    header = "order_id,customer_id,Created at,category,product_id,quantity,unit_price,returned"
    path = tmp_path / "orders.csv"
    path.write_text(
        f"{header}\n"
        "O1,C1,2025-13-01 10:00:00,Books,P1,1,2.50,false\n"
        "O1,C1,2025-10-01 10:00:00,Books,P2,1,2.50,false\n"
        "O2,C1,2025-10-01 10:00:00,Books,P1,1,2.50,false\n"
    )
    message = (
        "'2025-13-01 10:00:00' is not a timestamp: write it as ISO 8601 (2025-10-07T09:50:26+02:00) or as "
        "2025-10-07 09:50:26 +0200 ('Created at' is read as order_timestamp)"
    )
    for fast in (True, False):
        report = inspected(path, shape, fast)[0].report
        assert (report.file, report.valid, report.rows) == ("orders.csv", False, 3)
        assert [(i.code, [(s.line, s.column, s.message) for s in i.samples]) for i in report.errors] == [
            ("invalid-timestamp", [(2, "Created at", message)])
        ]
    inherited = tmp_path / "inherited" / "orders.csv"
    inherited.parent.mkdir()
    inherited.write_text(path.read_text().replace("O1,C1,2025-10-01 10:00:00,", "O1,,,"))
    for fast in (True, False):
        report = inspected(inherited, shape, fast)[0].report
        assert [(i.code, [s.line for s in i.samples]) for i in report.errors] == [("invalid-timestamp", [2, 3])]
