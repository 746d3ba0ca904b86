"""The KPIs of a relational dataset (order headers, order items and a product catalog in files
of their own, as the lab's dataset and shops' database exports come) straight from their
definitions, in `decimal`, for the tests of that input to be held to.

- Each file counts once, by its bytes (the same bytes again change nothing).
- Files are told apart by name: `orders*.csv` hold headers, `order_items*.csv` items,
  `products*.csv` the catalog. A header sent again with the same `order_id` replaces the
  earlier one; an item with the same `id` replaces it; a catalog row replaces its product's.
- An order's date is its header's `created_at` date in the configured time zone (`zone`): a
  moment with an offset is converted to it, a local time (the lab's files) keeps its date;
  its customer is the header's `user_id`; it is returned when the header's `status` is one of
  `returned_values`, in any case.
- Its lines are the items with its `order_id`, each one unit at `sale_price`, in its product's
  category in the catalog (`Unknown` when the catalog has no row for the product).
- An order counts once its header and at least one line are in. Items whose header has not
  come wait; an order with fewer lines than its header's `num_of_item` is incomplete.
- The daily and category KPIs are then those of the line grain (`test_line_items.reference`).
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import io
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.test_line_items import Line, reference

KINDS = (("headers", "orders*.csv"), ("items", "order_items*.csv"), ("catalog", "products*.csv"))


def kind_of(name: str) -> str:
    for kind, pattern in KINDS:
        if fnmatch.fnmatchcase(name, pattern):
            return kind
    raise ValueError(f"{name}: neither headers, items nor a catalog")


def order_date(created_at: str, zone: str) -> str:
    """The date of `created_at` in `zone` (ISO 8601; `Z` or an offset, or none: local time)."""
    moment = dt.datetime.fromisoformat(created_at)
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(zone))
    return moment.date().isoformat()


@dataclass
class LabData:
    zone: str = "UTC"
    returned_values: frozenset[str] = frozenset({"returned"})
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    items: dict[str, dict[str, str]] = field(default_factory=dict)
    catalog: dict[str, str] = field(default_factory=dict)
    seen: set[bytes] = field(default_factory=set)  # every file counts once, by its bytes

    def add(self, path: Path) -> None:
        """One file, as it arrives; the same bytes a second time change nothing."""
        data = path.read_bytes()
        if data in self.seen:
            return
        self.seen.add(data)
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
        kind = kind_of(path.name)
        for row in rows:
            if kind == "headers":
                self.headers[row["order_id"]] = row
            elif kind == "items":
                self.items[row["id"]] = row
            else:
                self.catalog[row["id"]] = row["category"]

    def add_all(self, paths: Iterable[Path]) -> LabData:
        for path in paths:
            self.add(path)
        return self

    def lines(self) -> list[Line]:
        """The lines of every order that counts."""
        found = []
        for item in self.items.values():
            header = self.headers.get(item["order_id"])
            if header is None:
                continue
            found.append(
                Line(
                    order_id=item["order_id"],
                    customer=header["user_id"],
                    day=order_date(header["created_at"], self.zone),
                    category=self.catalog.get(item["product_id"], "Unknown"),
                    product=item["product_id"],
                    quantity=1,
                    price=Decimal(item["sale_price"]),
                    returned=header["status"].lower() in {v.lower() for v in self.returned_values},
                )
            )
        return found

    def kpis(self) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        return reference([self.lines()])

    def waiting(self) -> dict[str, int]:
        """What does not count yet: items without their header (and their orders), headers
        without any item, and counted orders with fewer lines than their header says."""
        waiting = [i for i in self.items.values() if i["order_id"] not in self.headers]
        lines_of: dict[str, int] = {}
        for item in self.items.values():
            lines_of[item["order_id"]] = lines_of.get(item["order_id"], 0) + 1
        incomplete = [h for o, h in self.headers.items() if 0 < lines_of.get(o, 0) < int(h.get("num_of_item") or 0)]
        return {
            "waiting_lines": len(waiting),
            "waiting_orders": len({i["order_id"] for i in waiting}),
            "orders_without_lines": sum(1 for o in self.headers if o not in lines_of),
            "incomplete_orders": len(incomplete),
        }


def arrival_orders(data: Path) -> dict[str, list[Path]]:
    """The lab's files (under `data`: `orders/`, `order_items/`, `products.csv`) in four orders
    of arrival: headers first, lines first, interleaved, the catalog first (else it comes last)."""
    headers = sorted((data / "orders").glob("*.csv"))
    items = sorted((data / "order_items").glob("*.csv"))
    catalog = [data / "products.csv"]
    return {
        "headers first": [*headers, *items, *catalog],
        "lines first": [*items, *headers, *catalog],
        "interleaved": [f for pair in itertools.zip_longest(items, headers) for f in pair if f] + catalog,
        "catalog first": [*catalog, *headers, *items],
    }
