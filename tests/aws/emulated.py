"""The emulated deployment the AWS end-to-end tests run on: the stack's resources created on
moto's server under the CDK stack's names, the state machine with its substitutions, and an
ECS agent that runs each task's container command as a local subprocess. See `moto_bridge.py`
for the moto 5.2.5 gaps bridged here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3

from orderpipe import aws
from orderpipe.adapters.dynamodb import TableNames, create_tables
from orderpipe.adapters.dynamodb_kpis import DynamoKpiStore
from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from tests.aws import moto_bridge
from tests.conftest import REPO, run_file

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
        self,
        url: str,
        suffix: str,
        tmp: Path,
        *,
        ledger_override: str | None = None,
        order_override: str | None = None,
        input_shape: str = "{}",
        small_file_bytes: int = 0,
        function_memory_mb: int = 2048,
        large_copy_bytes: int = 5 << 30,
        copy_part_bytes: int = 1 << 30,
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
        role = boto3.client("iam").create_role(
            RoleName=f"orderpipe-small-file-{suffix}",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        function = boto3.client("lambda").create_function(
            FunctionName=f"orderpipe-small-file-{suffix}",
            PackageType="Image",
            Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/orderpipe:test"},
            ImageConfig={"Command": ["orderpipe.task_lambda.handler"]},
            Role=role,
            MemorySize=function_memory_mb,
            Timeout=120,
            Environment={
                "Variables": {
                    "ORDERPIPE_BACKEND": "aws",
                    "ORDERPIPE_AWS_LEDGER_TABLE": ledger_override or self.tables.ledger,
                    "ORDERPIPE_AWS_CATEGORY_TABLE": self.tables.category,
                    "ORDERPIPE_AWS_ORDER_TABLE": order_override or self.tables.order,
                    "ORDERPIPE_CATEGORIES": CATEGORIES,
                    "ORDERPIPE_INPUT": input_shape,
                }
            },
        )["FunctionArn"]
        copier = boto3.client("lambda").create_function(
            FunctionName=f"orderpipe-copy-{suffix}",
            PackageType="Image",
            Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/orderpipe:test"},
            ImageConfig={"Command": ["orderpipe.task_lambda.copy_large_file"]},
            Role=role,
            MemorySize=1024,
            Timeout=120,
            Environment={"Variables": {"COPY_PART_BYTES": str(copy_part_bytes)}},
        )["FunctionArn"]
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
            "OrderTable": order_override or self.tables.order,
            "Categories": CATEGORIES,
            "InputShape": json.dumps(input_shape)[1:-1],  # inside a JSON string, as the stack escapes it
            "InputPrefix": "input/",
            "ProcessedPrefix": "processed/",
            "RejectedPrefix": "rejected/",
            "WarehousePrefix": "warehouse/orders/",
            "ResultPrefix": "results/",
            "SuccessTopicArn": self.topics["success"],
            "FailureTopicArn": self.topics["failure"],
            "SmallFileBytes": str(small_file_bytes),
            "SmallFileFunctionArn": function,
            "LargeCopyBytes": str(large_copy_bytes),
            "CopyFunctionArn": copier,
        }
        definition = (REPO / "step_functions" / "MainStepFn.json").read_text()
        for name, value in substitutions.items():
            definition = definition.replace("${" + name + "}", value)
        assert "${" not in definition
        # Test-time acceleration only: a retry waits 1 s instead of 10 or 30 s (same count and backoff).
        machine = json.loads(definition)
        for state in ("RunValidator", "RunTransformer", "ProcessSmallFile"):
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
        size = boto3.client("s3").head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        obj = {
            "key": quote_plus(key, safe="/"),
            "size": size,
            "eTag": response["ETag"].strip('"'),
            "sequencer": "0055AED6DCD90281E5",
        }
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


def local_kpis(files: list[Path], home: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    pipeline = open_pipeline(load_settings(home, environ={}))
    for path in files:
        run_file(pipeline, path)
    return pipeline.kpis.daily(None, None), pipeline.kpis.category(None, None, None)
