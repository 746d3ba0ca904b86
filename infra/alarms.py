"""The alarms of the processing stack, and the topic policy that lets them deliver: each fires
on one failure in its period into the failure topic."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

__all__ = ["INFRA_FAILURE_PATTERN", "add_alarms"]

# Infrastructure failures only: a rejected file ends FAILED with InvalidData and is already notified.
INFRA_FAILURE_PATTERN = '{ ($.type = "ExecutionFailed") && ($.details.error != "InvalidData") }'


def add_alarms(
    stack: cdk.Stack,
    *,
    failure: sns.Topic,
    machine: sfn.StateMachine,
    machine_logs: logs.ILogGroup,
    dead_letters: sqs.IQueue,
    sweeper: lambda_.IFunction,
) -> list[cloudwatch.Alarm]:
    """Made in the stack's scope (the logical ids it always had)."""
    infra_failures = logs.MetricFilter(
        stack,
        "InfrastructureFailureFilter",
        log_group=machine_logs,
        metric_namespace=f"orderpipe/{stack.stack_name}",
        metric_name="InfrastructureFailures",
        filter_pattern=logs.FilterPattern.literal(INFRA_FAILURE_PATTERN),
        metric_value="1",
    )
    alarms = {
        "InfrastructureFailures": (
            infra_failures.metric(statistic="Sum", period=cdk.Duration.minutes(5)),
            "An orderpipe execution failed for an infrastructure reason (rejected files are not counted); "
            "see the failure topic.",
        ),
        "TimedOutExecutions": (
            machine.metric_timed_out(period=cdk.Duration.minutes(5)),
            "An orderpipe execution timed out: its cleanup did not run (the hourly sweeper deletes what it left).",
        ),
        "AbortedExecutions": (
            machine.metric_aborted(period=cdk.Duration.minutes(5)),
            "An orderpipe execution was stopped: its cleanup did not run (the hourly sweeper deletes what it left).",
        ),
        "TriggerDeadLetterMessages": (
            dead_letters.metric_approximate_number_of_messages_visible(),
            "An upload could not start an execution after 1,000 deliveries (8 h or more); "
            "it waits in the dead-letter queue.",
        ),
        "SweeperFailures": (
            sweeper.metric_errors(period=cdk.Duration.minutes(5)),
            "The hourly sweeper failed: clusters or task definitions left by unfinished executions stay "
            "(and cost) until it runs; see its log group.",
        ),
    }
    alarm_action = actions.SnsAction(failure)
    created = []
    for name, (metric, description) in alarms.items():
        alarm = cloudwatch.Alarm(
            stack,
            name,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(alarm_action)
        created.append(alarm)
    # enforce_ssl gives the topic a policy of its own, whose only statement is a Deny: without
    # this Allow, CloudWatch may not publish and every alarm would fire into nothing.
    failure.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[failure.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": [alarm.alarm_arn for alarm in created]},
            },
        )
    )
    return created
