"""The Lambda trigger with the checked-in S3 and EventBridge events, on moto's Step Functions."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest

from orderpipe import aws
from tests.conftest import REPO

EVENTS = REPO / "tests" / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_s3_notification_keys_are_url_decoded_and_filtered() -> None:
    items = aws.parse_event(load("s3_put.json"))
    assert [(i.bucket, i.key) for i in items] == [
        ("orderpipe-bucket", "input/orders July 2025+1.csv"),
        ("orderpipe-bucket", "input/second.csv"),
        ("orderpipe-bucket", "processed/old.csv"),
        ("orderpipe-bucket", "input/notes.txt"),
    ]
    assert items[1].version == "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"  # the version id wins over the ETag
    assert [i.size for i in items[:2]] == [1024, 2048]  # the state machine routes by it


def test_eventbridge_object_created_shape() -> None:
    (item,) = aws.parse_event(load("eventbridge_object_created.json"))
    assert (item.bucket, item.key, item.version) == (
        "orderpipe-bucket",
        "input/eventbridge orders.csv",
        "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
    )
    assert item.size == 5


def test_execution_names_are_valid_stable_and_distinct() -> None:
    a = aws.ObjectCreated("b", "input/orders July 2025+1.csv", "v1")
    name = aws.execution_name(a)
    assert name == aws.execution_name(a)
    assert name.startswith("orders-July-2025-1-") and len(name) <= 80
    assert all(c.isalnum() or c in "-_" for c in name)
    assert aws.execution_name(aws.ObjectCreated("b", a.key, "v2")) != name  # a new version is a new file
    assert len(aws.execution_name(aws.ObjectCreated("b", "input/" + "x" * 300 + ".csv", "v"))) <= 80


@pytest.fixture
def machine(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"trigger-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/states",
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    return arn


def test_handler_starts_one_execution_per_csv_under_input(machine: str) -> None:
    result = aws.handler(load("s3_put.json"))
    assert len(result["started"]) == 2
    assert result["ignored"] == ["processed/old.csv", "input/notes.txt"]
    executions = boto3.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    inputs = sorted(
        json.loads(boto3.client("stepfunctions").describe_execution(executionArn=e["executionArn"])["input"])["key"]
        for e in executions
    )
    assert inputs == ["input/orders July 2025+1.csv", "input/second.csv"]
    sizes = sorted(
        json.loads(boto3.client("stepfunctions").describe_execution(executionArn=e["executionArn"])["input"])["size"]
        for e in executions
    )
    assert sizes == [1024, 2048]


def test_a_redelivered_event_is_success_not_an_error(machine: str) -> None:
    event = load("eventbridge_object_created.json")
    first = aws.handler(event)
    again = aws.handler(event)
    assert len(first["started"]) == 1
    # Step Functions either refuses the second start of the name (ExecutionAlreadyExists) or,
    # for an identical input, returns the running execution: the name is reported once, in
    # one list or the other, never twice and never lost.
    assert sorted(again["started"] + again["already_exists"]) == first["started"]
    assert again["ignored"] == first["ignored"] == []
    executions = boto3.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    assert len(executions) == 1
    copy_source = json.loads(
        boto3.client("stepfunctions").describe_execution(executionArn=executions[0]["executionArn"])["input"]
    )["copy_source"]
    assert copy_source == "orderpipe-bucket/input/eventbridge%20orders.csv?versionId=IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"


def queued(messages: list[dict]) -> dict:
    """The event Lambda's SQS event source gives for these received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "eventSource": "aws:sqs",
            }
            for m in messages
        ]
    }


def test_from_the_queue_at_most_the_limit_of_executions_run(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three may run: of five queued files, three start and two go back to the queue (failures of
    the batch, delayed by a random visibility timeout); once those three ended, the two start.
    S3's test event starts nothing and is not retried."""
    sfn, sqs = boto3.client("stepfunctions"), boto3.client("sqs")
    waiting = {"StartAt": "Work", "States": {"Work": {"Type": "Wait", "Seconds": 600, "End": True}}}
    machine = sfn.create_state_machine(
        name=f"capped-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(waiting),
        roleArn="arn:aws:iam::123456789012:role/s",
    )["stateMachineArn"]
    queue = sqs.create_queue(QueueName=f"uploads-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    monkeypatch.setenv("STATE_MACHINE_ARN", machine)
    monkeypatch.setenv("MAX_RUNNING_EXECUTIONS", "3")
    monkeypatch.setenv("UPLOAD_QUEUE_URL", queue)
    template = load("s3_put.json")
    for n in range(5):
        record = dict(
            template["Records"][1],
            s3={**template["Records"][1]["s3"], "object": {"key": f"input/f{n}.csv", "size": 10, "eTag": f"e{n}"}},
        )
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [record]}))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}))
    messages = []
    while len(messages) < 6:
        messages += sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=1).get("Messages", [])
    messages.sort(
        key=lambda m: json.loads(m["Body"]).get("Records", [{"s3": {"object": {"key": "~"}}}])[0]["s3"]["object"]["key"]
    )
    result = aws.handler(queued(messages))
    assert len(result["started"]) == 3
    deferred = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert deferred == {m["MessageId"] for m in messages[3:5]}  # not the test event
    assert aws.running_executions(sfn, machine, 10) == 3
    time.sleep(1.5)  # past the 1 s the messages were received for: only the two waiting ones stay away
    back = {m["MessageId"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])}
    assert back and not back & deferred

    again = aws.handler(queued(messages[3:5]))  # still three running: both wait again
    assert again["started"] == [] and len(again["batchItemFailures"]) == 2
    for execution in sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]:
        sfn.stop_execution(executionArn=execution["executionArn"])
    assert aws.running_executions(sfn, machine, 10) == 0
    last = aws.handler(queued(messages[3:5]))
    assert len(last["started"]) == 2 and last["batchItemFailures"] == []
    for execution in sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]:
        sfn.stop_execution(executionArn=execution["executionArn"])


def test_from_the_queue_without_a_limit_every_file_starts_and_an_unreadable_message_is_dropped(
    machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No limit: a message of two files starts both. A body that is not S3's is logged and
    acknowledged (delivered again, it would never start anything); a start that fails (here: the
    state machine is gone) leaves its message for a later delivery."""
    monkeypatch.delenv("MAX_RUNNING_EXECUTIONS", raising=False)
    two = json.dumps(load("s3_put.json"))  # two CSV files under input/, two ignored keys
    event = {
        "Records": [
            {"messageId": "m1", "receiptHandle": "r1", "body": two, "eventSource": "aws:sqs"},
            {"messageId": "m2", "receiptHandle": "r2", "body": "not json", "eventSource": "aws:sqs"},
        ]
    }
    result = aws.handler(event)
    assert len(result["started"]) == 2 and result["batchItemFailures"] == []
    boto3.client("stepfunctions").delete_state_machine(stateMachineArn=machine)
    gone = aws.handler(
        {"Records": [dict(event["Records"][0], body=json.dumps(load("eventbridge_object_created.json")))]}
    )
    assert gone["batchItemFailures"] == [{"itemIdentifier": "m1"}]
