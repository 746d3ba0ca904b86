"""End to end on moto's server: S3 event → Lambda handler → Step Functions (MainStepFn.json
with its substitutions) → ECS tasks run by a small test agent as local subprocesses → S3,
DynamoDB, SNS (the deployment as `emulated.py` builds it)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from orderpipe.adapters.dynamodb import DynamoLedger, TableNames, create_tables
from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from tests.aws import moto_bridge
from tests.aws.emulated import EcsAgent, Stack, local_kpis
from tests.conftest import order, run_file, write

pytestmark = pytest.mark.slow


def test_a_valid_file_lands_in_dynamodb_like_a_local_run(agent: EcsAgent, tmp_path: Path) -> None:
    stack = Stack(agent.ecs.meta.endpoint_url, "valid", tmp_path)
    path = write(
        tmp_path / "july orders.csv",
        [
            order("O1", "C1", "2025-07-06", "Electronics", "P1", "2", "199.99"),
            order("O2", "C2", "2025-07-06", "Books", "P2", "1", "29.99", "true"),
            order("O3", "C1", "2025-07-07", "Toys", "P3", "3", "5.10"),
        ],
    )
    started = stack.trigger(stack.upload(path, "input/july orders.csv"))  # a key with a space
    (name,) = started["started"]
    execution = stack.wait(name)
    assert execution["status"] == "SUCCEEDED", (stack.messages("failure"), agent.commands)
    assert stack.kpis() == local_kpis([path], tmp_path / "local")
    assert stack.keys("input/") == []
    assert "processed/july orders.csv" in stack.keys("processed/")
    (message,) = stack.messages("success")
    assert message.startswith("accepted july orders.csv") and name in message
    assert [c for c, _ in agent.commands] == ["validate", "transform"]
    stack.assert_cleaned_up()


def test_a_configured_shape_reaches_the_containers(agent: EcsAgent, tmp_path: Path) -> None:
    """The [input] table, passed as $ORDERPIPE_INPUT by the state machine: line items with
    renamed columns and timestamps give the KPIs a local run with the same settings gives."""
    shape = {
        "grain": "line",
        "timezone": "UTC",
        "columns": {"order_id": "Name", "order_timestamp": "Created at"},
        "returned": {"column": "Financial Status", "values": ["refunded"]},
    }
    stack = Stack(agent.ecs.meta.endpoint_url, "shape", tmp_path, input_shape=json.dumps(shape))
    path = tmp_path / "orders_export.csv"
    path.write_text(
        "Name,customer_id,Created at,category,product_id,quantity,unit_price,Financial Status\n"
        "#1,C1,2025-07-06 23:30:00 -0500,Books,P1,2,10.00,refunded\n"
        "#1,,,Toys,P2,1,5.00,\n"
        "#2,C2,2025-07-07T08:00:00Z,Books,P1,1,10.00,paid\n"
    )
    (name,) = stack.trigger(stack.upload(path, "input/orders_export.csv"))["started"]
    execution = stack.wait(name)
    assert execution["status"] == "SUCCEEDED", (stack.messages("failure"), agent.commands)
    pipeline = open_pipeline(load_settings(tmp_path / "local", environ={"ORDERPIPE_INPUT": json.dumps(shape)}))
    run_file(pipeline, path)
    expected = pipeline.kpis.daily(None, None), pipeline.kpis.category(None, None, None)
    assert stack.kpis() == expected
    daily, _ = expected
    assert [(d["order_date"], d["total_orders"], d["total_items_sold"]) for d in daily] == [("2025-07-07", 2, 4)]


def test_a_catalog_reaches_the_containers(agent: EcsAgent, tmp_path: Path) -> None:
    """`catalog = true` through $ORDERPIPE_INPUT: orders, then a products file that names their
    products, then an invalid products file; the KPIs of a local run, the bad file quarantined."""
    shape = {"grain": "line", "catalog": True}
    stack = Stack(agent.ecs.meta.endpoint_url, "catalog", tmp_path, input_shape=json.dumps(shape))
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,customer_id,order_date,product_id,quantity,unit_price,returned\n"
        "O1,C1,2025-07-06,P1,2,10.00,true\nO1,C1,2025-07-06,P2,1,5.25,false\nO2,C2,2025-07-07,P3,1,3.00,false\n"
    )
    products = tmp_path / "products.csv"
    products.write_text("product_id,category\nP1,Books\nP2,Home\n")
    bad = tmp_path / "bad" / "products-bad.csv"
    bad.parent.mkdir()
    bad.write_text("product_id,category\nP1,Books\nP1,Toys\n")
    statuses = []
    for path in (orders, products, bad):
        (name,) = stack.trigger(stack.upload(path, f"input/{path.name}"))["started"]
        statuses.append(stack.wait(name)["status"])
    assert statuses == ["SUCCEEDED", "SUCCEEDED", "FAILED"], (stack.messages("failure"), agent.commands)
    pipeline = open_pipeline(load_settings(tmp_path / "local", environ={"ORDERPIPE_INPUT": json.dumps(shape)}))
    for path in (orders, products):
        run_file(pipeline, path)
    expected = pipeline.kpis.daily(None, None), pipeline.kpis.category(None, None, None)
    assert stack.kpis() == expected
    assert [(c["category"], c["order_date"]) for c in expected[1]] == [
        ("Books", "2025-07-06"),
        ("Home", "2025-07-06"),
        ("Unknown", "2025-07-07"),
    ]
    assert "rejected/products-bad.csv" in stack.keys("rejected/")
    assert "processed/products.csv" in stack.keys("processed/")


#: The lab preset's [input] table as $ORDERPIPE_INPUT: the containers read no orderpipe.toml.
LAB_SHAPE = {
    "grain": "relational",
    "catalog": True,
    "timezone": "UTC",
    "columns": {"customer_id": "user_id", "order_timestamp": "created_at", "items_expected": "num_of_item",
                "line_id": "id", "unit_price": "sale_price"},
    "returned": {"column": "status", "values": ["returned"]},
    "catalog_columns": {"product_id": "id"},
}  # fmt: skip


def test_the_relational_grain_reaches_the_containers(agent: EcsAgent, tmp_path: Path) -> None:
    """Lines before their headers, then the catalog and an invalid header file, each through the
    ECS tasks: the KPIs of a local run of the same files, the bad file quarantined."""
    from tests.test_relational import HEADERS, hand_files
    from tests.test_relational import write as write_part

    stack = Stack(agent.ecs.meta.endpoint_url, "relational", tmp_path, input_shape=json.dumps(LAB_SHAPE))
    headers, items, products = hand_files(tmp_path / "files")
    bad = write_part(tmp_path / "bad", "orders_bad.csv", HEADERS, ["O7,,delivered,2025-03-01T10:00:00,,,,1"])
    statuses = []
    for path in (items, headers, products, bad):
        (name,) = stack.trigger(stack.upload(path, f"input/{path.name}"))["started"]
        statuses.append(stack.wait(name)["status"])
    assert statuses == ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "FAILED"], (stack.messages("failure"), agent.commands)
    pipeline = open_pipeline(load_settings(tmp_path / "local", environ={"ORDERPIPE_INPUT": json.dumps(LAB_SHAPE)}))
    for path in (items, headers, products):
        run_file(pipeline, path)
    expected = pipeline.kpis.daily(None, None), pipeline.kpis.category(None, None, None)
    assert stack.kpis() == expected
    assert [(d["order_date"], d["total_orders"]) for d in expected[0]] == [("2025-03-01", 2)]
    assert "rejected/orders_bad.csv" in stack.keys("rejected/")
    assert "processed/order_items_part1.csv" in stack.keys("processed/")


def test_the_date_window_reaches_the_containers(agent: EcsAgent, tmp_path: Path) -> None:
    """The window of plausible order dates travels in $ORDERPIPE_INPUT with the rest of [input]:
    a file dated 2052 is rejected by the default window, and accepted by a stack whose [input]
    widens it."""
    path = write(tmp_path / "future.csv", [order("O1", date="2052-07-06")])
    strict = Stack(agent.ecs.meta.endpoint_url, "window", tmp_path)
    (name,) = strict.trigger(strict.upload(path, "input/future.csv"))["started"]
    assert strict.wait(name)["status"] == "FAILED"
    (message,) = strict.messages("failure")
    assert "implausible-date" in message and "input.latest_date" in message
    wide = Stack(agent.ecs.meta.endpoint_url, "wide", tmp_path, input_shape=json.dumps({"latest_date": "2052-12-31"}))
    (name,) = wide.trigger(wide.upload(path, "input/future.csv"))["started"]
    assert wide.wait(name)["status"] == "SUCCEEDED", (wide.messages("failure"), agent.commands)
    assert [d["order_date"] for d in wide.kpis()[0]] == ["2052-07-06"]


def test_an_invalid_file_is_quarantined_with_its_report(agent: EcsAgent, tmp_path: Path) -> None:
    stack = Stack(agent.ecs.meta.endpoint_url, "invalid", tmp_path)
    path = write(tmp_path / "bad.csv", [order("O1"), order("O2", date="2025-02-30")])
    (name,) = stack.trigger(stack.upload(path, "input/bad.csv"))["started"]
    execution = stack.wait(name)
    assert execution["status"] == "FAILED"
    assert stack.keys("rejected/") == ["rejected/bad.csv", "rejected/bad.csv.report.json"]
    assert stack.keys("input/") == []
    (message,) = stack.messages("failure")
    assert "invalid-date" in message and "line 3" in message and name in message
    assert stack.kpis() == ([], [])
    assert [c for c, _ in agent.commands] == ["validate"]
    stack.assert_cleaned_up()

    other = write(tmp_path / "bad.csv", [order("O9", quantity="0")])  # same name, other bytes
    (second,) = stack.trigger(stack.upload(other, "input/bad.csv"))["started"]
    assert stack.wait(second)["status"] == "FAILED"
    quarantined = stack.keys("rejected/")
    assert len(quarantined) == 4 and "rejected/bad.csv" in quarantined  # the first is kept, not overwritten


def test_a_duplicate_event_starts_one_execution(agent: EcsAgent, tmp_path: Path) -> None:
    """S3 delivers at least once: the same event while running (AWS answers with the running
    execution) and after it finished (ExecutionAlreadyExists, success for us) make one execution."""
    stack = Stack(agent.ecs.meta.endpoint_url, "dup", tmp_path)
    event = stack.upload(write(tmp_path / "o.csv", [order("O1")]), "input/o.csv")
    (name,) = stack.trigger(event)["started"]
    stack.trigger(event)
    assert stack.wait(name)["status"] == "SUCCEEDED"
    assert stack.trigger(event) == {"started": [], "already_exists": [name], "ignored": []}
    assert len(stack.sfn.list_executions(stateMachineArn=stack.machine_arn)["executions"]) == 1
    assert [c for c, _ in agent.commands] == ["validate", "transform"]


def test_a_failing_task_is_retried_then_reported_and_cleaned_up(agent: EcsAgent, tmp_path: Path) -> None:
    """An infrastructure failure ends in a Fail state after cleanup: redriving it would only fail
    again. The way to reprocess is a new execution with the failed one's input (the same version)."""
    stack = Stack(agent.ecs.meta.endpoint_url, "broken", tmp_path, ledger_override="late-ledger-broken")
    (name,) = stack.trigger(stack.upload(write(tmp_path / "o.csv", [order("O1")]), "input/o.csv"))["started"]
    execution = stack.wait(name)
    assert execution["status"] == "FAILED"
    assert [c for c, _ in agent.commands] == ["validate"] * 4, stack.messages("failure")  # 1 run + 3 retries
    assert all(code != 0 for _, code in agent.commands)
    (message,) = stack.messages("failure")
    assert "States.TaskFailed" in message and "o.csv" in message and name in message
    assert stack.keys("input/") == ["input/o.csv"]  # an infrastructure failure keeps the file for a retry
    failed_arn = stack.machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    assert f"--state-machine-arn {stack.machine_arn} " in message and f"--execution-arn {failed_arn} " in message
    stack.assert_cleaned_up()

    # The cause is fixed (the table exists now); a new execution with the same input, as the message says.
    create_tables(boto3.client("dynamodb"), TableNames("late-ledger-broken", "unused-c-broken", "unused-o-broken"))
    again = stack.sfn.start_execution(
        stateMachineArn=stack.machine_arn, input=stack.sfn.describe_execution(executionArn=failed_arn)["input"]
    )["executionArn"].rsplit(":", 1)[-1]
    assert stack.wait(again)["status"] == "SUCCEEDED", stack.messages("failure")
    assert stack.keys("input/") == [] and stack.keys("processed/") == ["processed/o.csv"]
    stack.assert_cleaned_up()


