"""The CDK app, synthesized offline: resources, keys, policies; cfn-lint; cdk-nag (synthesis
fails on any AwsSolutions finding that is not acknowledged with a reason)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template
from infra.alarms import INFRA_FAILURE_PATTERN
from infra.app import DATA_STACK, STACK, build_app
from infra.kpi_api import OPEN_PATHS
from infra.orderpipe_stack import (
    COPY_HANDLER,
    LAMBDA_FILES,
    SMALL_FILE_HANDLER,
    SMALL_FILE_MEMORY_MB,
    SMALL_FILE_TIMEOUT_SECONDS,
    StackSettings,
    python_version,
)

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Path, cdk.Stack]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build_app({"categories": "Books,Toys", "ledger_table": "my-ledger"}, outdir=str(outdir))
    app.synth()  # runs cdk-nag's AwsSolutionsChecks: raises on an unacknowledged finding
    return Template.from_stack(stack), outdir / "Orderpipe.template.json", stack


@pytest.fixture(scope="module")
def synthesized(built: tuple[Template, Path, cdk.Stack]) -> tuple[Template, Path]:
    return built[0], built[1]


@pytest.fixture(scope="module")
def stored(built: tuple[Template, Path, cdk.Stack]) -> Template:
    """The data stack's template: the bucket and the tables."""
    return Template.from_stack(built[2].node.root.node.find_child(DATA_STACK))


@pytest.fixture(scope="module")
def destroyable(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The data stack a test or demo account wants: `make destroy-data` deletes the data too."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, _ = build_app({"removal": "destroy", "table_prefix": "dev-"}, outdir=str(outdir))
    app.synth()  # cdk-nag again: the auto-delete helper's findings are acknowledged too
    return Template.from_stack(app.node.find_child(DATA_STACK))


def statements(template: Template, path_part: str) -> list[dict]:
    found = []
    for name, policy in template.find_resources("AWS::IAM::Policy").items():
        if path_part in name:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def image_functions(template: Template, handler: str) -> dict[str, dict]:
    """The container-image functions of `handler`, by logical id: their properties."""
    return {
        logical: f["Properties"]
        for logical, f in template.find_resources("AWS::Lambda::Function").items()
        if f["Properties"].get("ImageConfig", {}).get("Command") == [handler]
    }


def arn_text(resource: object) -> str:
    """A resource ARN as text, the references in it as `<…>` (`arn:<AWS::Partition>:dynamodb:…`)."""
    if isinstance(resource, str):
        return resource
    assert isinstance(resource, dict) and "Fn::Join" in resource, resource
    return "".join(p if isinstance(p, str) else f"<{next(iter(p.values()))}>" for p in resource["Fn::Join"][1])


def table_of(resource: object) -> str:
    """The name of the table (or of the table whose index) `resource` is the ARN of."""
    text = arn_text(resource)
    assert text.startswith("arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/"), text
    return text.split(":table/", 1)[1].split("/", 1)[0]


def test_tables_keys_billing_and_recovery(stored: Template) -> None:
    template = stored
    recovery = {"PointInTimeRecoveryEnabled": True}
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "Orderpipe-CategoryKPIs",
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [
                {"AttributeName": "category", "KeyType": "HASH"},
                {"AttributeName": "order_date", "KeyType": "RANGE"},
            ],
            "PointInTimeRecoverySpecification": recovery,
            "GlobalSecondaryIndexes": [Match.object_like({"IndexName": "by_date"})],
        },
    )
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "Orderpipe-OrderKPIs",
            "KeySchema": [{"AttributeName": "order_date", "KeyType": "HASH"}],
            "PointInTimeRecoverySpecification": recovery,
        },
    )
    template.has_resource_properties("AWS::DynamoDB::Table", {"TableName": "Orderpipe-my-ledger"})
    template.resource_count_is("AWS::DynamoDB::Table", 3)


