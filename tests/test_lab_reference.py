"""The relational dataset's reference (`lab_reference`) on files made by hand, whose KPIs are
worked out below, and on the lab's own dataset in every order of arrival."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.lab_reference import LabData, arrival_orders, kind_of, order_date

HEADERS = "order_id,user_id,status,created_at,returned_at,shipped_at,delivered_at,num_of_item"
ITEMS = "id,order_id,user_id,product_id,status,created_at,shipped_at,delivered_at,returned_at,sale_price"
PRODUCTS = "id,sku,cost,category,name,brand,retail_price,department"
PEER = REPO.parent / "shared" / "peer-data" / "Zukizuk__real-time-event-driven-data-pipeline" / "data"


def write(folder: Path, name: str, header: str, rows: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """O1 (two lines, one of a product the catalog lacks), O2 (returned), O3 (no line yet), and
    a line of O9, whose header has not come."""
    return {
        "orders": write(tmp_path, "orders_part1.csv", HEADERS, [
            "O1,7,delivered,2025-03-01T10:00:00,,,,2",
            "O2,8,returned,2025-03-01T23:59:59,2025-03-05T10:00:00,,,1",
            "O3,7,delivered,2025-03-02T00:00:00,,,,1",
        ]),
        "items": write(tmp_path, "order_items_part1.csv", ITEMS, [
            "1,O1,7,P1,delivered,2025-03-01T10:05:00,,,,10.00",
            "2,O1,7,P2,delivered,2025-03-01T10:05:00,,,,5.50",
            "3,O2,8,P1,returned,2025-03-02T00:10:00,,,,20.00",
            "4,O9,9,P1,delivered,2025-03-02T08:00:00,,,,1.00",
        ]),
        "products": write(tmp_path, "products.csv", PRODUCTS, ["P1,S1,1.00,Books,A book,B,2.00,D"]),
    }  # fmt: skip


def test_kpis_of_a_few_orders_worked_out_by_hand(files: dict[str, Path], tmp_path: Path) -> None:
    lab = LabData().add_all(files.values())
    daily, category = lab.kpis()
    assert [(d["order_date"], d["total_orders"], d["total_revenue"], d["total_items_sold"]) for d in daily] == [
        ("2025-03-01", 2, Decimal("35.50"), 3)  # O3 has no line; O9 no header
    ]
    assert daily[0]["return_rate"] == Decimal("0.5") and daily[0]["unique_customers"] == 2
    fields = ("category", "orders", "daily_revenue", "avg_order_value", "avg_return_rate")
    assert [tuple(c[f] for f in fields) for c in category] == [
        ("Books", 2, Decimal("30.00"), Decimal("15.00"), Decimal("0.5")),
        ("Unknown", 1, Decimal("5.50"), Decimal("5.50"), Decimal("0")),
    ]  # fmt: skip
    assert lab.waiting() == {"waiting_lines": 1, "waiting_orders": 1, "orders_without_lines": 1, "incomplete_orders": 0}

    # Sent again: O2's header (no longer returned), item 2 (a new price), P2 in the catalog, O9's header.
    lab.add(
        write(
            tmp_path,
            "orders_part2.csv",
            HEADERS,
            ["O2,8,delivered,2025-03-01T23:59:59,,,,1", "O9,9,delivered,2025-03-02T07:00:00,,,,3"],
        )
    )
    lab.add(write(tmp_path, "order_items_part2.csv", ITEMS, ["2,O1,7,P2,delivered,2025-03-01T10:05:00,,,,6.50"]))
    lab.add(write(tmp_path, "products_2.csv", PRODUCTS, ["P2,S2,1.00,Toys,A toy,B,2.00,D"]))
    daily, category = lab.kpis()
    assert [(d["order_date"], d["total_orders"], d["total_revenue"], d["return_rate"]) for d in daily] == [
        ("2025-03-01", 2, Decimal("36.50"), Decimal("0")),
        ("2025-03-02", 1, Decimal("1.00"), Decimal("0")),
    ]
    assert [(c["category"], c["order_date"], c["daily_revenue"]) for c in category] == [
        ("Books", "2025-03-01", Decimal("30.00")),
        ("Toys", "2025-03-01", Decimal("6.50")),
        ("Books", "2025-03-02", Decimal("1.00")),
    ]
    assert lab.waiting() == {"waiting_lines": 0, "waiting_orders": 0, "orders_without_lines": 1, "incomplete_orders": 1}


@pytest.mark.parametrize(
    ("created_at", "zone", "day"),
    [
        ("2025-03-01T23:30:00", "Asia/Kolkata", "2025-03-01"),  # local time: its own date
        ("2025-03-01T23:30:00+00:00", "Asia/Kolkata", "2025-03-02"),  # 05:00 the next day there
        ("2025-03-01T20:00:00Z", "America/St_Johns", "2025-03-01"),  # 16:30 there
        ("2025-03-02T02:00:00Z", "America/St_Johns", "2025-03-01"),  # 22:30 the day before
    ],
)
def test_an_orders_date_is_its_moment_in_the_configured_zone(created_at: str, zone: str, day: str) -> None:
    assert order_date(created_at, zone) == day


def test_files_are_told_apart_by_name() -> None:
    assert [kind_of(n) for n in ("orders_part1.csv", "order_items_part12.csv", "products.csv")] == [
        "headers", "items", "catalog"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="neither"):
        kind_of("order.csv")


@pytest.mark.skipif(not PEER.is_dir(), reason="the lab's dataset is not beside the repository")
def test_the_labs_dataset_gives_the_same_kpis_in_every_order_of_arrival() -> None:
    orders = arrival_orders(PEER)
    results = {name: LabData().add_all(paths).kpis() for name, paths in orders.items()}
    first = results["headers first"]
    assert all(result == first for result in results.values())
    daily, category = first
    assert sum(int(str(d["total_orders"])) for d in daily) == 9000 and len(daily) == 31
    assert sum(int(str(d["total_items_sold"])) for d in daily) == 27007
    assert {str(c["category"]) for c in category} <= {*(str(c) for c in category_names()), "Unknown"}


def category_names() -> set[str]:
    import csv

    with (PEER / "products.csv").open(newline="") as stream:
        return {row["category"] for row in csv.DictReader(stream)}


def test_a_file_sent_again_changes_nothing_even_after_a_correction(files: dict[str, Path], tmp_path: Path) -> None:
    lab = LabData().add_all(files.values())
    lab.add(write(tmp_path, "order_items_part2.csv", ITEMS, ["2,O1,7,P2,delivered,2025-03-01T10:05:00,,,,6.50"]))
    lab.add(files["items"])  # the same bytes as the first line file: already counted
    assert lab.items["2"]["sale_price"] == "6.50"
