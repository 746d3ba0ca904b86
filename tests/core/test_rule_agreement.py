"""Every rule, both validators: a rule enforced by one path and not the other fails here.

The screen (`screen.py`) re-states the rules of `rules.py` as Polars expressions, so a rule
added or changed in one place only would otherwise go unnoticed. For every error code a
generator makes files that break that rule, and another makes files that pass every rule,
under the seed's column names or renamed ones (`SHAPES`). Each file goes through the exact
validator (`validate_shaped`) and through `inspect_file` (the screen, with its fallback), and
both are held to a reference built from `rules.py`:

- the reports of both paths are the same, and their row count and error codes the reference's;
- a plain file (no blank lines nor broken CSV; quoted or not) that is valid must be decided by
  the screen alone — the screen may not be stricter on it than the rules;
- a valid file's staged facts equal the reference's typed values, value for value.
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import orderpipe.ingest as ingest
from orderpipe.core.rules import (
    COLUMNS,
    DEFAULT_CATEGORIES,
    ERROR_CODES,
    INVISIBLE,
    WHITESPACE,
    check_value,
    is_blank,
)
from orderpipe.core.shape import SEED_SHAPE, InputShape
from orderpipe.core.shape_validate import validate_shaped
from orderpipe.core.window import DateWindow
from tests.conftest import examples
from tests.spelling import quoted

CATS = list(DEFAULT_CATEGORIES)
# White space a plain file can hold inside a line (CR and LF end lines).
SPACES = "".join(ch for ch in WHITESPACE if ch not in "\r\n")
# What a plain, unquoted field may hold: no comma, quote, CR or LF.
SAFE = "abcXYZ019-_.:;/'=+@ é€\u200b\u00ad\u2060"

pad = st.text(alphabet=SPACES, max_size=2)
invisible = st.sampled_from(INVISIBLE)


def padded(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Surrounding white space never changes a verdict: every value is trimmed first."""
    return st.tuples(pad, values, pad).map("".join)


blank = st.lists(st.one_of(st.sampled_from(SPACES), invisible), max_size=3).map("".join)
text = st.text(alphabet=SAFE, min_size=1, max_size=8).filter(lambda v: not is_blank(v.strip(WHITESPACE)))


def digits(n: int, zeros: int = 0) -> st.SearchStrategy[str]:
    return st.tuples(st.integers(0, zeros), st.integers(10 ** (n - 1) if n > 1 else 1, 10**n - 1)).map(
        lambda t: "0" * t[0] + str(t[1])
    )


dates = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))
#: The clock the date window is read on, by both paths: tomorrow is 2026-01-01 (in UTC).
NOW = dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.UTC)


def window_dates(window: DateWindow | None) -> st.SearchStrategy[str]:
    """Order dates the window allows: now and then exactly a bound."""
    if window is None:
        return dates.map(dt.date.isoformat)
    edges = st.sampled_from([window.earliest, window.latest])
    return st.one_of(edges, st.dates(window.earliest, window.latest)).map(dt.date.isoformat)


quantities = st.integers(1, 9).flatmap(lambda n: digits(n, zeros=15))
prices = st.tuples(
    st.integers(1, 12).flatmap(lambda n: digits(n, zeros=3)) | st.just("0"),
    st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=4).map(lambda d: "." + d)),
).map("".join)
booleans = st.tuples(st.sampled_from(["true", "false"]), st.lists(st.booleans(), min_size=5, max_size=5)).map(
    lambda t: "".join(ch.upper() if up else ch for ch, up in zip(t[0], t[1], strict=False))
)

#: Values that pass every rule of their column (a price of "0.000" is filtered out below).
VALID: dict[str, st.SearchStrategy[str]] = {
    "order_id": text,
    "customer_id": text,
    "product_id": text,
    "category": st.sampled_from(CATS),
    "order_date": window_dates(None),  # within the file's window: `valid_row`
    "quantity": quantities,
    "unit_price": prices.filter(lambda p: Decimal(p) > 0),
    "returned": booleans,
}


def code_of(column: str, value: str, window: DateWindow | None = None) -> str | None:
    error = check_value(column, value, frozenset(CATS))
    if error is None and column == "order_date" and window is not None:
        return "implausible-date" if window.error(dt.date.fromisoformat(value)) else None
    return error.code if error else None