def test_bucket_is_private_encrypted_tls_only_and_notifies_on_input_csv(
    stored: Template, synthesized: tuple[Template, Path]
) -> None:
    stored.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": Match.object_like({}),
            "VersioningConfiguration": {"Status": "Enabled"},
        },
    )
    stored.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    # The notification belongs to the processing stack (on the imported bucket, leaving any other
    # notification of the bucket alone), to the upload queue; S3 suffix filters are case-sensitive:
    # .csv and .CSV each.
    template, _ = synthesized
    assert stored.find_resources("Custom::S3BucketNotifications") == {}
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "BucketName": {"Fn::ImportValue": f"{DATA_STACK}-BucketName"},
            "Managed": False,
            "NotificationConfiguration": {
                "QueueConfigurations": [
                    Match.object_like(
                        {
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {
                                "Key": {
                                    "FilterRules": [
                                        {"Name": "suffix", "Value": suffix},
                                        {"Name": "prefix", "Value": "input/"},
                                    ]
                                }
                            },
                        }
                    )
                    for suffix in (".csv", ".CSV")
                ]
            },
        },
    )


def test_trigger_state_machine_alarm_and_dead_letters(synthesized: tuple[Template, Path]) -> None:
    template, _ = synthesized
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "orderpipe.aws.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "ORDERPIPE_PREFIXES_INPUT": "input/",
                        "MAX_RUNNING_EXECUTIONS": "10",
                        "UPLOAD_QUEUE_URL": Match.any_value(),
                    }
                )
            },
        },
    )
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "TracingConfiguration": {"Enabled": True},
            "DefinitionSubstitutions": Match.object_like(
                {"Categories": "Books,Toys", "LedgerTable": Match.any_value()}
            ),
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"LogGroupName": "/ecs/ephemeral-pipeline"})
    template.resource_count_is("AWS::SNS::Topic", 2)
    template.resource_count_is("AWS::EC2::NatGateway", 0)


