"""The AWS deployment (SPEC §5): S3 → Lambda → Step Functions → ECS Fargate → DynamoDB, SNS.

The state machine is `step_functions/MainStepFn.json`, read as it is and given its `${...}`
substitutions here. ECS task definitions are registered per execution by the state machine
(from the image asset built here) on a cluster it creates and deletes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, Node

ROOT = Path(__file__).resolve().parents[1]
LOG_GROUP = "/ecs/ephemeral-pipeline"
RESULT_PREFIX = "results/"


@dataclass(frozen=True)
class StackSettings:
    ledger_table: str = "orderpipe-ledger"
    category_table: str = "CategoryKPIs"
    order_table: str = "OrderKPIs"
    input_prefix: str = "input/"
    processed_prefix: str = "processed/"
    rejected_prefix: str = "rejected/"
    warehouse_prefix: str = "warehouse/orders/"
    categories: str = "Electronics,Books,Clothing,Home,Toys,Sports,Beauty,Grocery"
    alert_email: str = ""

    @classmethod
    def from_context(cls, node: Node) -> StackSettings:
        values = {}
        for name in cls.__dataclass_fields__:
            value = node.try_get_context(name)
            if value is not None:
                values[name] = str(value)
        return cls(**values)


class OrderpipeStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        s = settings

        # -- storage ---------------------------------------------------------------------
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(90))],
        )
        bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="bucket/",
            lifecycle_rules=[s3.LifecycleRule(prefix=RESULT_PREFIX, expiration=cdk.Duration.days(30))],
        )
        pitr = ddb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True)
        by_date = {
            "index_name": "by_date",
            "partition_key": ddb.Attribute(name="kpi_all", type=ddb.AttributeType.STRING),
            "sort_key": ddb.Attribute(name="order_date", type=ddb.AttributeType.STRING),
        }
        ledger = ddb.Table(
            self,
            "Ledger",
            table_name=s.ledger_table,
            billing_mode=ddb.BillingMode.PAY_PER_REQUEST,
            partition_key=ddb.Attribute(name="pk", type=ddb.AttributeType.STRING),
            sort_key=ddb.Attribute(name="sk", type=ddb.AttributeType.STRING),
            point_in_time_recovery_specification=pitr,
        )
        category = ddb.Table(
            self,
            "CategoryKPIs",
            table_name=s.category_table,
            billing_mode=ddb.BillingMode.PAY_PER_REQUEST,
            partition_key=ddb.Attribute(name="category", type=ddb.AttributeType.STRING),
            sort_key=ddb.Attribute(name="order_date", type=ddb.AttributeType.STRING),
            point_in_time_recovery_specification=pitr,
        )
        order = ddb.Table(
            self,
            "OrderKPIs",
            table_name=s.order_table,
            billing_mode=ddb.BillingMode.PAY_PER_REQUEST,
            partition_key=ddb.Attribute(name="order_date", type=ddb.AttributeType.STRING),
            point_in_time_recovery_specification=pitr,
        )
        for table in (category, order):
            table.add_global_secondary_index(**by_date)

        # -- notifications -----------------------------------------------------------------
        sns_key = cdk.aws_kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns")
        success = sns.Topic(
            self, "SuccessTopic", display_name="orderpipe success", master_key=sns_key, enforce_ssl=True
        )
        failure = sns.Topic(
            self, "FailureTopic", display_name="orderpipe failure", master_key=sns_key, enforce_ssl=True
        )
        if s.alert_email:
            failure.add_subscription(subscriptions.EmailSubscription(s.alert_email))
            success.add_subscription(subscriptions.EmailSubscription(s.alert_email))

        # -- network: public subnets, no NAT gateway; tasks get a public IP, no inbound ------
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
            flow_logs={"rejects": ec2.FlowLogOptions(traffic_type=ec2.FlowLogTrafficType.REJECT)},
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
        bucket.grant_read_write(task_role)
        for table in (ledger, category, order):
            table.grant_read_write_data(task_role)

        # -- the state machine --------------------------------------------------------------------
        machine_logs = logs.LogGroup(
            self, "StateMachineLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        machine = sfn.StateMachine(
            self,
            "MainStepFn",
            definition_body=sfn.DefinitionBody.from_file(str(ROOT / "step_functions" / "MainStepFn.json")),
            definition_substitutions={
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
                "InputPrefix": s.input_prefix,
                "ProcessedPrefix": s.processed_prefix,
                "RejectedPrefix": s.rejected_prefix,
                "WarehousePrefix": s.warehouse_prefix,
                "ResultPrefix": RESULT_PREFIX,
                "SuccessTopicArn": success.topic_arn,
                "FailureTopicArn": failure.topic_arn,
            },
            logs=sfn.LogOptions(destination=machine_logs, level=sfn.LogLevel.ALL),
            tracing_enabled=True,
            timeout=cdk.Duration.hours(3),
        )
        self._grant_state_machine(machine, bucket, s, execution_role, task_role, success, failure)

        # -- the trigger ------------------------------------------------------------------------------
        dead_letters = sqs.Queue(
            self,
            "TriggerDeadLetters",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        trigger = lambda_.Function(
            self,
            "Trigger",
            runtime=lambda_.Runtime.PYTHON_3_13,
            handler="orderpipe.aws.handler",
            code=lambda_.Code.from_asset(str(ROOT / "src"), exclude=["**/__pycache__", "*.egg-info"]),
            timeout=cdk.Duration.seconds(30),
            environment={"STATE_MACHINE_ARN": machine.state_machine_arn, "ORDERPIPE_PREFIXES_INPUT": s.input_prefix},
            dead_letter_queue=dead_letters,
            retry_attempts=2,
            log_group=logs.LogGroup(
                self, "TriggerLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY
            ),
        )
        machine.grant_start_execution(trigger)
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(trigger),
            s3.NotificationKeyFilter(prefix=s.input_prefix, suffix=".csv"),
        )

        # -- alarms ------------------------------------------------------------------------------------
        alarm_action = actions.SnsAction(failure)
        cloudwatch.Alarm(
            self,
            "FailedExecutions",
            metric=machine.metric_failed(period=cdk.Duration.minutes(5)),
            threshold=1,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description="An orderpipe execution failed (invalid data or infrastructure); see the failure topic.",
        ).add_alarm_action(alarm_action)
        cloudwatch.Alarm(
            self,
            "TriggerDeadLetterMessages",
            metric=dead_letters.metric_approximate_number_of_messages_visible(),
            threshold=1,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description="An S3 event could not start an execution; the event waits in the dead-letter queue.",
        ).add_alarm_action(alarm_action)

        for name, value in {
            "BucketName": bucket.bucket_name,
            "StateMachineArn": machine.state_machine_arn,
            "SuccessTopicArn": success.topic_arn,
            "FailureTopicArn": failure.topic_arn,
            "DeadLetterQueueUrl": dead_letters.queue_url,
        }.items():
            cdk.CfnOutput(self, name, value=value)
        self._acknowledge_findings(bucket, [category, order], s)

    def _grant_state_machine(
        self,
        machine: sfn.StateMachine,
        bucket: s3.Bucket,
        s: StackSettings,
        execution_role: iam.Role,
        task_role: iam.Role,
        success: sns.Topic,
        failure: sns.Topic,
    ) -> None:
        """Least privilege for the states of MainStepFn.json."""
        region, account = self.region, self.account
        cluster_arn = f"arn:aws:ecs:{region}:{account}:cluster/orderpipe-*"
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:CreateCluster"],
                resources=["*"],  # CreateCluster does not support resource ARNs
            )
        )
        machine.add_to_role_policy(iam.PolicyStatement(actions=["ecs:DeleteCluster"], resources=[cluster_arn]))
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition"],
                resources=["*"],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[f"arn:aws:ecs:{region}:{account}:task-definition/orderpipe-*"],
                conditions={"ArnLike": {"ecs:cluster": cluster_arn}},
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:StopTask", "ecs:DescribeTasks"],
                resources=[f"arn:aws:ecs:{region}:{account}:task/orderpipe-*/*"],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[f"arn:aws:events:{region}:{account}:rule/StepFunctionsGetEventsForECSTaskRule"],
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

    def _acknowledge_findings(self, bucket: s3.Bucket, tables: list[ddb.Table], s: StackSettings) -> None:
        """cdk-nag AwsSolutions findings we accept, each finding with its reason."""

        def arn(construct: Construct) -> str:
            return f"<{self.get_logical_id(construct.node.default_child)}.Arn>"  # type: ignore[arg-type]

        ecs_arn = "arn:aws:ecs:<AWS::Region>:<AWS::AccountId>"
        basic_execution = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        findings = {
            "AwsSolutions-IAM5[Resource::*]": "ecr:GetAuthorizationToken, ecs:CreateCluster, "
            "ecs:RegisterTaskDefinition/DeregisterTaskDefinition and X-Ray accept no resource ARN.",
            **{
                f"AwsSolutions-IAM5[Action::{action}]": "CDK's bucket.grant_read_write: object actions on this "
                "bucket only (the tasks read input/ and write warehouse/, rejected/ and results/)."
                for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*")
            },
            f"AwsSolutions-IAM5[Resource::{arn(bucket)}/*]": "The tasks' objects, in this bucket only.",
            **{
                f"AwsSolutions-IAM5[Resource::{arn(table)}/index/*]": "Queries on the table's own by_date index."
                for table in tables
            },
            **{
                f"AwsSolutions-IAM5[Resource::{ecs_arn}:{kind}/orderpipe-*{rest}]": "Clusters, task definitions and "
                "tasks the state machine creates per execution, all named orderpipe-<execution>."
                for kind, rest in (("cluster", ""), ("task-definition", ""), ("task", "/*"))
            },
            **{
                f"AwsSolutions-IAM5[Resource::{arn(bucket)}/{prefix}*]": "The state machine reads verdicts, "
                "archives, quarantines and deletes objects under its own prefixes only."
                for prefix in (RESULT_PREFIX, s.input_prefix, s.processed_prefix, s.rejected_prefix)
            },
            f"AwsSolutions-IAM4[Policy::{basic_execution}]": "The trigger's and CDK's bucket-notification "
            "helper's roles only write their own logs.",
            "AwsSolutions-SQS3": "This queue is the trigger's dead-letter queue.",
            "AwsSolutions-S1": "The access-log bucket does not log its own access (it would log into itself).",
            "AwsSolutions-L1": "CDK's own helper functions pin their runtime; the trigger uses Python 3.13.",
        }
        for finding, reason in findings.items():
            cdk.Validations.of(self).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason))
