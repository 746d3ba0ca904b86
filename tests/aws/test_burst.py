"""A burst on moto's server: 200 files uploaded at once reach the upload queue through the
bucket's notification; the trigger, fed as Lambda's SQS event source feeds it (10 messages a
batch, failures delivered again), never lets more than the limit of executions run, and every
file ends accepted or rejected, none failed, each order counted once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import boto3
import pytest

from orderpipe import aws
from tests.aws import moto_bridge
from tests.aws.emulated import EcsAgent, Stack
from tests.conftest import order, write

pytestmark = pytest.mark.slow
FILES = 200
LIMIT = 5


def test_a_burst_of_200_files_all_end_accepted_or_rejected_within_the_limit(
    agent: EcsAgent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = Stack(agent.ecs.meta.endpoint_url, "burst", tmp_path, small_file_bytes=1_000_000)
    s3, sqs, sfn = boto3.client("s3"), boto3.client("sqs"), stack.sfn
    queue = sqs.create_queue(QueueName="uploads-burst")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rules = [{"Name": "prefix", "Value": "input/"}, {"Name": "suffix", "Value": ".csv"}]
    s3.put_bucket_notification_configuration(
        Bucket=stack.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {"FilterRules": rules}}}
            ]
        },
    )
    monkeypatch.setenv("STATE_MACHINE_ARN", stack.machine_arn)
    monkeypatch.setenv("MAX_RUNNING_EXECUTIONS", str(LIMIT))
    monkeypatch.delenv("UPLOAD_QUEUE_URL", raising=False)  # test-time: back after 1 s, not 30-120 s
    invalid = set(range(0, FILES, 25))
    (tmp_path / "files").mkdir()
    for n in range(FILES):
        date = "2025-02-30" if n in invalid else f"2025-07-{1 + n % 28:02d}"
        path = write(tmp_path / "files" / f"f{n:03d}.csv", [order(f"O{n}-{k}", date=date) for k in range(2)])
        s3.put_object(Bucket=stack.bucket, Key=f"input/{path.name}", Body=path.read_bytes())

    most, stop = [0], threading.Event()

    def watch() -> None:  # the most executions seen running at once
        while not stop.is_set():
            running = sfn.list_executions(stateMachineArn=stack.machine_arn, statusFilter="RUNNING")["executions"]
            most[0] = max(most[0], len(running))
            stop.wait(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=1).get(
                "Messages", []
            )
            if not messages:
                pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=stack.machine_arn)
                started = sum(len(page["executions"]) for page in pages)  # 100 a page
                running = sfn.list_executions(stateMachineArn=stack.machine_arn, statusFilter="RUNNING")["executions"]
                if started == FILES and not running:
                    break
                time.sleep(0.5)
                continue
            event = {
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
            left = {f["itemIdentifier"] for f in aws.handler(event)["batchItemFailures"]}
            for m in messages:
                if m["MessageId"] not in left:
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    finally:
        stop.set()
        watcher.join(5)
    executions = [
        sfn.describe_execution(executionArn=e["executionArn"])
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=stack.machine_arn)
        for e in page["executions"]
    ]
    assert len(executions) == FILES
    outcomes = sorted({(e["status"], e.get("error", "")) for e in executions})
    failures = [m for m in stack.messages("failure") if m.startswith("failed")]
    assert outcomes == [("FAILED", "InvalidData"), ("SUCCEEDED", "")], (outcomes, failures)  # none failed
    assert sum(e["status"] == "FAILED" for e in executions) == len(invalid)
    assert 1 <= most[0] <= LIMIT
    daily, _ = stack.kpis()
    assert sum(d["total_orders"] for d in daily) == 2 * (FILES - len(invalid))
    assert len(stack.keys("processed/")) == FILES - len(invalid)
    assert stack.keys("input/") == []
    assert all(outcome == "ok" for _, outcome in moto_bridge.INVOCATIONS) and agent.commands == []
