"""End to end on moto's server: S3 event → Lambda handler → Step Functions (MainStepFn.json
with its substitutions) → ECS tasks run by a small test agent as local subprocesses → S3,
DynamoDB, SNS. See `moto_bridge.py` for the moto 5.2.5 gaps bridged here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import httpx
import pytest

from orderpipe import aws
from orderpipe.adapters.dynamodb import TableNames, create_tables
from orderpipe.adapters.dynamodb_kpis import DynamoKpiStore
from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from tests.aws import moto_bridge
from tests.conftest import REPO, order, run_file, write

pytestmark = pytest.mark.slow
CATEGORIES = "Electronics,Books,Clothing,Home,Toys,Sports,Beauty,Grocery"


class EcsAgent:
    """Runs each RUNNING task's container command (with its environment overrides) as a local
    subprocess against the moto endpoint, then stops the task and records its exit code."""

    def __init__(self, extra_env: dict[str, str]) -> None:
        self.ecs = boto3.client("ecs")
        self.extra_env = extra_env
        self.seen: set[str] = set()
        self.commands: list[tuple[str, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            for cluster in self.ecs.list_clusters()["clusterArns"]:
                arns = self.ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
                for task in self.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []:
                    if task["taskArn"] not in self.seen:
                        self.seen.add(task["taskArn"])
                        self._run(cluster, task)
            self.stop.wait(0.2)

    def _run(self, cluster: str, task: dict[str, Any]) -> None:
        definition = self.ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
        command = definition["containerDefinitions"][0]["command"]
        overrides = task.get("overrides", {}).get("containerOverrides", [{}])[0].get("environment", [])
        env = {**os.environ, **{e["name"]: e["value"] for e in overrides}, **self.extra_env}
        result = subprocess.run(
            [sys.executable, "-m", "orderpipe", *command],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        moto_bridge.EXIT_CODES[task["taskArn"]] = result.returncode
        self.commands.append((command[-1], result.returncode))
        self.ecs.stop_task(cluster=cluster, task=task["taskArn"], reason=f"exited {result.returncode}")


class Stack:
    """The resources of the CDK stack, created with boto3 under the same names."""

    def __init__(
        self, url: str, suffix: str, tmp: Path, *, ledger_override: str | None = None, input_shape: str = "{}"
    ) -> None:
        self.bucket = f"orderpipe-{suffix}"
        self.tables = TableNames(f"orderpipe-ledger-{suffix}", f"CategoryKPIs-{suffix}", f"OrderKPIs-{suffix}")
        s3, sns, sqs, ec2 = (boto3.client(n) for n in ("s3", "sns", "sqs", "ec2"))
        s3.create_bucket(Bucket=self.bucket)
        s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})  # as deployed
        create_tables(boto3.client("dynamodb"), self.tables)
        self.topics, self.queues = {}, {}
        for kind in ("success", "failure"):
            topic = sns.create_topic(Name=f"orderpipe-{kind}-{suffix}")["TopicArn"]
            queue = sqs.create_queue(QueueName=f"orderpipe-{kind}-{suffix}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
            self.topics[kind], self.queues[kind] = topic, queue
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto's ENIs need it
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName=f"orderpipe-{suffix}", Description="tasks", VpcId=vpc)["GroupId"]
        boto3.client("logs").create_log_group(logGroupName=f"/ecs/ephemeral-pipeline-{suffix}")
        substitutions = {
            "Partition": "aws",
            "EphemeralPrefix": "Orderpipe_",
            "ImageUri": "orderpipe:test",
            "ExecutionRoleArn": "arn:aws:iam::123456789012:role/orderpipe-execution",
            "TaskRoleArn": "arn:aws:iam::123456789012:role/orderpipe-task",
            "LogGroupName": f"/ecs/ephemeral-pipeline-{suffix}",
            "AwsRegion": "us-east-1",
            "SubnetIds": subnet,
            "SecurityGroupId": group,
            "TaskCpu": "1024",
            "TaskMemory": "4096",
            "ContainerMemory": "4096",
            "LedgerTable": ledger_override or self.tables.ledger,
            "CategoryTable": self.tables.category,
            "OrderTable": self.tables.order,
            "Categories": CATEGORIES,
            "InputShape": json.dumps(input_shape)[1:-1],  # inside a JSON string, as the stack escapes it
            "InputPrefix": "input/",
            "ProcessedPrefix": "processed/",
            "RejectedPrefix": "rejected/",
            "WarehousePrefix": "warehouse/orders/",
            "ResultPrefix": "results/",
            "SuccessTopicArn": self.topics["success"],
            "FailureTopicArn": self.topics["failure"],
        }
        definition = (REPO / "step_functions" / "MainStepFn.json").read_text()
        for name, value in substitutions.items():
            definition = definition.replace("${" + name + "}", value)
        assert "${" not in definition
        # Test-time acceleration only: the ECS retry waits 1 s instead of 30 s (same count and backoff).
        machine = json.loads(definition)
        for state in ("RunValidator", "RunTransformer"):
            for retrier in machine["States"][state]["Retry"]:
                if retrier["MaxAttempts"] > 0:  # the first never retries: it has no interval
                    retrier["IntervalSeconds"] = 1
        self.sfn = boto3.client("stepfunctions")
        self.machine_arn = self.sfn.create_state_machine(
            name=f"orderpipe-{suffix}",
            definition=json.dumps(machine),
            roleArn="arn:aws:iam::123456789012:role/orderpipe-states",
        )["stateMachineArn"]

    def upload(self, path: Path, key: str) -> dict[str, Any]:
        """Put the object and build the S3 notification S3 would send (key URL-encoded)."""
        response = boto3.client("s3").put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
        return self.event("ObjectCreated:Put", key, response)

    def event(self, name: str, key: str, response: dict[str, Any]) -> dict[str, Any]:
        obj = {"key": quote_plus(key, safe="/"), "eTag": response["ETag"].strip('"'), "sequencer": "0055AED6DCD90281E5"}
        if response.get("VersionId"):  # a versioned bucket's events carry the version id
            obj["versionId"] = response["VersionId"]
        return {"Records": [{"eventName": name, "s3": {"bucket": {"name": self.bucket}, "object": obj}}]}

    def trigger(self, event: dict[str, Any]) -> dict[str, Any]:
        os.environ["STATE_MACHINE_ARN"] = self.machine_arn
        return aws.handler(event)

    def wait(self, name: str, timeout: float = 180) -> dict[str, Any]:
        arn = self.machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            execution = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                return execution
            time.sleep(0.5)
        raise AssertionError(f"execution {name} still running after {timeout} s")

    def keys(self, prefix: str) -> list[str]:
        listing = boto3.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return sorted(o["Key"] for o in listing)

    def messages(self, kind: str) -> list[str]:
        sqs = boto3.client("sqs")
        found = sqs.receive_message(QueueUrl=self.queues[kind], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"])["Message"] for m in found.get("Messages", [])]

    def kpis(self) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        store = DynamoKpiStore(self.tables)
        return store.daily(None, None), store.category(None, None, None)

    def assert_cleaned_up(self) -> None:
        ecs = boto3.client("ecs")
        clusters = (
            ecs.describe_clusters(clusters=ecs.list_clusters()["clusterArns"])["clusters"]
            if ecs.list_clusters()["clusterArns"]
            else []
        )
        assert [c["clusterName"] for c in clusters if c["status"] == "ACTIVE"] == []
        for status in ("ACTIVE", "INACTIVE"):  # deregistered definitions are deleted too
            assert ecs.list_task_definitions(status=status)["taskDefinitionArns"] == [], status


@pytest.fixture(scope="module")
def emulator(moto_server: str) -> Iterator[str]:
    httpx.post(f"{moto_server}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}})
    httpx.post(
        f"{moto_server}/moto-api/state-manager/set-transition",
        json={"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000}},
    )
    moto_bridge.apply()
    yield moto_server


@pytest.fixture
def agent(emulator: str, tmp_path: Path) -> Iterator[EcsAgent]:
    worker = EcsAgent({"ORDERPIPE_HOME": str(tmp_path / "container")})
    worker.thread.start()
    yield worker
    worker.stop.set()
    worker.thread.join(5)


def local_kpis(files: list[Path], home: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    pipeline = open_pipeline(load_settings(home, environ={}))
    for path in files:
        run_file(pipeline, path)
    return pipeline.kpis.daily(None, None), pipeline.kpis.category(None, None, None)


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