def test_a_burst_waits_in_the_upload_queue_for_the_trigger(synthesized: tuple[Template, Path]) -> None:
    """Uploads go to a queue; the trigger takes them 10 at a time, two triggers at most, reports
    the ones it leaves (over max_running_files) as failures of the batch, and may count the
    running executions; a message delivered 1,000 times goes to the dead-letter queue."""
    template, _ = synthesized
    queues = template.find_resources("AWS::SQS::Queue")
    (uploads,) = [q["Properties"] for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert uploads["RedrivePolicy"]["maxReceiveCount"] == 1000
    assert uploads["VisibilityTimeout"] >= 30 and uploads["MessageRetentionPeriod"] == 14 * 86400
    (dead,) = [k for k, q in queues.items() if "RedrivePolicy" not in q["Properties"]]
    assert uploads["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dead, "Arn"]}
    (mapping,) = template.find_resources("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["BatchSize"] == 10 and props["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    lists = [s for s in statements(template, "Trigger") if "states:ListExecutions" in as_list(s["Action"])]
    assert len(lists) == 1 and lists[0]["Resource"] == {
        "Ref": next(iter(template.find_resources("AWS::StepFunctions::StateMachine")))
    }
    app = cdk.App(context={"max_running_files": "ten"})
    with pytest.raises(ValueError, match="max_running_files"):
        StackSettings.from_context(app.node)


def test_substitutions_cover_the_definition(synthesized: tuple[Template, Path]) -> None:
    import re

    from tests.conftest import REPO

    template, _ = synthesized
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    wanted = set(re.findall(r"\$\{(\w+)\}", (REPO / "step_functions" / "MainStepFn.json").read_text()))
    assert wanted == set(machine["Properties"]["DefinitionSubstitutions"])


def test_the_small_file_function_runs_the_container_image_like_the_tasks(synthesized: tuple[Template, Path]) -> None:
    """The same image as the ECS tasks, its handler run by the Lambda runtime client, with the
    tasks' environment and permissions; the state machine may invoke the image's functions only,
    and its own timeout for the invocation outlasts the function's."""
    template, _ = synthesized
    ((logical, function),) = image_functions(template, SMALL_FILE_HANDLER).items()
    assert function["ImageConfig"] == {"Command": [SMALL_FILE_HANDLER], "EntryPoint": ["python", "-m", "awslambdaric"]}
    assert (function["MemorySize"], function["Timeout"]) == (SMALL_FILE_MEMORY_MB, SMALL_FILE_TIMEOUT_SECONDS)
    assert function["Architectures"] == ["x86_64"]  # the image is built for linux/amd64
    env = function["Environment"]["Variables"]
    assert env["ORDERPIPE_BACKEND"] == "aws" and env["ORDERPIPE_CATEGORIES"] == "Books,Toys"
    machine_definition = json.loads((REPO / "step_functions" / "MainStepFn.json").read_text())
    container_env = {
        e["Name"]
        for e in machine_definition["States"]["RunValidator"]["Parameters"]["Overrides"]["ContainerOverrides"][0][
            "Environment"
        ]
    }
    # Everything the containers are told, but the object and where its verdict goes (the event's).
    assert container_env - set(env) == {
        "ORDERPIPE_TASK_KEY",
        "ORDERPIPE_TASK_VERSION",
        "ORDERPIPE_TASK_RESULT_KEY",
        "ORDERPIPE_AWS_BUCKET",
    }
    assert machine_definition["States"]["ProcessSmallFile"]["TimeoutSeconds"] > SMALL_FILE_TIMEOUT_SECONDS
    invokes = [s for s in statements(template, "MainStepFn") if "lambda:InvokeFunction" in as_list(s["Action"])]
    (invoke,) = invokes
    (copier,) = image_functions(template, COPY_HANDLER)
    assert invoke["Resource"] == [{"Fn::GetAtt": [logical, "Arn"]}, {"Fn::GetAtt": [copier, "Arn"]}]
    task_actions = {a for st in statements(template, "TaskRole") for a in as_list(st["Action"])}
    function_actions = {a for st in statements(template, "SmallFileRole") for a in as_list(st["Action"])}
    assert task_actions <= function_actions
    assert function_actions - task_actions <= {"logs:CreateLogStream", "logs:PutLogEvents"}


def test_the_copy_function_reads_the_input_and_writes_only_the_archive_and_the_quarantine(
    synthesized: tuple[Template, Path],
) -> None:
    template, _ = synthesized
    ((_, function),) = image_functions(template, COPY_HANDLER).items()
    assert function["ImageConfig"]["Command"] == [COPY_HANDLER] and function["Timeout"] == 900
    definition = json.loads((REPO / "step_functions" / "MainStepFn.json").read_text())
    assert definition["States"]["CopyLargeFileToArchive"]["TimeoutSeconds"] > 900
    found = {}
    for statement in statements(template, "CopyRole"):
        for action in as_list(statement["Action"]):
            if action.startswith("s3:"):
                found.setdefault(action, set()).update(r["Fn::Join"][1][-1] for r in as_list(statement["Resource"]))
    assert found == {
        "s3:GetObject": {"/input/*", "/processed/*", "/rejected/*"},
        "s3:GetObjectVersion": {"/input/*"},
        "s3:PutObject": {"/processed/*", "/rejected/*"},
        "s3:AbortMultipartUpload": {"/processed/*", "/rejected/*"},
    }
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["DefinitionSubstitutions"]["LargeCopyBytes"] == str(5 << 30)


def test_the_state_machine_may_only_put_items_into_the_ledger(synthesized: tuple[Template, Path]) -> None:
    """It records an infrastructure failure in the batch history, and touches no table otherwise."""
    template, _ = synthesized
    found = [s for s in statements(template, "MainStepFn") if any("dynamodb:" in a for a in as_list(s["Action"]))]
    (statement,) = found
    assert statement["Action"] == "dynamodb:PutItem"
    assert arn_text(statement["Resource"]).endswith(":table/Orderpipe-my-ledger")


def test_the_small_file_limit_is_a_whole_number_and_0_sends_every_file_to_ecs() -> None:
    assert StackSettings().small_file_bytes == str(64 << 20)
    for wrong in ("64MB", "064", "-1", ""):  # "064" is no JSON number: every execution would fail
        with pytest.raises(ValueError, match="small_file_bytes"):
            StackSettings.from_context(cdk.App(context={"small_file_bytes": wrong}).node)
    assert StackSettings.from_context(cdk.App(context={"small_file_bytes": "0"}).node).small_file_bytes == "0"


def test_no_policy_grants_every_action(synthesized: tuple[Template, Path]) -> None:
    template, _ = synthesized
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement


def test_cfn_lint_accepts_the_template(synthesized: tuple[Template, Path]) -> None:
    _, path = synthesized
    lint = Path(sys.executable).with_name("cfn-lint")
    # Two warnings come from CDK's own output, not from our choices: W3005 (CDK adds a DependsOn
    # beside a GetAtt for roles) and W3045 (CDK sets AccessControl on a server-access-log bucket).
    ignored = ["--ignore-checks", "W3005", "W3045"]
    for template in (path, path.with_name(f"{DATA_STACK}.template.json")):
        result = subprocess.run([str(lint), str(template), *ignored], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(path.read_text())["Resources"]


# -- a second deploy after `make destroy`, and what destroy does with the data ---------------------
def test_data_is_retained_by_default_and_table_names_carry_the_stack_name(stored: Template) -> None:
    template = stored
    for kind in ("AWS::DynamoDB::Table", "AWS::S3::Bucket"):
        for resource in template.find_resources(kind).values():
            assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    names = {r["Properties"]["TableName"] for r in template.find_resources("AWS::DynamoDB::Table").values()}
    assert names == {"Orderpipe-my-ledger", "Orderpipe-CategoryKPIs", "Orderpipe-OrderKPIs"}
    template.resource_count_is("Custom::S3AutoDeleteObjects", 0)


def test_removal_destroy_deletes_tables_buckets_and_objects(destroyable: Template) -> None:
    for kind in ("AWS::DynamoDB::Table", "AWS::S3::Bucket"):
        for resource in destroyable.find_resources(kind).values():
            assert resource["DeletionPolicy"] == "Delete"
    destroyable.resource_count_is("Custom::S3AutoDeleteObjects", 2)  # a versioned bucket must be emptied first
    names = {r["Properties"]["TableName"] for r in destroyable.find_resources("AWS::DynamoDB::Table").values()}
    assert names == {"dev-orderpipe-ledger", "dev-CategoryKPIs", "dev-OrderKPIs"}


def test_the_data_lives_in_a_stack_of_its_own_that_make_destroy_leaves(
    synthesized: tuple[Template, Path], stored: Template
) -> None:
    """`make destroy` removes the processing stack only; the data stack holds the bucket and
    the tables, depends on nothing of the processing stack, and its names are the same as when
    both were one stack, so `make deploy` after `make destroy` finds yesterday's data."""
    template, path = synthesized
    for kind in ("AWS::DynamoDB::Table", "AWS::S3::Bucket"):
        assert template.find_resources(kind) == {}, f"{kind} in the processing stack"
    assert len(stored.find_resources("AWS::DynamoDB::Table")) == 3
    assert len(stored.find_resources("AWS::S3::Bucket")) == 2  # files and their access logs
    assert "Fn::ImportValue" not in json.dumps(stored.to_json())  # the data stack imports nothing
    # It imports only the bucket, by the two exports named for it (the tables by their names):
    # no change of this stack can ever need to change an export in use.
    imported = set(re.findall(r'"Fn::ImportValue": "([^"]+)"', path.read_text()))
    assert imported == {f"{DATA_STACK}-BucketArn", f"{DATA_STACK}-BucketName"}
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert DATA_STACK in manifest["artifacts"][STACK].get("dependencies", [])
    assert STACK not in manifest["artifacts"][DATA_STACK].get("dependencies", [])
    makefile = (REPO / "Makefile").read_text()
    destroy = makefile.split("\ndestroy:", 1)[1].split("\n\n", 1)[0]
    assert destroy.rstrip().endswith(f"--force {STACK} $(CDK_ARGS)") and DATA_STACK not in destroy
    deploy = makefile.split("\ndeploy:", 1)[1].split("\n\n", 1)[0]
    assert "--all" in deploy


def test_make_destroy_data_removes_nothing_without_the_typed_name() -> None:
    # -o: the virtualenv counts as set up, so make runs only the confirmation.
    result = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "-o", ".venv/.core", "destroy-data"],
        cwd=REPO,
        input="yes\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "nothing removed" in result.stdout and "cdk" not in result.stdout + result.stderr


def test_removal_must_be_retain_or_destroy() -> None:
    app = cdk.App(context={"removal": "keep"})
    with pytest.raises(ValueError, match="retain, destroy"):
        StackSettings.from_context(app.node)


# -- the first run in a fresh account, and failures that reach someone ---------------------------------
def test_the_state_machine_may_create_ecs_service_linked_role_only(synthesized: tuple[Template, Path]) -> None:
    template, _ = synthesized
    (statement,) = [s for s in statements(template, "MainStepFn") if s["Action"] == "iam:CreateServiceLinkedRole"]
    assert statement["Condition"] == {"StringEquals": {"iam:AWSServiceName": "ecs.amazonaws.com"}}
    resource = json.dumps(statement["Resource"])
    assert "role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS" in resource


def test_topics_use_a_rotated_customer_key_that_cloudwatch_alarms_can_use(synthesized: tuple[Template, Path]) -> None:
    template, path = synthesized
    assert "alias/aws/sns" not in path.read_text()
    ((key_id, key),) = template.find_resources("AWS::KMS::Key").items()
    assert key["Properties"]["EnableKeyRotation"] is True
    for topic in template.find_resources("AWS::SNS::Topic").values():
        assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    cloudwatch = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(as_list(cloudwatch[0]["Action"]))
    publish = [s for s in statements(template, "MainStepFn") if "kms:GenerateDataKey*" in as_list(s["Action"])]
    assert publish, "the state machine must be able to publish to the encrypted topics"


def test_alarms_on_infrastructure_failures_timeouts_and_aborts_not_on_rejected_files(
    synthesized: tuple[Template, Path],
) -> None:
    template, _ = synthesized
    metrics = {a["Properties"].get("MetricName") for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    assert {"InfrastructureFailures", "ExecutionsTimedOut", "ExecutionsAborted"} <= metrics
    assert "ExecutionsFailed" not in metrics  # would count every rejected file, already notified
    template.has_resource_properties(
        "AWS::Logs::MetricFilter",
        {
            "FilterPattern": INFRA_FAILURE_PATTERN,
            "MetricTransformations": [Match.object_like({"MetricName": "InfrastructureFailures", "MetricValue": "1"})],
        },
    )
    assert '"InvalidData"' in INFRA_FAILURE_PATTERN and "!=" in INFRA_FAILURE_PATTERN
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"], alarm


def test_every_alarm_can_publish_to_its_topic(synthesized: tuple[Template, Path]) -> None:
    """A topic with a policy of its own (enforce_ssl makes one) takes only what it allows: each
    alarm's topic must let CloudWatch publish, from this account and for that alarm's ARN."""
    template, _ = synthesized
    policies = template.find_resources("AWS::SNS::TopicPolicy")
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) >= 5
    sweeper_errors = [a for a in alarms.values() if a["Properties"].get("MetricName") == "Errors"]
    assert sweeper_errors, "an alarm on the sweeper's failures"
    for alarm_id, alarm in alarms.items():
        for topic in alarm["Properties"]["AlarmActions"]:
            allowed = [
                statement
                for policy in policies.values()
                if topic in policy["Properties"]["Topics"]
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]
                if statement["Effect"] == "Allow"
                and statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
                and "sns:Publish" in as_list(statement["Action"])
            ]
            assert allowed, f"{alarm_id}: its topic does not let CloudWatch publish"
            (statement,) = allowed
            assert statement["Resource"] == topic
            assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
            sources = as_list(statement["Condition"]["ArnLike"]["aws:SourceArn"])
            assert {"Fn::GetAtt": [alarm_id, "Arn"]} in sources, alarm_id


def test_an_hourly_sweeper_deletes_what_unfinished_executions_left(synthesized: tuple[Template, Path]) -> None:
    template, _ = synthesized
    (sweeper,) = [
        name
        for name, f in template.find_resources("AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == "orderpipe.aws.sweep"
    ]
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 hour)",
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [sweeper, "Arn"]}})],
        },
    )
    actions = {a for s in statements(template, "Sweeper") for a in as_list(s["Action"])}
    assert {"ecs:DeleteCluster", "ecs:DeleteTaskDefinitions", "states:DescribeExecution"} <= actions