#: For each value rule, (column, values that break it); random text is kept when it breaks
#: exactly that rule.
VIOLATING: dict[str, list[tuple[str, st.SearchStrategy[str]]]] = {
    "blank-value": [(c, blank) for c in COLUMNS],
    "invalid-date": [
        (
            "order_date",
            st.one_of(
                dates.map(lambda d: f"{d.year}-{d.month}-{d.day}").filter(lambda v: len(v) < 10),
                st.sampled_from(["0000-01-01", "0000-12-31", "2023-02-29", "2025-02-30", "2025-13-01", "2025-00-10"]),
                st.sampled_from(["2025-04-31", "+2025-01-01", "2025/07/06", "06-07-2025", "２０２５-07-06"]),
                dates.map(lambda d: d.isoformat() + "T00:00"),
                st.text(alphabet="0123456789-/T:+ ", min_size=1, max_size=11),
            ),
        )
    ],
    # a day beyond each bound of the shapes' windows (`SHAPES`), and any other day (most are)
    "implausible-date": [
        (
            "order_date",
            st.one_of(
                st.sampled_from(["1999-12-31", "2026-01-02", "2010-02-28", "2030-07-01", "0001-01-01", "9999-12-31"]),
                dates.map(dt.date.isoformat),
            ),
        )
    ],
    "invalid-integer": [
        (
            "quantity",
            st.one_of(
                st.sampled_from(["+3", "-1", "2.0", "1e3", "٣", "３", "0x1F", "1_000", "1 000", "inf"]),
                quantities.map(lambda q: "+" + q),
                st.text(alphabet="0123456789+-.e_x", min_size=1, max_size=6),
            ),
        )
    ],
    "invalid-decimal": [
        (
            "unit_price",
            st.one_of(
                st.sampled_from(["-5", "+5", ".5", "5.", "1.23456", "1e3", "NaN", "Infinity", "$5", "5x"]),
                st.sampled_from(["٣.5", "1.٣", "1_000", "0x10", "1.2.3", "1 .5", "5e-1"]),
                prices.map(lambda p: "+" + p),
                st.text(alphabet="0123456789+-.eE_", min_size=1, max_size=7),
            ),
        )
    ],
    "not-positive": [
        ("quantity", st.integers(1, 20).map(lambda n: "0" * n)),
        ("unit_price", st.tuples(st.integers(1, 5), st.integers(0, 4)).map(lambda t: "0" * t[0] + "." + "0" * t[1])),
        ("unit_price", st.integers(1, 5).map(lambda n: "0" * n)),
    ],
    "out-of-range": [
        ("quantity", st.integers(10, 19).flatmap(lambda n: digits(n, zeros=5))),
        ("unit_price", st.integers(13, 30).flatmap(lambda n: digits(n, zeros=5))),
        ("unit_price", st.integers(13, 20).flatmap(lambda n: digits(n)).map(lambda p: p + ".5")),
    ],
    "invalid-boolean": [
        (
            "returned",
            st.one_of(
                st.sampled_from(["yes", "no", "1", "0", "t", "f", "truee", "fals", "TRUEx", "ｔｒｕｅ", "tru\u200be"]),
                st.text(alphabet="truefalsTRUEFALS1 ", min_size=1, max_size=6),
            ),
        )
    ],
    "unknown-category": [
        (
            "category",
            st.one_of(st.sampled_from(CATS).map(str.lower), st.sampled_from(CATS).map(str.upper), text),
        )
    ],
}
# The rules that are about files and rows rather than one value, each made by `draw_file`.
FILE_RULES = {
    "missing-column",
    "duplicate-column",
    "wrong-field-count",
    "duplicate-order-id",
    "encoding-error",
    "csv-error",
    "no-rows",
}
#: Codes only a configured input shape can raise (tests/core/test_shape_agreement.py).
SHAPE_RULES = {"invalid-timestamp", "duplicate-line", "inconsistent-order"}
#: Codes only a catalog file can raise (tests/test_catalog.py breaks and fixes each).
CATALOG_RULES = {"duplicate-product"}
#: Codes only the relational grain can raise (tests/test_relational.py breaks each).
RELATIONAL_RULES = {"unknown-file"}
SEED_CODES = sorted(set(ERROR_CODES) - SHAPE_RULES - CATALOG_RULES - RELATIONAL_RULES)


