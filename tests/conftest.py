from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from orderpipe.workflow import Pipeline

HEADER = "order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned"
REPO = Path(__file__).resolve().parents[1]


def order(
    order_id: str = "O1",
    customer: str = "C1",
    date: str = "2025-07-06",
    category: str = "Electronics",
    product: str = "P1",
    quantity: str = "1",
    price: str = "10.00",
    returned: str = "false",
) -> str:
    return ",".join([order_id, customer, date, category, product, quantity, price, returned])


def csv_text(rows: Sequence[str], header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def write(path: Path, rows: Sequence[str], header: str = HEADER) -> Path:
    path.write_text(csv_text(rows, header), encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def pipeline(home: Path) -> Iterator[Pipeline]:
    yield open_pipeline(load_settings(home, environ={}))


def run_file(pipeline: Pipeline, path: Path):  # type: ignore[no-untyped-def]
    return pipeline.process(pipeline.submit(path))


def snapshot(pipeline: Pipeline) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    return pipeline.kpis.daily(None, None), pipeline.kpis.category(None, None, None)