def test_ephemeral_ecs_names_and_their_policies_carry_the_stack_name(synthesized: tuple[Template, Path]) -> None:
    """Two stacks in one account never reach each other's clusters, tasks or task definitions:
    every ECS resource the state machine and the sweeper may act on is `<stack>_*`, and the
    definition and the sweeper name and look for exactly that."""
    template, _ = synthesized
    prefix = "Orderpipe_"
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["DefinitionSubstitutions"]["EphemeralPrefix"] == prefix
    (sweeper,) = [
        f
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "orderpipe.aws.sweep"
    ]
    assert sweeper["Properties"]["Environment"]["Variables"]["ORDERPIPE_EPHEMERAL_PREFIX"] == prefix
    ecs_resources = []
    for part in ("MainStepFn", "Sweeper"):
        for statement in statements(template, part):
            ecs_resources += [json.dumps(r) for r in as_list(statement["Resource"]) if ":ecs:" in json.dumps(r)]
            ecs_resources += (
                [json.dumps(statement.get("Condition", {}))] if "ecs:cluster" in json.dumps(statement) else []
            )
    assert len(ecs_resources) >= 6
    for resource in ecs_resources:
        assert f"/{prefix}*" in resource and "orderpipe-" not in resource, resource


# -- least privilege, acknowledged finding by finding ------------------------------------------------
def test_tasks_touch_only_their_prefixes_and_delete_only_merged_facts(synthesized: tuple[Template, Path]) -> None:
    template, _ = synthesized
    s3 = [s for s in statements(template, "TaskRole") if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    actions = {a for s in s3 for a in as_list(s["Action"])}
    assert actions == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:ListBucket",
    }
    deletes = {r["Fn::Join"][1][-1] for s in s3 if "Delete" in str(s["Action"]) for r in as_list(s["Resource"])}
    assert deletes == {"/warehouse/orders/*"}  # compaction's merged facts, nothing else
    for statement in s3:
        for resource in as_list(statement["Resource"]):
            if statement["Action"] == "s3:ListBucket":
                assert resource == {"Fn::ImportValue": f"{DATA_STACK}-BucketArn"}  # the data stack's bucket only
                continue
            suffix = resource["Fn::Join"][1][-1]
            assert suffix in {"/input/*", "/processed/*", "/rejected/*", "/warehouse/orders/*", "/results/*"}, suffix
    writes = {
        r["Fn::Join"][1][-1] for s in s3 if "s3:PutObject" in as_list(s["Action"]) for r in as_list(s["Resource"])
    }
    assert writes == {"/rejected/*", "/warehouse/orders/*", "/results/*"}


