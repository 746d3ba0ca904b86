"""The AWS deployment: S3 → Lambda → Step Functions → ECS Fargate → DynamoDB, SNS.

The state machine is `step_functions/MainStepFn.json`, read as it is and given its `${...}`
substitutions here. ECS task definitions are registered per execution by the state machine
(from the image asset built here) on a cluster it creates and deletes; a scheduled sweeper
deletes what an execution that timed out or was stopped left behind.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, Node

from infra.alarms import add_alarms
from infra.cdk_helpers import acknowledge, acknowledge_cdk_helpers, log_helpers_with_retention
from infra.data_stack import BY_DATE, RESULT_PREFIX, OrderpipeDataStack
from infra.image_functions import image_function
from infra.kpi_api import API_AUTH, add_kpi_api

ROOT = Path(__file__).resolve().parents[1]
LOG_GROUP = "/ecs/ephemeral-pipeline"
REMOVAL = ("retain", "destroy")
# The Lambda package: the handler, the sweeper and their logging; nothing of the core, so a core
# change does not redeploy the trigger.
LAMBDA_FILES = ("orderpipe/__init__.py", "orderpipe/aws.py", "orderpipe/logs.py")
#: What the tasks do to the tables: exactly the calls of adapters/dynamodb*.py (a test reads them).
TASK_TABLE_ACTIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchWriteItem")
#: The small-file function (the container image run by Lambda): its handler, memory, time and disk.
#: The state machine's own timeout for the invocation (MainStepFn.json) is 30 s longer.
SMALL_FILE_HANDLER = "orderpipe.task_lambda.handler"
SMALL_FILE_MEMORY_MB = 3008
SMALL_FILE_TIMEOUT_SECONDS = 300
SMALL_FILE_STORAGE_MB = 2048
#: A queued upload is delivered this often (SQS's most) before it goes to the dead-letter queue:
#: at the 30-120 s the trigger draws for each wait, about 21 hours on average and 8 at least.
UPLOAD_RECEIVES = 1000
#: S3 copies at most this much in one CopyObject: a larger file is archived by the copy function.
LARGE_COPY_BYTES = 5 << 30
COPY_HANDLER = "orderpipe.task_lambda.copy_large_file"


def python_version() -> str:
    """The one Python version (container, Lambda functions, development): the Dockerfile's base image."""
    found = re.search(r"^ARG PYTHON_IMAGE=python:(\d+\.\d+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    if found is None:
        raise ValueError("Dockerfile: no `ARG PYTHON_IMAGE=python:X.Y-…` line")
    return found.group(1)


@dataclass(frozen=True)
class StackSettings:
    removal: str = "retain"  # what `make destroy` does with the tables and the bucket: retain | destroy
    table_prefix: str = ""  # physical table names are <prefix><name>; empty: "Orderpipe-" (the processing stack's name)
    ledger_table: str = "orderpipe-ledger"
    category_table: str = "CategoryKPIs"
    order_table: str = "OrderKPIs"
    input_prefix: str = "input/"
    processed_prefix: str = "processed/"
    rejected_prefix: str = "rejected/"
    warehouse_prefix: str = "warehouse/orders/"
    categories: str = "Electronics,Books,Clothing,Home,Toys,Sports,Beauty,Grocery"
    input: str = "{}"  # the [input] table (shape of the files) as a JSON object, for the containers
    alert_email: str = ""
    api_auth: str = "cognito"  # who may call the KPI API: cognito (people, signed in) | iam (signed requests)
    api_rate_limit: str = "20"  # requests per second, steady, for the whole stage
    api_burst_limit: str = "40"
    # Files up to this many bytes are validated and counted by one Lambda invocation; 0: every
    # file by the ECS tasks (see docs/aws.md, "Choosing the small-file limit").
    small_file_bytes: str = "67108864"
    # At most this many files are processed at once (executions running); a burst waits in the
    # upload queue. Size it from your quotas (docs/aws.md, "Bursts").
    max_running_files: str = "10"

    @classmethod
    def from_context(cls, node: Node) -> StackSettings:
        values = {}
        for name in cls.__dataclass_fields__:
            value = node.try_get_context(name)
            if value is not None:  # `input` may be given as an object in cdk.json
                values[name] = json.dumps(value) if isinstance(value, dict) else str(value)
        settings = cls(**values)
        if settings.removal not in REMOVAL:
            raise ValueError(f"context removal={settings.removal!r}: choose one of {', '.join(REMOVAL)}")
        if settings.api_auth not in API_AUTH:
            raise ValueError(f"context api_auth={settings.api_auth!r}: choose one of {', '.join(API_AUTH)}")
        for name in ("api_rate_limit", "api_burst_limit", "small_file_bytes", "max_running_files"):
            # Digits without a leading 0: the state machine reads them as JSON numbers.
            if not re.fullmatch(r"0|[1-9][0-9]*", getattr(settings, name)):
                raise ValueError(f"context {name}={getattr(settings, name)!r}: give a whole number")
        return settings


class OrderpipeStack(cdk.Stack):
    """Everything that processes and serves the data of `data` (another stack): `make destroy`
    removes this stack only."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        data: OrderpipeDataStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        s = settings
        runtime = lambda_.Runtime(f"python{python_version()}", lambda_.RuntimeFamily.PYTHON)

        # -- storage: the data stack's, imported ------------------------------------------
        bucket = s3.Bucket.from_bucket_attributes(
            self,
            "Bucket",
            bucket_arn=cdk.Fn.import_value(data.bucket_arn_export),
            bucket_name=cdk.Fn.import_value(data.bucket_name_export),
        )
        # The tables by their names (fixed strings): their ARNs are built here, not exported by the
        # data stack, so no change of this stack ever has to change an export in use.
        ledger, category, order = (
            ddb.Table.from_table_name(self, f"{kind}Table", name)
            for kind, name in zip(("Ledger", "Category", "Order"), data.table_names, strict=True)
        )
        self.add_dependency(data)

        # -- notifications -----------------------------------------------------------------
        # A customer-managed key: the AWS-managed alias/aws/sns key's policy cannot let CloudWatch
        # alarms publish, so alarms to a topic encrypted with it deliver nothing.
        topic_key = kms.Key(
            self,
            "TopicKey",
            description="orderpipe SNS topics: publishers are the state machine and CloudWatch alarms",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToTheTopics",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        success = sns.Topic(
            self, "SuccessTopic", display_name="orderpipe success", master_key=topic_key, enforce_ssl=True
        )
        failure = sns.Topic(
            self, "FailureTopic", display_name="orderpipe failure", master_key=topic_key, enforce_ssl=True
        )
        if s.alert_email:
            failure.add_subscription(subscriptions.EmailSubscription(s.alert_email))
            success.add_subscription(subscriptions.EmailSubscription(s.alert_email))

        # -- network: public subnets, no NAT gateway; tasks get a public IP, no inbound ------
        flow_logs = logs.LogGroup(
            self, "FlowLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
            flow_logs={
                "rejects": ec2.FlowLogOptions(
                    traffic_type=ec2.FlowLogTrafficType.REJECT,
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                )
            },
        )
        tasks_sg = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=vpc,
            allow_all_outbound=True,
            description="orderpipe ECS tasks: no inbound traffic",
        )

        # -- the container ---------------------------------------------------------------------
        image = ecr_assets.DockerImageAsset(
            self, "Image", directory=str(ROOT), platform=ecr_assets.Platform.LINUX_AMD64
        )
        task_logs = logs.LogGroup(
            self,
            "TaskLogs",
            log_group_name=LOG_GROUP,
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        execution_role = iam.Role(self, "TaskExecutionRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
        image.repository.grant_pull(execution_role)
        task_logs.grant_write(execution_role)
        task_role = iam.Role(self, "TaskRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
        self._grant_tasks(task_role, bucket, s)
        # The calls the DynamoDB adapters make (a transaction needs each of its items' actions),
        # not grant_read_write_data's Scan, BatchGetItem, DescribeTable and stream reads.
        tables = [ledger, category, order]
        table_calls = iam.PolicyStatement(
            actions=[f"dynamodb:{action}" for action in TASK_TABLE_ACTIONS],
            resources=[
                *(t.table_arn for t in tables),
                *(f"{t.table_arn}/index/{BY_DATE}" for t in tables[1:]),
            ],
        )
        task_role.add_to_policy(table_calls)

        # -- the small-file function: the same image, both steps in one invocation ------------------
        small_file_role = iam.Role(self, "SmallFileRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self._grant_tasks(small_file_role, bucket, s)
        small_file_role.add_to_policy(table_calls)
        small_files = image_function(
            self,
            "SmallFile",
            image=image,
            handler=SMALL_FILE_HANDLER,
            role=small_file_role,
            memory_mb=SMALL_FILE_MEMORY_MB,
            timeout=cdk.Duration.seconds(SMALL_FILE_TIMEOUT_SECONDS),
            storage_mb=SMALL_FILE_STORAGE_MB,
            environment={
                "ORDERPIPE_BACKEND": "aws",
                "ORDERPIPE_AWS_LEDGER_TABLE": ledger.table_name,
                "ORDERPIPE_AWS_CATEGORY_TABLE": category.table_name,
                "ORDERPIPE_AWS_ORDER_TABLE": order.table_name,
                "ORDERPIPE_CATEGORIES": s.categories,
                "ORDERPIPE_PREFIXES_INPUT": s.input_prefix,
                "ORDERPIPE_PREFIXES_PROCESSED": s.processed_prefix,
                "ORDERPIPE_PREFIXES_REJECTED": s.rejected_prefix,
                "ORDERPIPE_PREFIXES_WAREHOUSE": s.warehouse_prefix,
                "ORDERPIPE_INPUT": s.input,
                "ORDERPIPE_HOME": "/tmp/orderpipe",
            },
        )

        # -- the copy function: archives a file over S3's limit of one copy, in parts -------------------
        copy_role = iam.Role(self, "CopyRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        for actions_, prefixes in (
            (["s3:GetObject", "s3:GetObjectVersion"], [s.input_prefix]),
            (["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"], [s.processed_prefix, s.rejected_prefix]),
        ):
            copy_role.add_to_policy(
                iam.PolicyStatement(actions=actions_, resources=[bucket.arn_for_objects(f"{p}*") for p in prefixes])
            )
        copier = image_function(
            self,
            "Copy",
            image=image,
            handler=COPY_HANDLER,
            role=copy_role,
            memory_mb=1024,
            timeout=cdk.Duration.minutes(15),  # the state's own timeout (MainStepFn.json) is 30 s longer
        )

        # -- the state machine --------------------------------------------------------------------
        machine_logs = logs.LogGroup(
            self,
            "StateMachineLogs",
            # /aws/vendedlogs/: Step Functions then needs no log-group resource policy (its size is limited).
            log_group_name=f"/aws/vendedlogs/states/{self.stack_name}-MainStepFn",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        machine = sfn.StateMachine(
            self,
            "MainStepFn",
            definition_body=sfn.DefinitionBody.from_file(str(ROOT / "step_functions" / "MainStepFn.json")),
            definition_substitutions={
                "Partition": self.partition,
                "EphemeralPrefix": self.ephemeral_prefix,
                "ImageUri": image.image_uri,
                "ExecutionRoleArn": execution_role.role_arn,
                "TaskRoleArn": task_role.role_arn,
                "LogGroupName": task_logs.log_group_name,
                "AwsRegion": self.region,
                "SubnetIds": cdk.Fn.join(",", [n.subnet_id for n in vpc.public_subnets]),
                "SecurityGroupId": tasks_sg.security_group_id,
                "TaskCpu": "1024",
                "TaskMemory": "4096",
                "ContainerMemory": "4096",
                "LedgerTable": ledger.table_name,
                "CategoryTable": category.table_name,
                "OrderTable": order.table_name,
                "Categories": s.categories,
                # Substituted inside a JSON string of the definition: escaped as one.
                "InputShape": json.dumps(s.input)[1:-1],
                "InputPrefix": s.input_prefix,
                "ProcessedPrefix": s.processed_prefix,
                "RejectedPrefix": s.rejected_prefix,
                "WarehousePrefix": s.warehouse_prefix,
                "ResultPrefix": RESULT_PREFIX,
                "SuccessTopicArn": success.topic_arn,
                "FailureTopicArn": failure.topic_arn,
                "SmallFileBytes": s.small_file_bytes,
                "SmallFileFunctionArn": small_files.function_arn,
                "LargeCopyBytes": str(LARGE_COPY_BYTES),
                "CopyFunctionArn": copier.function_arn,
            },
            # Execution data: the failure metric filter reads the error name of ExecutionFailed events.
            logs=sfn.LogOptions(destination=machine_logs, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        self._grant_state_machine(machine, bucket, s, execution_role, task_role, success, failure)
        # An infrastructure failure goes into the batch history: two run items, nothing else.
        machine.add_to_role_policy(iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[ledger.table_arn]))
        # The function itself (the state machine invokes it unqualified), not its versions too.
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[small_files.function_arn, copier.function_arn]
            )
        )

        # -- the trigger and the sweeper: one small package ------------------------------------------
        code = lambda_.Code.from_asset(
            str(ROOT / "src"),
            exclude=["*", "!orderpipe", "orderpipe/*", *(f"!{name}" for name in LAMBDA_FILES)],
        )
        dead_letters = sqs.Queue(
            self,
            "TriggerDeadLetters",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        # Uploads wait here, so that a burst never runs more than max_running_files executions at
        # once: the trigger starts what the limit allows and leaves the rest in the queue.
        uploads = sqs.Queue(
            self,
            "Uploads",
            retention_period=cdk.Duration.days(14),
            visibility_timeout=cdk.Duration.minutes(2),  # ≥ the trigger's timeout, as Lambda requires
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters, max_receive_count=UPLOAD_RECEIVES),
        )
        trigger = lambda_.Function(
            self,
            "Trigger",
            runtime=runtime,
            handler="orderpipe.aws.handler",
            code=code,
            timeout=cdk.Duration.seconds(30),
            environment={
                "STATE_MACHINE_ARN": machine.state_machine_arn,
                "ORDERPIPE_PREFIXES_INPUT": s.input_prefix,
                "MAX_RUNNING_EXECUTIONS": s.max_running_files,
                "UPLOAD_QUEUE_URL": uploads.queue_url,
            },
            log_group=logs.LogGroup(
                self, "TriggerLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY
            ),
        )
        trigger.add_event_source(
            sources.SqsEventSource(
                uploads,
                batch_size=10,
                max_concurrency=2,  # the least Lambda allows: two triggers count the running executions
                report_batch_item_failures=True,
            )
        )
        machine.grant_start_execution(trigger)
        trigger.add_to_role_policy(
            iam.PolicyStatement(actions=["states:ListExecutions"], resources=[machine.state_machine_arn])
        )
        # The notification is this stack's (on the data stack's bucket, which it imports): removed
        # with this stack, and the data stack never refers to the queue. S3 suffix filters are
        # case-sensitive; the handler accepts any case of .csv.
        for suffix in (".csv", ".CSV"):
            bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3n.SqsDestination(uploads),
                s3.NotificationKeyFilter(prefix=s.input_prefix, suffix=suffix),
            )
        sweeper = lambda_.Function(
            self,
            "Sweeper",
            runtime=runtime,
            handler="orderpipe.aws.sweep",
            code=code,
            timeout=cdk.Duration.minutes(5),
            environment={
                "STATE_MACHINE_ARN": machine.state_machine_arn,
                "ORDERPIPE_EPHEMERAL_PREFIX": self.ephemeral_prefix,
            },
            log_group=logs.LogGroup(
                self, "SweeperLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY
            ),
        )
        self._grant_sweeper(sweeper, machine)
        events.Rule(
            self,
            "SweepSchedule",
            description="Delete clusters and task definitions left by executions that ended without cleanup.",
            schedule=events.Schedule.rate(cdk.Duration.hours(1)),
            targets=[targets.LambdaFunction(sweeper, retry_attempts=2)],
        )

        api = add_kpi_api(
            self,
            auth=s.api_auth,
            rate_limit=int(s.api_rate_limit),
            burst_limit=int(s.api_burst_limit),
            categories=s.categories,
            runtime=runtime,
            bucket=bucket,
            tables=(ledger, category, order),
        )

        add_alarms(
            self,
            failure=failure,
            machine=machine,
            machine_logs=machine_logs,
            dead_letters=dead_letters,
            sweeper=sweeper,
        )

        log_helpers_with_retention(self)
        for name, value in {
            "StateMachineArn": machine.state_machine_arn,
            "SuccessTopicArn": success.topic_arn,
            "FailureTopicArn": failure.topic_arn,
            "DeadLetterQueueUrl": dead_letters.queue_url,
            "ApiUrl": api.url,
        }.items():
            cdk.CfnOutput(self, name, value=value)
        self._acknowledge_findings(
            bucket=bucket,
            bucket_arn=data.bucket_arn_export,
            s=s,
            execution_role=execution_role,
            task_role=task_role,
            small_file_role=small_file_role,
            copy_role=copy_role,
            machine=machine,
            functions=[api.function, trigger, sweeper],
            dead_letters=dead_letters,
        )

    @property
    def ephemeral_prefix(self) -> str:
        """What the names of the clusters and task definitions the state machine makes per
        execution start with: the stack's name and `_`, which no stack name holds, so a policy
        on `<stack>_*` never reaches another stack's (`Orderpipe-Staging_…` for `Orderpipe_*`)."""
        return f"{self.stack_name}_"

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def _grant_tasks(self, task_role: iam.Role, bucket: s3.IBucket, s: StackSettings) -> None:
        """Each object action on the prefixes the tasks (or the small-file function, which does
        both tasks' work) use, nothing else: the validator reads its
        version of the input, looks at archive names under processed/ and rejected/, writes its
        report under rejected/ and its verdict under results/; the transformer writes, reads back
        and, when it compacts a date, deletes facts under the warehouse prefix. No task deletes
        anything else (the state machine archives and deletes the inputs)."""

        def objects(*prefixes: str) -> list[str]:
            return [bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]

        statements = [
            (["s3:GetObject", "s3:GetObjectVersion"], objects(s.input_prefix)),
            (["s3:GetObject"], objects(s.processed_prefix, s.rejected_prefix, s.warehouse_prefix)),
            (["s3:PutObject"], objects(s.rejected_prefix, s.warehouse_prefix, RESULT_PREFIX)),
            (["s3:AbortMultipartUpload"], objects(s.warehouse_prefix)),  # facts over 5 GB go up in parts
            # Compaction removes the facts files it merged (kept 30 days as old versions).
            (["s3:DeleteObject"], objects(s.warehouse_prefix)),
            # Without ListBucket, HEAD of a missing key answers 403, not 404: "is this name free?"
            (["s3:ListBucket"], [bucket.bucket_arn]),
        ]
        for actions_, resources in statements:
            task_role.add_to_policy(iam.PolicyStatement(actions=actions_, resources=resources))

    def _grant_sweeper(self, sweeper: lambda_.Function, machine: sfn.StateMachine) -> None:
        cluster_arn = self._arn("ecs", f"cluster/{self.ephemeral_prefix}*")
        for statement in (
            iam.PolicyStatement(
                # List calls and task-definition calls accept no resource ARN.
                actions=[
                    "ecs:ListClusters",
                    "ecs:ListTaskDefinitionFamilies",
                    "ecs:ListTaskDefinitions",
                    "ecs:DeregisterTaskDefinition",
                    "ecs:DeleteTaskDefinitions",
                ],
                resources=["*"],
            ),
            iam.PolicyStatement(
                actions=["ecs:ListTasks"], resources=["*"], conditions={"ArnLike": {"ecs:cluster": cluster_arn}}
            ),
            iam.PolicyStatement(actions=["ecs:DeleteCluster"], resources=[cluster_arn]),
            iam.PolicyStatement(
                actions=["ecs:StopTask"], resources=[self._arn("ecs", f"task/{self.ephemeral_prefix}*/*")]
            ),
            iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[self._arn("states", f"execution:{machine.state_machine_name}:*")],
            ),
        ):
            sweeper.add_to_role_policy(statement)

    def _grant_state_machine(
        self,
        machine: sfn.StateMachine,
        bucket: s3.IBucket,
        s: StackSettings,
        execution_role: iam.Role,
        task_role: iam.Role,
        success: sns.Topic,
        failure: sns.Topic,
    ) -> None:
        """Least privilege for the states of MainStepFn.json."""
        cluster_arn = self._arn("ecs", f"cluster/{self.ephemeral_prefix}*")
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:CreateCluster"],
                resources=["*"],  # CreateCluster does not support resource ARNs
            )
        )
        # In an account that never used ECS, CreateCluster creates ECS's service-linked role; without
        # this permission it cannot, and every RunTask then fails ("Unable to assume the service
        # linked role"). Scoped to that one role of that one service.
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    f"arn:{self.partition}:iam::{self.account}:role/aws-service-role/ecs.amazonaws.com/"
                    "AWSServiceRoleForECS"
                ],
                conditions={"StringEquals": {"iam:AWSServiceName": "ecs.amazonaws.com"}},
            )
        )
        machine.add_to_role_policy(iam.PolicyStatement(actions=["ecs:DeleteCluster"], resources=[cluster_arn]))
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition", "ecs:DeleteTaskDefinitions"],
                resources=["*"],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[self._arn("ecs", f"task-definition/{self.ephemeral_prefix}*")],
                conditions={"ArnLike": {"ecs:cluster": cluster_arn}},
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:StopTask", "ecs:DescribeTasks"],
                resources=[self._arn("ecs", f"task/{self.ephemeral_prefix}*/*")],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[self._arn("events", "rule/StepFunctionsGetEventsForECSTaskRule")],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[execution_role.role_arn, task_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[bucket.arn_for_objects(f"{RESULT_PREFIX}*"), bucket.arn_for_objects(f"{s.input_prefix}*")],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[
                    bucket.arn_for_objects(f"{s.processed_prefix}*"),
                    bucket.arn_for_objects(f"{s.rejected_prefix}*"),
                ],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[bucket.arn_for_objects(f"{s.input_prefix}*")],
            )
        )
        success.grant_publish(machine)
        failure.grant_publish(machine)

    def _acknowledge_findings(
        self,
        *,
        bucket: s3.IBucket,
        bucket_arn: str,
        s: StackSettings,
        execution_role: iam.Role,
        task_role: iam.Role,
        small_file_role: iam.Role,
        copy_role: iam.Role,
        machine: sfn.StateMachine,
        functions: list[lambda_.Function],
        dead_letters: sqs.Queue,
    ) -> None:
        """cdk-nag AwsSolutions findings we accept: each on its own construct, each finding named
        (an IAM wildcard by the action or resource it allows), each with its reason."""

        ecs_arn = "arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>"
        basic_execution = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        ephemeral = (
            "Clusters, task definitions and tasks the state machine creates per execution, "
            f"all named {self.ephemeral_prefix}<execution> (this stack's own)."
        )

        acknowledge(
            execution_role, "AwsSolutions-IAM5[Resource::*]", "ecr:GetAuthorizationToken accepts no resource ARN."
        )
        for prefix in (s.input_prefix, s.processed_prefix, s.rejected_prefix, s.warehouse_prefix, RESULT_PREFIX):
            for role in (task_role, small_file_role):
                acknowledge(
                    role,
                    f"AwsSolutions-IAM5[Resource::{bucket_arn}/{prefix}*]",
                    "The objects under one prefix the tasks use (see _grant_tasks), in this bucket only.",
                )

        for prefix in (s.input_prefix, s.processed_prefix, s.rejected_prefix):
            acknowledge(
                copy_role,
                f"AwsSolutions-IAM5[Resource::{bucket_arn}/{prefix}*]",
                "The copy function reads the input and writes the archive and the quarantine, in this bucket only.",
            )
        acknowledge(
            machine,
            "AwsSolutions-IAM5[Resource::*]",
            "ecs:CreateCluster, ecs:RegisterTaskDefinition/DeregisterTaskDefinition/DeleteTaskDefinitions, "
            "log delivery and X-Ray accept no resource ARN.",
        )
        for kind, rest in (("cluster", ""), ("task-definition", ""), ("task", "/*")):
            acknowledge(
                machine, f"AwsSolutions-IAM5[Resource::{ecs_arn}:{kind}/{self.ephemeral_prefix}*{rest}]", ephemeral
            )
        for prefix in (RESULT_PREFIX, s.input_prefix, s.processed_prefix, s.rejected_prefix):
            acknowledge(
                machine,
                f"AwsSolutions-IAM5[Resource::{bucket_arn}/{prefix}*]",
                "The state machine reads verdicts, archives, quarantines and deletes objects under its own prefixes.",
            )

        acknowledge(
            machine,
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "Publishing to the topics encrypted with the stack's topic key, that key only.",
        )
        sweeper = functions[-1]
        for function in functions:
            acknowledge(function, f"AwsSolutions-IAM4[{basic_execution}]", "The function only writes its own logs.")
            acknowledge(
                function,
                "AwsSolutions-L1",
                f"The project's one Python version ({python_version()}, the Dockerfile's base image), not the newest.",
            )
        acknowledge(
            sweeper,
            "AwsSolutions-IAM5[Resource::*]",
            "ecs:List*, DeregisterTaskDefinition and DeleteTaskDefinitions accept no resource ARN; "
            f"ListTasks is limited to {self.ephemeral_prefix}* clusters by condition.",
        )
        for kind, rest in (("cluster", ""), ("task", "/*")):
            acknowledge(
                sweeper, f"AwsSolutions-IAM5[Resource::{ecs_arn}:{kind}/{self.ephemeral_prefix}*{rest}]", ephemeral
            )
        acknowledge(
            sweeper,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<{self.get_logical_id(machine.node.default_child)}.Name>:*]",  # type: ignore[arg-type]
            "The status of this state machine's executions only.",
        )
        acknowledge(dead_letters, "AwsSolutions-SQS3", "This queue is the trigger's dead-letter queue.")

        acknowledge_cdk_helpers(self)
