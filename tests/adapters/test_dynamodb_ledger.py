"""The DynamoDB ledger on moto's server: a commit DynamoDB can never accept is not transient."""

from __future__ import annotations

import pytest

from orderpipe.adapters.dynamodb import DynamoLedger
from orderpipe.errors import OrderpipeError, TransientError


def test_a_commit_over_the_item_size_limit_is_refused_for_good(aws_env: dict[str, str]) -> None:
    ledger = DynamoLedger(aws_env["ORDERPIPE_AWS_LEDGER_TABLE"])
    # An item over 400 KB (as a batch spanning ~30,000 dates would make); a long name is cheaper.
    with pytest.raises(OrderpipeError) as caught:
        ledger.commit("f" * 64, "x" * 420_000 + ".csv", 1, {"2025-07-06": [0]})
    assert not isinstance(caught.value, TransientError)
    assert ledger.get("f" * 64) is None


def test_a_batchs_runs_are_one_small_query_and_older_runs_are_found_too(aws_env: dict[str, str]) -> None:
    """A run recorded before runs had a copy under their batch is copied once per table; from
    then on a batch's runs never read the whole run history (the RUN partition)."""
    import boto3

    from orderpipe.ports import RunRecord

    table = aws_env["ORDERPIPE_AWS_LEDGER_TABLE"]
    at = "2025-07-01T00:00:00.000+00:00"
    old = {
        "pk": {"S": "RUN"},
        "sk": {"S": f"{at}#00000000"},
        "batch_id": {"S": "b" * 64},
        "file": {"S": "old.csv"},
        "status": {"S": "rejected"},
        "rows": {"N": "1"},
        "dates": {"L": [{"S": "2025-07-01"}]},
        "started_at": {"S": at},
        "finished_at": {"S": at},
        "message": {"S": "m"},
    }
    boto3.client("dynamodb").put_item(TableName=table, Item=old)  # as an older orderpipe wrote it
    ledger = DynamoLedger(table)
    ledger.record_run(RunRecord("b" * 64, "new.csv", "rejected", 1, ("2025-07-01",), at, at, "m"))
    partitions: list[str] = []
    query_all = ledger.db.query_all

    def watched(what: str, **kwargs: object) -> list[dict[str, object]]:
        partitions.append(kwargs["ExpressionAttributeValues"][":p"]["S"])  # type: ignore[index]
        return query_all(what, **kwargs)

    ledger.db.query_all = watched  # type: ignore[method-assign]
    assert [r.file for r in ledger.runs_of("b" * 64)] == ["old.csv", "new.csv"]
    assert partitions == ["RUN", "RUNS#" + "b" * 64]  # the copy of the older runs, once
    assert [r.file for r in DynamoLedger(table).runs_of("b" * 64)] == ["old.csv", "new.csv"]
    partitions.clear()
    ledger.runs_of("b" * 64)
    assert partitions == ["RUNS#" + "b" * 64]
