"""The fast path may skip the exact validator only when both would say the same thing.

Random files mixing valid and invalid values, blank lines and extra columns, in every spelling
(`tests/spelling.py`: quoted or not, doubled quotes, commas and line breaks inside quotes, CRLF,
a BOM, and stray quotes Python's `csv` reads otherwise), read through a shape drawn from the
seed's to line items with timestamps, a status and the catalog, go through `inspect_file`
(screen + fallback), `validate_file` and the exact validator alone: the reports must be the
same, a valid file without blank lines or stray quotes must be decided by the fast path, and
an accepted file's staged facts must hold every row.
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import orderpipe.ingest as ingest
from orderpipe.core.rules import COLUMNS, DEFAULT_CATEGORIES
from orderpipe.core.shape import SEED_SHAPE, InputShape
from orderpipe.core.shape_validate import validate_shaped
from tests.conftest import examples
from tests.spelling import STRAY, STRAY_IDS, spelled

VALUES = {
    "order_id": ["O1", "O2", "O3", " O4 ", "", "O\u00e9", "O1\x1f", "\x1f", "O2\u3000"],
    "customer_id": ["C1", "C2", "", "  "],
    # the date window's edges at NOW, the last four: 2025-07-08 is tomorrow in Berlin, a day past it in UTC
    "order_date": [
        *["2025-07-06", "2024-02-29", "2025-02-30", "0000-01-01", "2025-7-6", " 2025-07-07 ", "9999-12-31"],
        *["2000-01-01", "1999-12-31", "2025-07-08", "2025-07-09"],
    ],
    "category": ["Books", "Toys", "books", "Gadgets", " Home ", ""],
    "product_id": ["P1", "P,2", "P\n3", 'P"4', ""],
    "quantity": ["1", "007", "0", "-1", "2.0", "1e3", "1234567890", "999999999", " 3 ", "2\x1f", "\xa04"],
    "unit_price": [
        "1",
        "0.0001",
        "19.99",
        "0",
        "-5",
        "1e3",
        "NaN",
        "1.23456",
        ".5",
        "1234567890123",
        "999999999999.9999",
    ],
    "returned": ["true", "FALSE", "yes", "", "True", "TRUE\x1e"],
}
VALID = {
    "order_id": None,  # unique per row in the valid mode
    "customer_id": ["C1", " C2 ", "C3\x1c"],
    "order_date": ["2025-07-06", "2024-02-29", " 2025-07-07 ", "2000-01-01"],
    "category": ["Books", " Home "],
    "product_id": ["P1", "P,2", "P\n3", 'P"4'],
    "quantity": ["1", "007", " 3 ", "999999999"],
    "unit_price": ["1", "0.0001", "19.99", "999999999999.9999"],
    "returned": ["true", "FALSE"],
}
CATS = list(DEFAULT_CATEGORIES)
#: The clock both paths read the date window on: 22:30 in UTC, already the next day in Berlin.
NOW = dt.datetime(2025, 7, 6, 22, 30, tzinfo=dt.UTC)
#: Shapes that read these files: the `order_date` column as a timestamp, `returned` as a status
#: (`true` in any case means returned), renamed columns, line items, the catalog's categories.
SHAPES = [
    SEED_SHAPE,
    InputShape(columns=(("order_id", "Name"), ("unit_price", "Price"))),
    InputShape(columns=(("order_timestamp", "order_date"),), timezone="Europe/Berlin"),
    InputShape(returned_column="returned", returned_values=("true",)),
    InputShape(grain="line"),
    InputShape(catalog=True),
    InputShape(
        grain="line",
        columns=(("customer_id", "Email"), ("order_timestamp", "order_date")),
        timezone="Pacific/Kiritimati",
        returned_column="returned",
        returned_values=("TRUE", "yes"),
        catalog=True,
    ),
]


@st.composite
def files(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A file in a drawn spelling (`spelling.spelled`), and whether the fast path must decide it
    when it is valid: unless it has a blank line or a field Python's `csv` reads otherwise."""
    columns = list(COLUMNS)
    if draw(st.booleans()):
        columns = draw(st.permutations(columns))
    extra = draw(st.booleans())
    header = [*columns, "note"] if extra else columns
    valid_mode = draw(st.booleans())
    lines: list[list[str]] = [header]
    fast = True
    for index in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["row"] * 12 + ["blank", "short", "long", "stray"]))
        if kind == "blank":
            lines.append([draw(st.sampled_from(["", "  "]))])
            fast = False
            continue
        if valid_mode:
            pool = {c: VALID[c] or [f"O{index}"] for c in columns}
            if draw(st.integers(0, 9)) == 0:  # now and then one bad value
                broken = draw(st.sampled_from(columns))
                pool[broken] = VALUES[broken]
        else:
            pool = VALUES
        values = [draw(st.sampled_from(pool[c])) for c in columns]
        if kind == "stray":
            values[columns.index("product_id")] = draw(st.sampled_from(STRAY))
            fast = False
        if extra:
            values.append(draw(st.sampled_from(["", "x"])))
        if kind == "short":
            values = values[:-1]
        elif kind == "long":
            values.append("z")
        lines.append(values)
    return draw(spelled(lines)), fast


