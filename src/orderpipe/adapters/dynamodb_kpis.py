"""DynamoDB as the KPI store: CategoryKPIs (category, order_date) and OrderKPIs (order_date), each
with a `by_date` index (kpi_all, order_date) so date ranges are a Query, never a Scan. Each date
is written in one transaction guarded by the version read before it (optimistic concurrency);
the ledger table's KPIS / generation item is raised after every write (`dynamodb.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orderpipe.adapters.dynamodb import _GENERATION, _WIDE, ALL, INDEX, TableNames, _code, _s, _Table
from orderpipe.core.kpis import KPIS, DateKpis
from orderpipe.core.schema import KEY, Column, KpiSchema, row_of, typed
from orderpipe.errors import InfrastructureError, OrderpipeError
from orderpipe.faults import checkpoint

__all__ = ["MAX_DIGITS", "DynamoKpiStore"]


#: DynamoDB keeps at most 38 significant digits and would round or refuse more.
MAX_DIGITS = 38


def _num(value: Decimal | int) -> dict[str, str]:
    """A DynamoDB number, in plain digits; refuses what DynamoDB could not store exactly."""
    exact = Decimal(value)
    if exact and len(exact.normalize(_WIDE).as_tuple().digits) > MAX_DIGITS:
        raise OrderpipeError(f"{exact} has more than {MAX_DIGITS} significant digits: DynamoDB cannot store it")
    return {"N": format(exact, "f")}


def _attribute(column: Column, value: object) -> dict[str, str]:
    return {"S": str(value)} if column.kind == KEY else _num(value)  # type: ignore[arg-type]


def _value(column: Column, item: dict[str, Any]) -> object:
    """Read back at the stored unit (keys as strings, counts as ints, decimals exact)."""
    attribute = item[column.name]
    return typed(column, attribute["S"] if column.kind == KEY else attribute["N"])


class DynamoKpiStore:
    """Attributes, reads and writes follow the KPI schema."""

    def __init__(self, names: TableNames, client: Any = None, schema: KpiSchema = KPIS) -> None:
        self.names = names
        self.db = _Table(client)
        self.schema = schema

    def write(self, kpis: Mapping[str, tuple[int, DateKpis]]) -> list[str]:
        skipped = []
        for order_date, (version, date_kpis) in sorted(kpis.items()):
            if not self._write_date(order_date, version, date_kpis):
                skipped.append(order_date)
            checkpoint("kpi-commit-inside")
        if len(skipped) < len(kpis):
            # An atomic counter (never conflicts); a crash just before it leaves the batch
            # unfinished, and its retry writes and raises it again.
            self.db.call(
                "raise of the KPI generation",
                "update_item",
                TableName=self.names.ledger,
                Key=_GENERATION,
                UpdateExpression="ADD #v :one",
                ExpressionAttributeNames={"#v": "value"},
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        return skipped

    def generation(self) -> int:
        item = self.db.call(
            "read of the KPI generation", "get_item", TableName=self.names.ledger, Key=_GENERATION, ConsistentRead=True
        ).get("Item")
        return int(item["value"]["N"]) if item else 0

    def _write_date(self, order_date: str, version: int, kpis: DateKpis) -> bool:
        """One transaction per date, guarded by the version read just before (retried on a race)."""
        for _ in range(10):
            current = self.db.call(
                "read of a date's KPIs",
                "get_item",
                TableName=self.names.order,
                Key={"order_date": {"S": order_date}},
                ConsistentRead=True,
            ).get("Item")
            stored = int(current["version"]["N"]) if current else -1
            if stored > version:
                return False
            before = {v["S"] for v in current["categories"]["L"]} if current else set()
            after = {c.category for c in kpis.categories}
            if current:
                guard = {"ConditionExpression": "version = :read", "ExpressionAttributeValues": {":read": _num(stored)}}
            else:
                guard = {"ConditionExpression": "attribute_not_exists(order_date)"}
            order_item: dict[str, Any] = {
                "order_date": {"S": order_date},
                "kpi_all": {"S": ALL},
                "version": _num(version),
                "categories": {"L": [{"S": c} for c in sorted(after)]},
            }
            if kpis.order is not None:
                values = row_of(kpis.order)
                order_item |= {c.name: _attribute(c, values[c.name]) for c in self.schema.order_columns}
            items: list[dict[str, Any]] = [{"Put": {"TableName": self.names.order, "Item": order_item, **guard}}]
            for category in kpis.categories:
                values = row_of(category)
                category_item = {c.name: _attribute(c, values[c.name]) for c in self.schema.category_columns}
                category_item |= {"kpi_all": {"S": ALL}, "version": _num(version)}
                items.append({"Put": {"TableName": self.names.category, "Item": category_item}})
            for gone in sorted(before - after):
                items.append(
                    {
                        "Delete": {
                            "TableName": self.names.category,
                            "Key": {"category": {"S": gone}, "order_date": {"S": order_date}},
                        }
                    }
                )
            try:
                self.db.client.transact_write_items(TransactItems=items)
                return True
            except ClientError as exc:
                if _code(exc) not in ("TransactionCanceledException", "TransactionConflictException"):
                    raise InfrastructureError(f"DynamoDB KPI write for {order_date} failed: {exc}") from exc
            except BotoCoreError as exc:
                raise InfrastructureError(f"DynamoDB KPI write for {order_date} failed: {exc}") from exc
        raise InfrastructureError(f"DynamoDB KPI write for {order_date} kept conflicting; retry the batch")

    def _range(self, table: str, start: str | None, end: str | None) -> list[dict[str, Any]]:
        condition, values = "kpi_all = :all", {":all": {"S": ALL}}
        if start and end:
            condition += " AND order_date BETWEEN :a AND :b"
            values |= {":a": {"S": start}, ":b": {"S": end}}
        elif start:
            condition += " AND order_date >= :a"
            values[":a"] = {"S": start}
        elif end:
            condition += " AND order_date <= :b"
            values[":b"] = {"S": end}
        return self.db.query_all(
            f"read of {table}",
            TableName=table,
            IndexName=INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
        )

    def daily(self, start: str | None, end: str | None) -> list[dict[str, object]]:
        cols = self.schema.order_columns
        measure = next(c.name for c in cols if c.kind != KEY)  # absent on a date with no orders left
        items = sorted(self._range(self.names.order, start, end), key=lambda i: _s(i, "order_date"))
        return [{c.name: _value(c, i) for c in cols} for i in items if measure in i]

    def category(self, name: str | None, start: str | None, end: str | None) -> list[dict[str, object]]:
        items = self._range(self.names.category, start, end)
        cols = self.schema.category_columns
        rows = [{c.name: _value(c, i) for c in cols} for i in items if name is None or _s(i, "category") == name]
        return sorted(rows, key=lambda r: (str(r["category"]), str(r["order_date"])))