def test_a_failure_after_the_verdict_is_in_the_batch_history_with_its_error(agent: EcsAgent, tmp_path: Path) -> None:
    """The transformer cannot write the KPIs (its table does not exist): after its retries, the
    failure is notified and recorded in the ledger's history, under the batch the verdict named,
    with the error the notification gives; a new execution then counts the file once."""
    stack = Stack(agent.ecs.meta.endpoint_url, "history", tmp_path, order_override="late-orders-history")
    (name,) = stack.trigger(stack.upload(write(tmp_path / "o.csv", [order("O1")]), "input/o.csv"))["started"]
    execution = stack.wait(name)
    assert execution["status"] == "FAILED"
    assert [c for c, _ in agent.commands] == ["validate"] + ["transform"] * 4
    (message,) = stack.messages("failure")
    ledger = DynamoLedger(stack.tables.ledger)
    (failed,) = ledger.runs(status="failed")
    assert failed.file == "o.csv" and failed.rows == 0 and failed.dates == ()
    assert failed.message.startswith("States.TaskFailed: ") and name in failed.message
    assert failed.message.split(" (execution")[0].removeprefix("States.TaskFailed: ") in message
    assert failed.batch_id and ledger.runs_of(failed.batch_id) == [failed]
    assert failed.started_at <= failed.finished_at

    create_tables(boto3.client("dynamodb"), TableNames("unused-l-history", "unused-c-history", "late-orders-history"))
    failed_arn = stack.machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    again = stack.sfn.start_execution(
        stateMachineArn=stack.machine_arn, input=stack.sfn.describe_execution(executionArn=failed_arn)["input"]
    )["executionArn"].rsplit(":", 1)[-1]
    assert stack.wait(again)["status"] == "SUCCEEDED", stack.messages("failure")
    assert [r.status for r in ledger.runs()] == ["failed", "accepted"]  # oldest first
    assert [r.status for r in ledger.runs_of(failed.batch_id)] == ["failed", "accepted"]