def test_every_acknowledgement_names_its_resource_and_finding(built: tuple[Template, Path, cdk.Stack]) -> None:
    _, _, stack = built
    key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY

    def ours(construct: object) -> list[str]:  # cdk-nag's; CDK acknowledges a cfn-lint rule of its own
        return [i for m in construct.node.metadata if m.type == key for i in m.data if "AwsSolutions" in i]

    found = {c.node.path: ours(c) for c in [stack, *stack.node.find_all()]}
    assert found.pop(stack.node.path) == []  # nothing acknowledged stack-wide
    assert ours(stack.node.scope) == []  # nor app-wide
    ids = [i for path_ids in found.values() for i in path_ids]
    assert ids
    for finding in ids:
        if "-IAM" in finding:
            assert "[" in finding, f"{finding}: an IAM acknowledgement must name the action or resource it allows"


# -- retention: versions, uploads, task definitions, logs ---------------------------------------------
def test_old_versions_and_unfinished_uploads_expire_and_every_log_group_has_a_retention(
    synthesized: tuple[Template, Path], stored: Template, destroyable: Template
) -> None:
    template, _ = synthesized
    stored.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                            }
                        )
                    ]
                )
            },
        },
    )
    for each in (template, stored, destroyable):  # CDK's helpers live in the data stack too
        for name, group in each.find_resources("AWS::Logs::LogGroup").items():
            assert group["Properties"].get("RetentionInDays"), name
            assert group["DeletionPolicy"] == "Delete", name
        for name, function in each.find_resources("AWS::Lambda::Function").items():
            assert function["Properties"].get("LoggingConfig", {}).get("LogGroup"), f"{name} logs to an implicit group"


