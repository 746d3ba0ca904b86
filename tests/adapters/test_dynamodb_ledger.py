"""The DynamoDB ledger on moto's server: a commit DynamoDB can never accept is not transient."""

from __future__ import annotations

from pathlib import Path

import pytest

from orderpipe.adapters.dynamodb import DynamoLedger
from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
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


def test_a_product_sold_twice_on_one_date_is_indexed_once(aws_env: dict[str, str], tmp_path: Path) -> None:
    """The product index of an order batch names each (product, date) once: DynamoDB refuses
    a batch write holding one key twice, and the file would fail. Two orders of P1 on one
    date, with more pairs than one batch write takes (25), are counted, and a catalog change
    of P1 recomputes both of its dates."""
    env = aws_env | {"ORDERPIPE_INPUT_CATALOG": "true", "ORDERPIPE_INPUT_GRAIN": "line"}
    pipeline = open_pipeline(load_settings(tmp_path / "home", environ=env))
    header = "order_id,customer_id,order_date,product_id,quantity,unit_price,returned"
    rows = ["O1,C1,2025-07-01,P1,1,2.00,false", "O2,C2,2025-07-01,P1,1,3.00,false", "O3,C1,2025-07-02,P1,1,4.00,false"]
    rows += [f"X{n},C1,2025-07-03,S{n:02d},1,1.00,false" for n in range(30)]
    orders = tmp_path / "orders.csv"
    orders.write_text("\n".join([header, *rows]) + "\n")
    outcome = pipeline.process(pipeline.submit(orders))
    assert outcome.status == "accepted", outcome.message
    assert pipeline.ledger.product_dates(["P1"]) == ["2025-07-01", "2025-07-02"]
    products = tmp_path / "products.csv"
    products.write_text("product_id,category\nP1,Books\n")
    changed = pipeline.process(pipeline.submit(products))
    assert changed.status == "accepted" and changed.dates == ("2025-07-01", "2025-07-02"), changed.message
    category = pipeline.kpis.category(None, None, None)
    assert [(c["order_date"], c["category"], c["orders"]) for c in category if c["category"] == "Books"] == [
        ("2025-07-01", "Books", 2),
        ("2025-07-02", "Books", 1),
    ]