@dataclass
class Case:
    """A generated file and what the rules say about it."""

    data: bytes
    codes: set[str]
    rows: int
    typed: list[dict[str, object]] = field(default_factory=list)
    plain: bool = True  # the screen alone must decide it
    categories: list[str] = field(default_factory=lambda: list(CATS))
    shape: InputShape = SEED_SHAPE


def typed(values: dict[str, str]) -> dict[str, object]:
    """The staged facts a valid row must become, straight from the rules' reading of it."""
    return {
        "order_id": values["order_id"],
        "customer_id": values["customer_id"],
        "category": values["category"],
        "product_id": values["product_id"],
        "order_date": dt.date.fromisoformat(values["order_date"]),
        "quantity": int(values["quantity"].lstrip("0")),
        "unit_price": Decimal(values["unit_price"]).quantize(Decimal("0.0001")),
        "returned": values["returned"].lower() == "true",
    }


def reference(
    header: list[str], rows: list[list[str]], categories: list[str], window: DateWindow | None
) -> tuple[set[str], list[dict[str, object]]]:
    """Error codes and typed rows per the rules: field count, `check_value`, a valid date within
    `window`, unique order ids."""
    codes: set[str] = set()
    good: list[dict[str, object]] = []
    seen: set[str] = set()
    for row in rows:
        if len(row) != len(header):
            codes.add("wrong-field-count")
            continue
        values = {c: v.strip(WHITESPACE) for c, v in zip(header, row, strict=True) if c in COLUMNS}
        errors = {e.code for c, v in values.items() if (e := check_value(c, v, frozenset(categories)))}
        checked = not errors & {"blank-value", "invalid-date"} and window is not None
        if checked and window.error(dt.date.fromisoformat(values["order_date"])):  # type: ignore[union-attr]
            errors.add("implausible-date")
        order_id = values["order_id"]
        if not is_blank(order_id):
            if order_id in seen:
                errors.add("duplicate-order-id")
            seen.add(order_id)
        codes |= errors
        if not errors:
            good.append(typed(values))
    return codes, good


@st.composite
def valid_row(draw: st.DrawFn, index: int, window: DateWindow | None) -> dict[str, str]:
    row = {c: draw(padded(VALID[c] if c != "order_date" else window_dates(window))) for c in COLUMNS}
    row["order_id"] = draw(padded(st.just(f"O{index}") | text.map(lambda t, i=index: f"{t}#{i}")))
    return row


#: The seed's shape, and one that renames columns: the same rules, read under other names; the
#: date window as it comes (2000-01-01 to tomorrow), fixed, or off.
SHAPES = [
    SEED_SHAPE,
    InputShape(columns=(("customer_id", "Email"), ("order_id", "Name"), ("unit_price", "Price"))),
    InputShape(columns=(("order_id", "Name"),), earliest_date="2010-03-01", latest_date="2030-06-30"),
    InputShape(dates="any"),
]


def renamed(header: list[str], shape: InputShape) -> list[str]:
    """The header as `shape` names the columns (a mis-cased name stays mis-cased)."""
    return [
        shape.source(n) if n in COLUMNS else shape.source(n.lower()).upper() if n.lower() in COLUMNS else n
        for n in header
    ]


