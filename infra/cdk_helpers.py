"""CDK's own helper functions (bucket notifications, auto-deleted objects), in either stack:
their logs kept for a month, and the cdk-nag findings about them acknowledged."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import IConstruct

__all__ = ["acknowledge", "acknowledge_cdk_helpers", "log_helpers_with_retention"]

#: The ids CDK gives its helpers in a stack.
HELPER_IDS = (
    "BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
    "Custom::S3AutoDeleteObjectsCustomResourceProvider",
)
BASIC_EXECUTION = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def log_helpers_with_retention(stack: cdk.Stack) -> None:
    """The helpers would log to an implicit /aws/lambda/… group kept forever: they log to one
    group of the stack with a retention. Call it once the stack holds everything."""

    def implicit_logs(c: object) -> bool:
        if isinstance(c, lambda_.CfnFunction):
            return c.logging_config is None
        return isinstance(c, cdk.CfnResource) and c.cfn_resource_type == "AWS::Lambda::Function"

    helpers = [c for c in stack.node.find_all() if implicit_logs(c)]
    if not helpers:
        return
    group = logs.LogGroup(
        stack, "HelperLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY
    )
    for helper in helpers:
        helper.add_property_override("LoggingConfig.LogGroup", group.log_group_name)


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Accept one cdk-nag finding (`AwsSolutions-…`) on this construct only, with its reason."""
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason))


def acknowledge_cdk_helpers(stack: cdk.Stack) -> None:
    """CDK's helpers pin their own runtime and use the basic execution role."""
    for helper_id in HELPER_IDS:
        helper = stack.node.try_find_child(helper_id)
        if helper is None:
            continue
        for finding, reason in (
            (f"AwsSolutions-IAM4[{BASIC_EXECUTION}]", "CDK's helper only writes its own logs."),
            ("AwsSolutions-IAM5[Resource::*]", "CDK's helper: s3:PutBucketNotification on this bucket."),
            ("AwsSolutions-L1", "CDK's helper pins its own runtime."),
        ):
            acknowledge(helper, finding, reason)