def test_the_state_machine_logs_under_vendedlogs(synthesized: tuple[Template, Path]) -> None:
    template, _ = synthesized
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": "/aws/vendedlogs/states/Orderpipe-MainStepFn"}
    )
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {"LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True})},
    )


def test_no_hard_coded_partition(synthesized: tuple[Template, Path]) -> None:
    _, path = synthesized
    assert "arn:aws:" not in path.read_text()
    assert "arn:aws:" not in (REPO / "step_functions" / "MainStepFn.json").read_text()


def test_the_lambda_package_is_the_handler_and_its_logging_only(synthesized: tuple[Template, Path]) -> None:
    template, path = synthesized
    hashes = {
        f["Properties"]["Code"]["S3Key"].removesuffix(".zip")
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler", "").startswith("orderpipe.aws.")
    }
    (asset_hash,) = hashes  # the trigger and the sweeper share it
    runtimes = {f["Properties"].get("Runtime") for f in template.find_resources("AWS::Lambda::Function").values()}
    assert f"python{python_version()}" in runtimes
    asset = path.parent / f"asset.{asset_hash}"
    files = sorted(str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file())
    assert files == sorted(LAMBDA_FILES)
    # The package imports with the standard library alone (the runtime adds boto3).
    probe = "import orderpipe.aws as a; assert callable(a.handler) and callable(a.sweep)"
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe], cwd=asset, capture_output=True, text=True, check=False, env={}
    )
    assert result.returncode == 0, result.stderr