@st.composite
def draw_file(draw: st.DrawFn, rule: str | None) -> Case:
    """A file breaking `rule` (None: breaking nothing) around a few valid rows, in a shape."""
    shape = draw(st.sampled_from(SHAPES if rule != "implausible-date" else SHAPES[:-1]))
    window = shape.date_window(NOW)
    columns = list(COLUMNS)
    if draw(st.booleans()):
        columns = draw(st.permutations(columns))
    extra = draw(st.sampled_from([[], ["note"], ["note", "memo"]]))
    rows = [draw(valid_row(i, window)) for i in range(draw(st.integers(1, 3)))]
    lines = [[r[c] for c in columns] + ["x"] * len(extra) for r in rows]
    header, lines = draw(broken(rule, columns, extra, rows, lines, window))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    header_ok = rule not in ("missing-column", "duplicate-column")
    codes, good = reference(header, lines, CATS, window) if header_ok else ({rule}, [])
    text_lines = [",".join(renamed(header, shape)), *(",".join(line) for line in lines)]
    plain = rule not in ("encoding-error", "csv-error")
    if rule == "no-rows" and draw(st.booleans()):
        text_lines += ["", draw(st.sampled_from(["", " ", "\t"]))]
        plain = False
    if draw(st.integers(0, 2)) == 0 and plain:  # now and then quoted, every field or some: still plain
        every = draw(st.booleans())
        text_lines = [
            ",".join(quoted(v) if every or draw(st.booleans()) else v for v in t.split(",")) for t in text_lines
        ]
    data = bom + (end.join(text_lines) + draw(st.sampled_from([end, ""]))).encode()
    rows_expected = 0 if not header_ok else len(lines)
    if rule in ("encoding-error", "csv-error"):
        first_row = len(bom) + len((text_lines[0] + end).encode())
        data, last_read = draw(corrupted(rule, data, first_row))
        codes, good = reference(header, lines[:-1], CATS, window) if last_read else (set(), [])
        rows_expected = len(lines) - 1 if last_read else 0
        codes.add(rule)
    elif not header_ok:
        codes = {rule}
    elif not lines:
        codes = {"no-rows"}
    if rule is not None:
        assert rule in codes
    return Case(data, codes, rows_expected, good if not codes else [], plain, list(CATS), shape)


@st.composite
def broken(
    draw: st.DrawFn,
    rule: str | None,
    columns: list[str],
    extra: list[str],
    rows: list[dict[str, str]],
    lines: list[list[str]],
    window: DateWindow | None,
) -> tuple[list[str], list[list[str]]]:
    """(header, lines) breaking `rule`: a value, the header, a row's fields, a repeated id, no rows."""
    header = [*columns, *extra]
    at = draw(st.integers(0, len(lines) - 1))
    if rule in VIOLATING:
        column, values = draw(st.sampled_from(VIOLATING[rule]))
        breaks = values.filter(lambda v, c=column: code_of(c, v, window) == rule)
        lines[at][columns.index(column)] = draw(padded(breaks))
    elif rule == "missing-column":
        gone = draw(st.sampled_from(COLUMNS))
        keep = [i for i, c in enumerate(header) if c != gone]
        header, lines = [header[i] for i in keep], [[line[i] for i in keep] for line in lines]
        if draw(st.booleans()):  # a mis-cased name instead of none
            header, lines = [*header, gone.upper()], [[*line, "x"] for line in lines]
    elif rule == "duplicate-column":
        twice = draw(st.sampled_from(COLUMNS))
        header, lines = [*header, twice], [[*line, line[columns.index(twice)]] for line in lines]
    elif rule == "wrong-field-count":
        how = draw(st.sampled_from(["short", "long", "all-omit-extra"] if extra else ["short", "long"]))
        if how == "short":
            lines[at] = lines[at][:-1]
        elif how == "long":
            lines[at] = [*lines[at], "z"]
        else:  # every row leaves out the header's last (extra) column
            lines = [line[:-1] for line in lines]
    elif rule == "duplicate-order-id":
        other = draw(st.integers(0, len(lines) - 1))
        lines.append(list(lines[other]))
        lines[-1][columns.index("order_id")] = draw(pad) + rows[other]["order_id"].strip(WHITESPACE) + draw(pad)
    elif rule == "no-rows":
        lines = []
    return header, lines


@st.composite
def corrupted(draw: st.DrawFn, rule: str, data: bytes, first_row: int) -> tuple[bytes, bool]:
    """The file with bytes that are not UTF-8 or not CSV, and whether every row but the last is
    still read (a bare CR as the very last byte) or none (poison in the first row)."""
    if rule == "csv-error" and draw(st.booleans()):
        return data.rstrip(b"\r\n") + b"\r", True
    poison = draw(
        st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80"])
        if rule == "encoding-error"
        else st.sampled_from([b"\r", b"\x00", b'"P1,', b'"P"x,', b"a\rb,"])
    )
    return data[:first_row] + poison + data[first_row:], False


