"""Catalog files, both paths: a products file goes through the same entry as an order file
(`ingest.inspect_file`: the screen, with the exact validator as its fallback), and gives the
report `validate_catalog` gives, with the same staged rows; a valid file, in any spelling
(`tests/spelling.py`), is decided by the screen alone. Every catalog rule is broken, beside files that break none."""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orderpipe.ingest as ingest
from orderpipe.core.catalog import validate_catalog
from orderpipe.core.rules import DEFAULT_CATEGORIES
from orderpipe.core.shape import InputShape
from tests.conftest import examples
from tests.spelling import spelled

CATS = list(DEFAULT_CATEGORIES)
RULES = [
    None,
    "blank-value",
    "unknown-category",
    "duplicate-product",
    "wrong-field-count",
    "missing-column",
    "duplicate-column",
    "no-rows",
]
SHAPES = [
    InputShape(catalog=True),
    InputShape(catalog=True, catalog_product_id="Variant SKU", catalog_category="Type"),
]
#: Padding is trimmed away (the untrimmed screen refuses it, the trimmed one reads it); an
#: invisible character next to a visible one is kept.
PADS = ["", "", "", " ", "\t", "\u3000"]
products = st.text("abcXYZ019-_.", min_size=1, max_size=6) | st.sampled_from(["P\u200b1", "Café", "日用品"])
categories = st.sampled_from([*CATS, "Unknown"])


@dataclass
class Case:
    shape: InputShape
    data: bytes
    codes: set[str]
    plain: bool


@st.composite
def draw_case(draw: st.DrawFn, rule: str | None) -> Case:
    shape = draw(st.sampled_from(SHAPES))
    product, category = shape.catalog_product_id, shape.catalog_category
    header = draw(st.permutations([product, category, *draw(st.sampled_from([[], ["Title"], ["Title", "Title"]]))]))
    names = draw(st.lists(products, min_size=1, max_size=4, unique=True))
    rows = [{product: p, category: draw(categories), "Title": "t"} for p in names]
    at = draw(st.integers(0, len(rows) - 1))
    if rule == "blank-value":
        rows[at][draw(st.sampled_from([product, category]))] = draw(st.sampled_from(["", " ", "\u200b"]))
    elif rule == "unknown-category":
        rows[at][category] = draw(st.sampled_from(["books", "Gadgets", "unknown"]))
    elif rule == "duplicate-product":
        rows.append(dict(rows[at]) | {category: draw(categories)})
    elif rule == "missing-column":  # mis-cased: the report points it out
        gone = draw(st.sampled_from([product, category]))
        header = [h.upper() if h == gone else h for h in header]
    elif rule == "duplicate-column":
        header.append(draw(st.sampled_from([product, category])))
    elif rule == "no-rows":
        rows = []
    text_rows = [[r.get(h, "t") for h in header] for r in rows]
    if rule == "wrong-field-count":
        text_rows[at] = text_rows[at][:-1] if draw(st.booleans()) else [*text_rows[at], "z"]
    text_rows = [[draw(st.sampled_from(PADS)) + v + draw(st.sampled_from(PADS)) for v in row] for row in text_rows]
    data = draw(spelled([header, *text_rows]))
    if rule == "no-rows" and draw(st.booleans()):
        data = b""
    return Case(shape, data, {rule} if rule else set(), plain=True)


def check(case: Case, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staged: list[tuple[str, str]] = []
    exact = validate_catalog(
        io.BytesIO(case.data), "products.csv", case.shape, frozenset(CATS), lambda p, c: staged.append((p, c))
    )
    assert {i.code for i in exact.errors} == case.codes, exact.to_dict()
    calls: list[int] = []
    real = ingest.validate
    monkeypatch.setattr(ingest, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = tmp / "products.csv"
    path.write_bytes(case.data)
    inspection = ingest.inspect_file(path, "products.csv", CATS, tmp, ingest.ROWS_PER_PART, case.shape)
    assert inspection.report.to_dict() == exact.to_dict()
    assert inspection.facts is None
    if not exact.valid:
        assert inspection.catalog is None
        return
    assert case.plain == (not calls), "the screen must decide a plain valid catalog, and only that"
    assert inspection.catalog is not None
    rows = pl.read_parquet(inspection.catalog)
    assert rows.columns == ["product_id", "category"]
    assert list(rows.iter_rows()) == sorted(staged)


SETTINGS = settings(
    derandomize=True,
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("rule", RULES, ids=str)
@SETTINGS
@given(data=st.data())
def test_both_paths_agree(rule: str | None, data: st.DataObject, monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check(data.draw(draw_case(rule)), Path(tmp), monkeypatch)


@pytest.mark.parametrize("shape", SHAPES, ids=["plain", "renamed"])
def test_unknown_is_an_allowed_category_whatever_the_categories(
    shape: InputShape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Unknown` is not among the categories, yet a catalog row may set it: both validators
    take it, and the screen alone decides the file."""
    assert "Unknown" not in CATS
    header = f"{shape.catalog_product_id},{shape.catalog_category}"
    data = f"{header}\nP1,Unknown\nP2,Books\n".encode()
    check(Case(shape, data, set(), plain=True), tmp_path, monkeypatch)


def test_a_catalog_file_the_exact_validator_reads_stages_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the screen gives a file to the exact validator (here: a line break inside quotes),
    the rows it stages are the file's, in product order."""
    path = tmp_path / "products.csv"
    path.write_text('product_id,category\nP2,Toys\n"P\n1",Books\n')
    shape = InputShape(catalog=True)
    read = ingest.inspect_file(path, "products.csv", CATS, tmp_path, ingest.ROWS_PER_PART, shape)
    monkeypatch.setattr(ingest, "_screened", lambda *a, **k: None)  # the exact validator alone
    exact = ingest.inspect_file(path, "products.csv", CATS, tmp_path, ingest.ROWS_PER_PART, shape)
    for inspection in (read, exact):
        assert inspection.report.valid and inspection.catalog is not None
        assert pl.read_parquet(inspection.catalog).rows() == [("P\n1", "Books"), ("P2", "Toys")]