# -- the KPI API: HTTP API + Lambda ------------------------------------------------------------------
def test_the_api_stage_is_throttled_and_logs_each_request(synthesized: tuple[Template, Path]) -> None:
    template, _ = synthesized
    [stage] = template.find_resources("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default" and props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"] == {"ThrottlingRateLimit": 20, "ThrottlingBurstLimit": 40}
    fields = json.loads(props["AccessLogSettings"]["Format"])
    assert {"requestId", "ip", "caller", "status", "path"} <= set(fields)
    assert "ApiUrl" in template.find_outputs("*")


def test_the_api_role_can_only_read_the_kpi_tables_index_and_ledger(synthesized: tuple[Template, Path]) -> None:
    template, _ = synthesized
    found = statements(template, "ApiServiceRole")
    assert {a for s in found for a in as_list(s["Action"])} == {"dynamodb:GetItem", "dynamodb:Query"}
    resources = [r for s in found for r in as_list(s["Resource"])]
    tables = {table_of(r) for r in resources if "/index/" not in arn_text(r)}
    indexes = sorted(arn_text(r).split(":table/", 1)[1] for r in resources if "/index/" in arn_text(r))
    assert tables == {"Orderpipe-my-ledger", "Orderpipe-CategoryKPIs", "Orderpipe-OrderKPIs"}
    assert indexes == ["Orderpipe-CategoryKPIs/index/by_date", "Orderpipe-OrderKPIs/index/by_date"]
    [function] = [
        f for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "orderpipe.web.lambda_api.handler"
    ]  # fmt: skip
    env = function["Properties"]["Environment"]["Variables"]
    assert env["ORDERPIPE_BACKEND"] == "aws" and env["ORDERPIPE_CATEGORIES"] == "Books,Toys"


def test_people_sign_in_to_a_user_pool_and_only_the_page_opens_without_a_token(
    synthesized: tuple[Template, Path],
) -> None:
    template, _ = synthesized
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in template.find_resources("AWS::ApiGatewayV2::Route").values()
    }
    assert sorted(routes) == [f"{m} {p}" for m in ("GET", "HEAD") for p in ("/", "/static/{proxy+}", "/{proxy+}")]
    by_type = {key: props["AuthorizationType"] for key, props in routes.items()}
    assert {k for k, t in by_type.items() if t == "NONE"} == {f"{m} {p}" for m in ("GET", "HEAD") for p in OPEN_PATHS}
    assert {t for k, t in by_type.items() if k.endswith("{proxy+}") and "/static/" not in k} == {"JWT"}
    [authorizer] = template.find_resources("AWS::ApiGatewayV2::Authorizer").values()
    assert authorizer["Properties"]["AuthorizerType"] == "JWT"
    [client_id] = template.find_resources("AWS::Cognito::UserPoolClient")
    assert authorizer["Properties"]["JwtConfiguration"]["Audience"] == [{"Ref": client_id}]
    template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {"MfaConfiguration": "ON", "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True}},
    )
    [client] = template.find_resources("AWS::Cognito::UserPoolClient").values()
    props = client["Properties"]
    assert sorted(props["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"]  # the page's
    assert props.get("GenerateSecret", False) is False and props["AllowedOAuthFlowsUserPoolClient"] is False
    assert props["EnableTokenRevocation"] is True and props["AuthSessionValidity"] == 15
    assert props["AccessTokenValidity"] == 15 and props["TokenValidityUnits"]["AccessToken"] == "minutes"
    [function] = [
        f for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "orderpipe.web.lambda_api.handler"
    ]  # fmt: skip
    env = function["Properties"]["Environment"]["Variables"]
    [pool_id] = template.find_resources("AWS::Cognito::UserPool")
    assert env["SIGN_IN_USER_POOL_ID"] == {"Ref": pool_id} and env["SIGN_IN_CLIENT_ID"] == {"Ref": client_id}
    assert {"ApiUserPoolId", "ApiUserPoolClientId", "ApiUrl"} <= set(template.find_outputs("*"))


@pytest.fixture(scope="module")
def with_iam(tmp_path_factory: pytest.TempPathFactory) -> Template:
    app, stack = build_app({"api_auth": "iam"}, outdir=str(tmp_path_factory.mktemp("cdk.out")))
    app.synth()  # cdk-nag again, without the user pool
    return Template.from_stack(stack)


def test_programs_read_through_iam_instead_every_route_signed(with_iam: Template) -> None:
    routes = with_iam.find_resources("AWS::ApiGatewayV2::Route")
    keys = sorted(r["Properties"]["RouteKey"] for r in routes.values())
    assert keys == ["GET /", "GET /{proxy+}", "HEAD /", "HEAD /{proxy+}"]
    assert {r["Properties"]["AuthorizationType"] for r in routes.values()} == {"AWS_IAM"}
    with_iam.has_resource_properties("AWS::ApiGatewayV2::Integration", {"PayloadFormatVersion": "2.0"})
    assert with_iam.find_resources("AWS::Cognito::UserPool") == {}


def test_the_task_role_may_make_exactly_the_table_calls_the_adapters_make(synthesized: tuple[Template, Path]) -> None:
    """Read from the adapters' code: a client method (`put_item`, or an item of a transaction:
    `{"Put": …}`), mapped to its IAM action; the role must allow those and nothing else."""
    from infra.orderpipe_stack import TASK_TABLE_ACTIONS

    code = "".join(p.read_text() for p in (REPO / "src" / "orderpipe" / "adapters").glob("dynamodb*.py"))
    methods = set(re.findall(r'"(get_item|put_item|update_item|delete_item|query|batch_write_item|scan)"', code))
    methods |= set(re.findall(r"\.(transact_write_items|batch_write_item|scan)\(", code))
    called = {"".join(w.title() for w in m.split("_")) for m in methods if m != "transact_write_items"}
    called |= {f"{kind}Item" for kind in re.findall(r'\{"(Put|Update|Delete|ConditionCheck)": \{', code)}
    assert set(TASK_TABLE_ACTIONS) == called
    template, _ = synthesized
    granted = {
        action
        for s in statements(template, "TaskRole")
        for action in as_list(s["Action"])
        if str(action).startswith("dynamodb:")
    }
    assert granted == {f"dynamodb:{a}" for a in TASK_TABLE_ACTIONS}
