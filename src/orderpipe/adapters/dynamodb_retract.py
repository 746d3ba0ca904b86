"""DynamoDB's side of retracting a batch (`orderpipe batches retract`): the batch's state, its
date entries switched, and its run recorded once. Mixed into `DynamoLedger`."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orderpipe.errors import InfrastructureError
from orderpipe.faults import checkpoint
from orderpipe.ports import BatchRecord, FactEntry, RunRecord

__all__ = ["Retractions", "run_items"]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def run_items(run: RunRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's item in the history and its copy under its batch (written together)."""
    item = {
        "pk": {"S": "RUN"},
        "sk": {"S": f"{run.started_at}#{uuid.uuid4().hex[:8]}"},
        "batch_id": {"S": run.batch_id},
        "file": {"S": run.file},
        "status": {"S": run.status},
        "rows": {"N": str(run.rows)},
        "dates": {"L": [{"S": d} for d in run.dates]},
        "started_at": {"S": run.started_at},
        "finished_at": {"S": run.finished_at},
        "message": {"S": run.message},
        "report": {"S": run.report},
    }
    return item, item | {"pk": {"S": f"RUNS#{run.batch_id}"}}


class Retractions:
    """The ledger's retraction methods; `table`, `db` and `get` are `DynamoLedger`'s."""

    table: str
    db: Any

    def get(self, batch_id: str) -> BatchRecord | None:
        raise NotImplementedError

    def _transact(self, what: str, items: list[dict[str, Any]]) -> bool:
        """One transaction; False when a condition of it failed or another one conflicted."""
        try:
            self.db.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _code(exc) in ("TransactionCanceledException", "TransactionConflictException"):
                return False
            raise InfrastructureError(f"DynamoDB {what} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise InfrastructureError(f"DynamoDB {what} failed: {exc}") from exc
        return True

    def begin_retract(self, batch_id: str) -> BatchRecord | None:
        update = {
            "TableName": self.table,
            "Key": {"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": "BATCH"}},
            "UpdateExpression": "SET retracted = :r, retracted_at = :now",
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(retracted)",
            "ExpressionAttributeValues": {":r": {"S": "retracting"}, ":now": {"S": _now()}},
        }
        self._transact(f"retraction of batch {batch_id[:12]}", [{"Update": update}])  # False: begun before
        return self.get(batch_id)

    def retract_entries(
        self, order_date: str, covered: Sequence[FactEntry], added: Sequence[FactEntry], marker: str
    ) -> bool:
        """One transaction: the next seq taken from the counter (guarded by the value read, as a
        commit takes it), the covered entries out (each must still exist), `added` and the
        marker in (neither may exist)."""
        counter_key = {"pk": {"S": "COUNTER"}, "sk": {"S": "seq"}}
        item = self.db.call(
            "read of the sequence", "get_item", TableName=self.table, Key=counter_key, ConsistentRead=True
        ).get("Item")
        current = int(item["value"]["N"]) if item else 0
        guard = (
            {
                "ConditionExpression": "#v = :current",
                "ExpressionAttributeNames": {"#v": "value"},
                "ExpressionAttributeValues": {":current": {"N": str(current)}},
            }
            if item
            else {"ConditionExpression": "attribute_not_exists(pk)"}
        )
        date_key = {"pk": {"S": f"DATE#{order_date}"}}
        marked = FactEntry(order_date, marker, current + 1, ())
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": {**counter_key, "value": {"N": str(current + 1)}}, **guard}}
        ]
        items += [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {
                        **date_key,
                        "sk": {"S": f"BATCH#{e.batch_id}"},
                        "parts": {"L": [{"N": str(p)} for p in e.parts]},
                        "seq": {"N": str(e.seq)},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for e in (*added, marked)
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
        checkpoint("retract-switch-inside")
        return self._transact(f"retraction on {order_date}", items)

    def finish_retract(self, batch_id: str, run: RunRecord) -> bool:
        update = {
            "TableName": self.table,
            "Key": {"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": "BATCH"}},
            "UpdateExpression": "SET retracted = :done",
            "ConditionExpression": "retracted = :r",
            "ExpressionAttributeValues": {":done": {"S": "retracted"}, ":r": {"S": "retracting"}},
        }
        puts = [{"Put": {"TableName": self.table, "Item": i}} for i in run_items(run)]
        return self._transact(f"retraction of batch {batch_id[:12]}", [{"Update": update}, *puts])