def check(case: Case, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths against the reference."""
    window = case.shape.date_window(NOW)
    exact = validate_shaped(io.BytesIO(case.data), "f.csv", case.shape, frozenset(case.categories), window=window)
    assert {i.code for i in exact.errors} == case.codes, exact.to_dict()
    assert exact.rows == case.rows
    calls: list[int] = []
    real = ingest.validate
    monkeypatch.setattr(ingest, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = tmp / "f.csv"
    path.write_bytes(case.data)
    inspection = ingest.inspect_file(path, "f.csv", case.categories, tmp, ingest.ROWS_PER_PART, case.shape, now=NOW)
    report = inspection.report
    assert report.to_dict() == exact.to_dict()
    if case.plain and exact.valid:
        assert not calls, "the screen refused a plain file the rules accept"
    if exact.valid:
        assert inspection.facts is not None
        staged = pl.concat([pl.read_parquet(p) for p in inspection.facts.paths])
        assert sorted(staged.select(list(case.typed[0])).to_dicts(), key=repr) == sorted(case.typed, key=repr)


# No shrinking: a failing file is reported as drawn, in seconds rather than minutes. Derandomized:
# CI sees the same files every run (explore more with --hypothesis-seed=N and derandomize off).
SETTINGS = settings(
    derandomize=True,
    max_examples=examples(12),
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def test_every_error_code_has_a_generator() -> None:
    """A new code in `rules.py` must come with files that break it here."""
    assert set(VIOLATING) | FILE_RULES == set(SEED_CODES)


@pytest.mark.parametrize("rule", SEED_CODES)
@SETTINGS
@given(data=st.data())
def test_both_paths_agree_on_files_breaking_each_rule(
    rule: str, data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check(data.draw(draw_file(rule)), Path(tmp), monkeypatch)


@settings(SETTINGS, max_examples=examples(60))
@given(data=st.data())
def test_both_paths_agree_on_files_breaking_no_rule(data: st.DataObject, monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check(data.draw(draw_file(None)), Path(tmp), monkeypatch)


HEADER = ",".join(COLUMNS)


def _file(*rows: str, header: str = HEADER, categories: list[str] = CATS) -> Case:
    names = header.split(",")
    lines = [r.split(",") for r in rows]
    codes, good = reference(names, lines, categories, SEED_SHAPE.date_window(NOW))
    return Case("\n".join([header, *rows, ""]).encode(), codes, len(rows), good if not codes else [], True, categories)


def _row(order_id: str = "O1", **values: str) -> str:
    base = {
        "order_id": order_id,
        "customer_id": "C1",
        "order_date": "2025-07-06",
        "category": "Books",
        "product_id": "P1",
        "quantity": "1",
        "unit_price": "2.00",
        "returned": "false",
    }
    return ",".join((base | values)[c] for c in COLUMNS)


#: Screen bugs and mutations that once went unnoticed; each case catches one.
KNOWN_SURVIVORS = {
    "returned-upper-case-is-returned": _file(_row(returned="TRUE"), _row("O2", returned="True")),
    "unpadded-date": _file(_row(order_date="2025-7-6")),
    "plus-sign-quantity": _file(_row(quantity="+3")),
    "year-zero": _file(_row(order_date="0000-01-01")),
    "every-row-omits-the-extra-column": _file(_row(), _row("O2"), header=HEADER + ",note"),
    "long-row-beside-an-unread-extra-column": _file(_row() + ",x,x,z", header=HEADER + ",note,memo"),
    "twelve-digit-price": _file(_row(unit_price="999999999999.9999"), _row("O2", unit_price="000100000000000")),
    "zero-padded-quantity": _file(_row(quantity="0000000000001"), _row("O2", quantity="0" * 40 + "999999999")),
    "invisible-configured-category": _file(_row(category="\u200b"), categories=[*CATS, "\u200b"]),
    "invisible-order-id": _file(_row("\u2060\u200b")),
    "the-window-s-own-bounds": _file(_row(order_date="2000-01-01"), _row("O2", order_date="2026-01-01")),
    "a-day-past-tomorrow": _file(_row(order_date="2026-01-02"), _row("O2")),
    "a-day-before-the-earliest": _file(_row(order_date="1999-12-31"), _row("O2")),
}


@pytest.mark.parametrize("name", list(KNOWN_SURVIVORS))
def test_known_survivors(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check(KNOWN_SURVIVORS[name], tmp_path, monkeypatch)
