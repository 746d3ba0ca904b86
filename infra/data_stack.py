"""The data of a deployment in a stack of its own: the bucket (files, archive, facts), its
access-log bucket and the three tables (ledger, category KPIs, order KPIs).

`make destroy` removes the processing stack only, so the data outlives it, and `make deploy`
afterwards finds yesterday's KPIs: the processing stack imports these resources, never owns
them. Nothing here refers to the processing stack (the bucket's notification to the trigger is
the processing stack's own, set on the imported bucket), so this stack never depends on it.
`make destroy-data` removes this stack too, after a confirmation; with `removal=retain` (the
default) the tables and buckets stay in the account even then.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.cdk_helpers import acknowledge_cdk_helpers, log_helpers_with_retention

__all__ = ["BY_DATE", "RESULT_PREFIX", "OrderpipeDataStack"]

RESULT_PREFIX = "results/"
#: The index of both KPI tables by date (one partition for all dates: `kpi_all`).
BY_DATE = "by_date"


class OrderpipeDataStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal: str,
        table_names: tuple[str, str, str],
        **kwargs: object,
    ) -> None:
        """`table_names`: ledger, category KPIs, order KPIs (with their prefix)."""
        super().__init__(scope, construct_id, **kwargs)
        destroy = removal == "destroy"
        data_removal = cdk.RemovalPolicy.DESTROY if destroy else cdk.RemovalPolicy.RETAIN
        cleanup_uploads = cdk.Duration.days(7)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(90))],
            removal_policy=data_removal,
            auto_delete_objects=destroy,
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(prefix=RESULT_PREFIX, expiration=cdk.Duration.days(30)),
                # Old versions (replaced or deleted objects) are kept 30 days for recovery, then expire.
                s3.LifecycleRule(
                    noncurrent_version_expiration=cdk.Duration.days(30),
                    expired_object_delete_marker=True,
                    abort_incomplete_multipart_upload_after=cleanup_uploads,
                ),
            ],
            removal_policy=data_removal,
            auto_delete_objects=destroy,
        )
        pitr = ddb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True)
        ledger_name, category_name, order_name = self.table_names = table_names
        self.ledger = ddb.Table(
            self,
            "Ledger",
            table_name=ledger_name,
            billing_mode=ddb.BillingMode.PAY_PER_REQUEST,
            partition_key=ddb.Attribute(name="pk", type=ddb.AttributeType.STRING),
            sort_key=ddb.Attribute(name="sk", type=ddb.AttributeType.STRING),
            point_in_time_recovery_specification=pitr,
            removal_policy=data_removal,
        )
        self.category = ddb.Table(
            self,
            "CategoryKPIs",
            table_name=category_name,
            billing_mode=ddb.BillingMode.PAY_PER_REQUEST,
            partition_key=ddb.Attribute(name="category", type=ddb.AttributeType.STRING),
            sort_key=ddb.Attribute(name="order_date", type=ddb.AttributeType.STRING),
            point_in_time_recovery_specification=pitr,
            removal_policy=data_removal,
        )
        self.order = ddb.Table(
            self,
            "OrderKPIs",
            table_name=order_name,
            billing_mode=ddb.BillingMode.PAY_PER_REQUEST,
            partition_key=ddb.Attribute(name="order_date", type=ddb.AttributeType.STRING),
            point_in_time_recovery_specification=pitr,
            removal_policy=data_removal,
        )
        for table in (self.category, self.order):
            table.add_global_secondary_index(
                index_name=BY_DATE,
                partition_key=ddb.Attribute(name="kpi_all", type=ddb.AttributeType.STRING),
                sort_key=ddb.Attribute(name="order_date", type=ddb.AttributeType.STRING),
            )
        # Named exports: the processing stack imports the bucket by these names, which stay the same
        # whatever CDK would generate (a renamed export in use cannot be deployed).
        self.bucket_arn_export = f"{self.stack_name}-BucketArn"
        self.bucket_name_export = f"{self.stack_name}-BucketName"
        cdk.CfnOutput(self, "BucketArn", value=self.bucket.bucket_arn, export_name=self.bucket_arn_export)
        cdk.CfnOutput(self, "BucketName", value=self.bucket.bucket_name, export_name=self.bucket_name_export)
        for name, table in (("LedgerTable", self.ledger), ("CategoryTable", self.category), ("OrderTable", self.order)):
            cdk.CfnOutput(self, name, value=table.table_name)
        cdk.Validations.of(self.access_logs).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-S1",
                reason="The access-log bucket does not log its own access (into itself).",
            )
        )

        log_helpers_with_retention(self)
        acknowledge_cdk_helpers(self)

    @property
    def tables(self) -> list[ddb.Table]:
        return [self.ledger, self.category, self.order]
