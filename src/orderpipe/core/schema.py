"""The KPI schema: what each KPI field is, read from the KPI dataclasses themselves.

Each field of `OrderKpi` and `CategoryKpi` (core/kpis.py) carries its kind in its metadata:
a key, a count, an amount of money (exact, cents) or a rate (a fraction, 6 decimals). The
stores' columns and attributes, the command line's columns, the API's fields and the CSV
export are all derived from these declarations, so adding a KPI means adding one field.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

__all__ = [
    "CENT",
    "COUNT",
    "KEY",
    "KINDS",
    "MONEY",
    "RATE_KIND",
    "RATE_UNIT",
    "Column",
    "KpiSchema",
    "columns",
    "kpi",
    "row_of",
    "typed",
]

KEY, COUNT, MONEY, RATE_KIND = "key", "count", "money", "rate"
KINDS = (KEY, COUNT, MONEY, RATE_KIND)
CENT = Decimal("0.01")
RATE_UNIT = Decimal("0.000001")
#: Totals reach 33 digits: wider than the default context's 28.
_WIDE = decimal.Context(prec=60)


def kpi(kind: str, header: str = "", support: bool = False) -> dict[str, Any]:
    """A KPI field's metadata (`field(metadata=kpi(...))`): its kind, a short table header, and
    whether it is a supporting count (stored and served, left out of the default tables)."""
    if kind not in KINDS:
        raise ValueError(f"unknown KPI kind {kind!r}")
    return {"kind": kind, "header": header, "support": support}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str
    header: str
    support: bool

    @property
    def unit(self) -> Decimal | None:
        """The exact step of a decimal field (None for keys and counts)."""
        return {MONEY: CENT, RATE_KIND: RATE_UNIT}.get(self.kind)


def columns(cls: type) -> tuple[Column, ...]:
    """The declared fields of a KPI dataclass, in declaration order."""
    found = []
    for f in fields(cls):
        meta: Mapping[str, Any] = f.metadata
        if "kind" not in meta:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with kpi(kind)")
        found.append(Column(f.name, meta["kind"], meta["header"] or f.name, meta["support"]))
    return tuple(found)


def row_of(obj: Any) -> dict[str, object]:
    """A KPI dataclass instance as a dict in field order (works with slots, unlike `vars`)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def typed(column: Column, raw: object) -> object:
    """A stored value back in its Python type: keys str, counts int, decimals at their unit."""
    if column.kind == KEY:
        return str(raw)
    if column.kind == COUNT:
        return int(str(raw))
    unit = column.unit
    assert unit is not None
    return Decimal(str(raw)).quantize(unit, context=_WIDE)


@dataclass(frozen=True, slots=True)
class KpiSchema:
    """The two KPI tables: order level per date, category level per (category, date)."""

    order: type
    category: type

    @property
    def order_columns(self) -> tuple[Column, ...]:
        return columns(self.order)

    @property
    def category_columns(self) -> tuple[Column, ...]:
        return columns(self.category)