def renamed(data: bytes, shape: InputShape) -> bytes:
    """The file with its header's names as `shape` names the columns (none holds a comma)."""
    names = {c: shape.source("order_timestamp" if c == "order_date" and shape.timestamped else c) for c in COLUMNS}
    for name, source in names.items():
        data = data.replace(name.encode(), source.encode(), 1)
    return data


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files(), st.sampled_from(SHAPES))
def test_screen_and_exact_validator_agree(drawn: tuple[bytes, bool], shape: InputShape) -> None:
    data, fast = renamed(drawn[0], shape), drawn[1]
    exact = validate_shaped(io.BytesIO(data), "f.csv", shape, frozenset(CATS), window=shape.date_window(NOW))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.csv"
        path.write_bytes(data)
        calls: list[int] = []
        real = ingest.validate
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ingest, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
            inspection = ingest.inspect_file(path, "f.csv", CATS, Path(tmp), ingest.ROWS_PER_PART, shape, now=NOW)
            checked = ingest.validate_file(path, "f.csv", CATS, shape, now=NOW)  # `orderpipe validate`
        assert inspection.report.to_dict() == exact.to_dict()
        assert checked.to_dict() == exact.to_dict()
        assert inspection.report.dates == exact.dates == checked.dates
        event("valid" if exact.valid else "invalid")
        if exact.valid:
            if fast:
                assert not calls, "the fast path must decide a valid file in any spelling"
            assert inspection.facts is not None
            staged = pl.read_parquet(inspection.facts.paths)
            assert staged.height == exact.rows
            assert sorted(staged["order_date"].cast(pl.String).unique().to_list()) == list(exact.dates)
            with pytest.MonkeyPatch.context() as patch:  # the exact validator's own rows, value for value
                patch.setattr(ingest, "_screened", lambda *a, **k: None)
                alone = ingest.inspect_file(path, "f.csv", CATS, Path(tmp), ingest.ROWS_PER_PART, shape, now=NOW)
            assert alone.facts is not None
            assert sorted(staged.rows(), key=repr) == sorted(pl.read_parquet(alone.facts.paths).rows(), key=repr)


@pytest.mark.parametrize("stray", STRAY, ids=STRAY_IDS)
@pytest.mark.parametrize("end", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_each_stray_quote_is_read_as_the_exact_validator_reads_it(stray: str, end: str, tmp_path: Path) -> None:
    """Each spelling the two readers part on, in an otherwise valid file: the same report and
    the same staged values (`"P\\r\\n1"` is P, LF, 1 for Python's csv: never staged with its CR)."""
    row = ["O1", "C1", "2025-07-06", "Books", stray, "1", "2.50", "true"]
    data = end.join([",".join(COLUMNS), ",".join(row), ""]).encode()
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    exact = validate_shaped(io.BytesIO(data), "f.csv", SEED_SHAPE, frozenset(CATS))
    inspection = ingest.inspect_file(path, "f.csv", CATS, tmp_path)
    assert inspection.report.to_dict() == exact.to_dict()
    assert ingest.validate_file(path, "f.csv", CATS).to_dict() == exact.to_dict()
    if exact.valid:
        collected: list[list[str]] = []
        validate_shaped(io.BytesIO(data), "f.csv", SEED_SHAPE, frozenset(CATS), collected.append)
        assert inspection.facts is not None
        assert pl.read_parquet(inspection.facts.paths)["product_id"].to_list() == [collected[0][4]]
