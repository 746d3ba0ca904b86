"""DynamoDB as the ledger (the KPI store is `dynamodb_kpis.py`).

Ledger table (pk, sk):
  BATCH#<id> / BATCH        the commit record: seq, file, rows, dates, done, retracted (and when)
  DATE#<date> / BATCH#<id>  which parts of a batch hold the date's facts (written before the commit)
  DATE#<date> / BATCH#retracted-<id>  a retraction's marker: its own seq, no parts (`dynamodb_retract.py`)
  PENDING / <id>            committed, not yet done (a Query, never a Scan, finds them)
  COUNTER / seq             the sequence counter
  PRODUCT#<id> / <date>     a product sold on that date (with the catalog on; written before the commit)
  RUN / <time>#<id>         the run history
  RUNS#<batch> / <time>#<id>  the same run under its batch, written in the same transaction: a
                            batch's runs are one small Query, not a read of the whole history
  RUNS_BY_BATCH / complete  every run recorded before the copies existed has one
  KPIS / generation         raised after every KPI write (what the API's version is made of)
KPI tables: CategoryKPIs (category, order_date) and OrderKPIs (order_date), each with a
`by_date` index (kpi_all, order_date) so date ranges are a Query, never a Scan. Each date is
written in one transaction guarded by the version read before it (optimistic concurrency).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orderpipe.adapters.dynamodb_retract import Retractions, run_items
from orderpipe.errors import InfrastructureError, OrderpipeError
from orderpipe.faults import checkpoint
from orderpipe.ports import BatchRecord, FactEntry, RunRecord

__all__ = ["DynamoLedger", "TableNames", "create_tables"]

ALL = "ALL"
_GENERATION = {"pk": {"S": "KPIS"}, "sk": {"S": "generation"}}
INDEX = "by_date"
_WIDE = decimal.Context(prec=60)


class TableNames:
    def __init__(self, ledger: str, category: str = "CategoryKPIs", order: str = "OrderKPIs") -> None:
        self.ledger = ledger
        self.category = category
        self.order = order


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _client(client: Any) -> Any:
    if client is None:
        import boto3

        return boto3.client("dynamodb")
    return client


def create_tables(client: Any, names: TableNames) -> None:
    """The schema the CDK stack deploys; tests create it on moto with this function."""
    on_demand = {"BillingMode": "PAY_PER_REQUEST"}
    client.create_table(
        TableName=names.ledger,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        **on_demand,
    )
    by_date = {
        "IndexName": INDEX,
        "KeySchema": [
            {"AttributeName": "kpi_all", "KeyType": "HASH"},
            {"AttributeName": "order_date", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    for name, keys in ((names.category, ["category", "order_date"]), (names.order, ["order_date"])):
        attributes = {*keys, "kpi_all", "order_date"}
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ["HASH", "RANGE"], strict=False)],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
            GlobalSecondaryIndexes=[by_date],
            **on_demand,
        )


class _Table:
    """Low-level client calls with our errors."""

    def __init__(self, client: Any) -> None:
        self._raw = client

    @property
    def client(self) -> Any:
        self._raw = _client(self._raw)
        return self._raw

    def call(self, what: str, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise InfrastructureError(f"DynamoDB {what} failed: {exc}") from exc

    def query_all(self, what: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.call(what, "query", **kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _s(item: dict[str, Any], name: str) -> str:
    return str(item[name]["S"])


def _n(item: dict[str, Any], name: str) -> int:
    return int(item[name]["N"])


class DynamoLedger(Retractions):
    def __init__(self, table: str, client: Any = None) -> None:
        self.table = table
        self.db = _Table(client)
        self._runs_by_batch = False  # known complete (RUNS_BY_BATCH / complete read or written)

    def _batch(self, item: dict[str, Any]) -> BatchRecord:
        return BatchRecord(
            _s(item, "pk").removeprefix("BATCH#"),
            _n(item, "seq"),
            _s(item, "file"),
            _n(item, "rows"),
            tuple(v["S"] for v in item["dates"]["L"]),
            item["done"]["BOOL"],
            not item["done"]["BOOL"] and item.get("failed", {}).get("BOOL", False),
            item.get("retracted", {}).get("S", ""),
            item.get("retracted_at", {}).get("S", ""),
        )

    def get(self, batch_id: str) -> BatchRecord | None:
        key = {"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": "BATCH"}}
        item = self.db.call("read of a batch", "get_item", TableName=self.table, Key=key, ConsistentRead=True)
        return self._batch(item["Item"]) if "Item" in item else None

    def commit(self, batch_id: str, file: str, rows: int, parts: Mapping[str, Sequence[int]]) -> BatchRecord:
        existing = self.get(batch_id)
        if existing is not None:
            return existing
        for order_date in sorted(parts):  # invisible until the batch item exists; retries overwrite
            self.db.call(
                "write of a date entry",
                "put_item",
                TableName=self.table,
                Item={
                    "pk": {"S": f"DATE#{order_date}"},
                    "sk": {"S": f"BATCH#{batch_id}"},
                    "parts": {"L": [{"N": str(p)} for p in parts[order_date]]},
                },
            )
        for _ in range(50):
            if self._commit_once(batch_id, file, rows, sorted(parts)):
                break
            existing = self.get(batch_id)
            if existing is not None:  # another worker committed the same bytes
                return existing
        else:
            raise InfrastructureError(f"DynamoDB commit of batch {batch_id[:12]} kept conflicting; retry the file")
        record = self.get(batch_id)
        if record is None:
            raise InfrastructureError(f"batch {batch_id[:12]} is not in the ledger after its commit")
        return record

    def _commit_once(self, batch_id: str, file: str, rows: int, dates: list[str]) -> bool:
        """One try at the commit transaction; False when another commit took the seq first (or
        committed the same batch). The seq is taken inside the transaction, conditioned on the
        counter value read just before, so seq order is commit order, as in SQLite."""
        counter_key = {"pk": {"S": "COUNTER"}, "sk": {"S": "seq"}}
        item = self.db.call(
            "read of the sequence", "get_item", TableName=self.table, Key=counter_key, ConsistentRead=True
        ).get("Item")
        current = int(item["value"]["N"]) if item else 0
        seq = str(current + 1)
        checkpoint("ledger-commit-inside")
        batch = {
            "pk": {"S": f"BATCH#{batch_id}"},
            "sk": {"S": "BATCH"},
            "seq": {"N": seq},
            "file": {"S": file},
            "rows": {"N": str(rows)},
            "dates": {"L": [{"S": d} for d in dates]},
            "done": {"BOOL": False},
            "committed_at": {"S": _now()},
        }
        guard = (
            {"ConditionExpression": "#v = :current", "ExpressionAttributeValues": {":current": {"N": str(current)}}}
            if item
            else {"ConditionExpression": "attribute_not_exists(pk)"}
        )
        counter = {**counter_key, "value": {"N": seq}}
        names = {"ExpressionAttributeNames": {"#v": "value"}} if item else {}
        puts = [
            {"TableName": self.table, "Item": batch, "ConditionExpression": "attribute_not_exists(pk)"},
            {"TableName": self.table, "Item": {"pk": {"S": "PENDING"}, "sk": {"S": batch_id}}},
            {"TableName": self.table, "Item": counter, **names, **guard},
        ]
        try:
            self.db.client.transact_write_items(TransactItems=[{"Put": put} for put in puts])
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if _code(exc) == "ValidationException" or "ValidationError" in reasons:
                # e.g. a batch item over 400 KB: retrying can never help, so not transient
                raise OrderpipeError(f"DynamoDB refused the commit of batch {batch_id[:12]}: {exc}") from exc
            if _code(exc) not in ("TransactionCanceledException", "TransactionConflictException"):
                raise InfrastructureError(f"DynamoDB commit of batch {batch_id[:12]} failed: {exc}") from exc
            return False
        except BotoCoreError as exc:
            raise InfrastructureError(f"DynamoDB commit of batch {batch_id[:12]} failed: {exc}") from exc
        return True

    def mark_done(self, batch_id: str) -> None:
        self.db.call(
            "completion of a batch",
            "transact_write_items",
            TransactItems=[
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": "BATCH"}},
                        "UpdateExpression": "SET done = :t, done_at = :now",
                        "ExpressionAttributeValues": {":t": {"BOOL": True}, ":now": {"S": _now()}},
                    }
                },
                {"Delete": {"TableName": self.table, "Key": {"pk": {"S": "PENDING"}, "sk": {"S": batch_id}}}},
                {"Delete": {"TableName": self.table, "Key": {"pk": {"S": "FAILED"}, "sk": {"S": batch_id}}}},
            ],
        )

    def mark_failed(self, batch_id: str) -> None:
        self.db.call(
            "failure of a batch",
            "transact_write_items",
            TransactItems=[
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": "BATCH"}},
                        "UpdateExpression": "SET failed = :t",
                        "ConditionExpression": "done = :f",
                        "ExpressionAttributeValues": {":t": {"BOOL": True}, ":f": {"BOOL": False}},
                    }
                },
                {"Delete": {"TableName": self.table, "Key": {"pk": {"S": "PENDING"}, "sk": {"S": batch_id}}}},
                {"Put": {"TableName": self.table, "Item": {"pk": {"S": "FAILED"}, "sk": {"S": batch_id}}}},
            ],
        )

    def compact(self, order_date: str, covered: Sequence[FactEntry], merged: FactEntry) -> bool:
        """One transaction: the merged entry in, the covered ones out (each must still exist)."""
        date_key = {"pk": {"S": f"DATE#{order_date}"}}
        merged_item = {
            **date_key,
            "sk": {"S": f"BATCH#{merged.batch_id}"},
            "parts": {"L": [{"N": str(p)} for p in merged.parts]},
            "seq": {"N": str(merged.seq)},
        }
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": merged_item, "ConditionExpression": "attribute_not_exists(pk)"}}
        ]
        items += [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": {**date_key, "sk": {"S": f"BATCH#{e.batch_id}"}},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            }
            for e in covered
        ]
        checkpoint("compact-switch-inside")
        try:
            self.db.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _code(exc) in ("TransactionCanceledException", "TransactionConflictException"):
                return False  # another process compacted these entries first
            raise InfrastructureError(f"DynamoDB compaction of {order_date} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise InfrastructureError(f"DynamoDB compaction of {order_date} failed: {exc}") from exc
        return True

    def failed(self) -> list[BatchRecord]:
        items = self.db.query_all(
            "read of failed batches",
            TableName=self.table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "FAILED"}},
            ConsistentRead=True,
        )
        records = [self.get(_s(item, "sk")) for item in items]
        return sorted((r for r in records if r is not None and r.failed), key=lambda r: r.seq)

    def unfinished(self) -> list[BatchRecord]:
        pending = self.db.query_all(
            "read of pending batches",
            TableName=self.table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "PENDING"}},
            ConsistentRead=True,
        )
        records = [self.get(_s(item, "sk")) for item in pending]
        return sorted((r for r in records if r is not None), key=lambda r: r.seq)

    def fact_entries(self, dates: Sequence[str]) -> dict[str, list[FactEntry]]:
        entries: dict[str, list[FactEntry]] = {}
        for order_date in dates:
            items = self.db.query_all(
                "read of a date's batches",
                TableName=self.table,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": f"DATE#{order_date}"}},
                ConsistentRead=True,
            )
            found = []
            for item in items:
                parts = tuple(int(p["N"]) for p in item["parts"]["L"])
                entry_id = _s(item, "sk").removeprefix("BATCH#")
                if "seq" in item:  # a compacted entry carries its own seq
                    found.append(FactEntry(order_date, entry_id, _n(item, "seq"), parts))
                    continue
                batch = self.get(entry_id)
                if batch is not None:  # staged but never committed: invisible
                    found.append(FactEntry(order_date, batch.batch_id, batch.seq, parts))
            entries[order_date] = sorted(found, key=lambda e: e.seq)
        return entries

    def index_products(self, dates_by_product: Mapping[str, Sequence[str]]) -> None:
        """Idempotent puts, 25 per request, unprocessed ones sent again."""
        items = [
            {"PutRequest": {"Item": {"pk": {"S": f"PRODUCT#{p}"}, "sk": {"S": d}}}}
            for p, dates in sorted(dates_by_product.items())
            for d in dates
        ]
        for start in range(0, len(items), 25):
            pending = {self.table: items[start : start + 25]}
            for _ in range(20):
                answer = self.db.call("write of the product index", "batch_write_item", RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise InfrastructureError("DynamoDB kept refusing writes of the product index; retry the file")
            checkpoint("index-inside")

    def product_dates(self, products: Sequence[str]) -> list[str]:
        found: set[str] = set()
        for product in products:
            items = self.db.query_all(
                "read of a product's dates",
                TableName=self.table,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": f"PRODUCT#{product}"}},
                ConsistentRead=True,
            )
            found.update(_s(item, "sk") for item in items)
        return sorted(found)

    def record_run(self, run: RunRecord) -> None:
        self.db.call(
            "write of the run history",
            "transact_write_items",
            TransactItems=[{"Put": {"TableName": self.table, "Item": i}} for i in run_items(run)],
        )

    def runs_of(self, batch_id: str) -> list[RunRecord]:
        """The runs of exactly this batch, oldest first: a Query of its own partition."""
        self._copy_older_runs()
        key = {":p": {"S": f"RUNS#{batch_id}"}}
        items = self.db.query_all(
            "read of a batch's runs",
            TableName=self.table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues=key,
        )
        return [self._run(item) for item in items]

    def _copy_older_runs(self) -> None:
        """Once per table: give every run recorded before runs had a copy under their batch one
        (puts of the same item: two processes doing it at once write the same)."""
        if self._runs_by_batch:
            return
        marker = {"pk": {"S": "RUNS_BY_BATCH"}, "sk": {"S": "complete"}}
        found = self.db.call("read of the run index", "get_item", TableName=self.table, Key=marker, ConsistentRead=True)
        if "Item" not in found:
            every = {":p": {"S": "RUN"}}
            for item in self.db.query_all(
                "read of the run history",
                TableName=self.table,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues=every,
            ):
                copy = item | {"pk": {"S": f"RUNS#{_s(item, 'batch_id')}"}}
                self.db.call("copy of a run under its batch", "put_item", TableName=self.table, Item=copy)
            self.db.call("write of the run index", "put_item", TableName=self.table, Item=marker)
        self._runs_by_batch = True

    def runs(
        self,
        limit: int | None = None,
        status: str | None = None,
        batch_id: str | None = None,
        before: str | None = None,
    ) -> list[RunRecord]:
        """A Query of the RUN partition, newest first, filtered on the server, stopped at `limit`;
        `before` is a sort key (the start time and a random tag), so the key condition says it."""
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p" + (" AND sk < :before" if before is not None else ""),
            "ExpressionAttributeValues": {
                ":p": {"S": "RUN"},
                **({":before": {"S": before}} if before is not None else {}),
            },
            "ScanIndexForward": False,
        }
        filters = []
        if status is not None:
            filters.append("#status = :status")
            query["ExpressionAttributeValues"][":status"] = {"S": status}
            query["ExpressionAttributeNames"] = {"#status": "status"}
        if batch_id is not None:
            filters.append("begins_with(batch_id, :id)")
            query["ExpressionAttributeValues"][":id"] = {"S": batch_id}
        if filters:
            query["FilterExpression"] = " AND ".join(filters)
        items: list[dict[str, Any]] = []
        while limit is None or len(items) < limit:
            page = self.db.call("read of the run history", "query", **query)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [self._run(item) for item in reversed(items[:limit] if limit is not None else items)]

    def _run(self, item: dict[str, Any]) -> RunRecord:
        seq = 0
        if _s(item, "status") == "accepted":
            batch = self.get(_s(item, "batch_id"))
            seq = batch.seq if batch else 0
        return RunRecord(
            _s(item, "batch_id"),
            _s(item, "file"),
            _s(item, "status"),
            _n(item, "rows"),
            tuple(v["S"] for v in item["dates"]["L"]),
            _s(item, "started_at"),
            _s(item, "finished_at"),
            _s(item, "message"),
            seq,
            item.get("report", {}).get("S", ""),
            _s(item, "sk"),
        )

    def last_run(self) -> str:
        page = self.db.call(
            "read of the latest run",
            "query",
            TableName=self.table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "RUN"}},
            ScanIndexForward=False,
            Limit=1,
            ProjectionExpression="sk",
        )
        items = page.get("Items", [])
        return _s(items[0], "sk") if items else ""