def test_a_file_over_the_copy_limit_is_archived_in_parts(agent: EcsAgent, tmp_path: Path) -> None:
    """The copy limit lowered to 1 MB and parts of 5 MB (S3's smallest but the last): a 12 MB file
    is counted by the ECS tasks, then archived by the copy function in 3 parts, the very bytes."""
    rows = [order(f"O{i}", f"C{i % 97}", "2025-07-06", "Books", f"P{i % 13}", "1", "9.99") for i in range(270_000)]
    path = write(tmp_path / "big.csv", rows)
    assert 10 << 20 < path.stat().st_size <= 15 << 20
    stack = Stack(agent.ecs.meta.endpoint_url, "copy", tmp_path, large_copy_bytes=1 << 20, copy_part_bytes=5 << 20)
    (name,) = stack.trigger(stack.upload(path, "input/big.csv"))["started"]
    assert stack.wait(name)["status"] == "SUCCEEDED", (stack.messages("failure"), moto_bridge.INVOCATIONS)
    assert moto_bridge.INVOCATIONS == [("orderpipe.task_lambda.copy_large_file", "ok")]
    archived = boto3.client("s3").get_object(Bucket=stack.bucket, Key="processed/big.csv")
    assert archived["ETag"].strip('"').endswith("-3")  # a multipart object of 3 parts
    assert archived["Body"].read() == path.read_bytes()
    assert stack.keys("input/") == []
    assert [d["total_orders"] for d in stack.kpis()[0]] == [270_000]
