"""The state machine definition: valid ASL, its shape, its timeout budget and its messages."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

DEFINITION = REPO / "step_functions" / "MainStepFn.json"


def states() -> dict[str, dict]:
    return json.loads(DEFINITION.read_text())["States"]


def all_states(machine: dict[str, dict]) -> dict[str, dict]:
    found = dict(machine)
    for state in machine.values():
        for branch in state.get("Branches", []):
            found |= all_states(branch["States"])
    return found


def test_statelint_accepts_the_definition() -> None:
    statelint = Path(sys.executable).with_name("statelint")
    result = subprocess.run([str(statelint), str(DEFINITION)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _valid_path(start: str, choose: dict[str, str] | None = None) -> list[str]:
    """The states a valid file passes from `start`: the first rule of each Choice, or `choose[name]`."""
    s = states()
    path, name = [], start
    while name:
        path.append(name)
        state = s[name]
        if state["Type"] == "Choice":
            name = (choose or {}).get(name) or _first_rule(state)["Next"]
        else:
            name = state.get("Next")
    return path


def test_the_path_of_a_valid_small_file() -> None:
    assert _valid_path("GenerateExecutionParameters", {"ChooseArchiveCopy": "ArchiveFile"}) == [
        "GenerateExecutionParameters",
        "RouteBySize",
        "UseSmallFilePath",
        "ProcessSmallFile",
        "CheckSmallFileVerdict",
        "MarkAccepted",
        "NeedsCleanup",
        "RouteOutcome",
        "ChooseArchiveCopy",
        "ArchiveFile",
        "ChooseSourceDeletion",
        "DeleteSourceFile",
        "NotifySuccess",
    ]


def test_the_route_by_size() -> None:
    """Only a size the trigger gave, up to a limit that is not 0, takes the Lambda; the guards
    against a missing or non-numeric size come first (a missing field would be a States.Runtime
    error, which no Catch takes)."""
    s = states()
    assert s["GenerateExecutionParameters"]["Parameters"]["input.$"] == "$$.Execution.Input"
    assert s["GenerateExecutionParameters"]["Parameters"]["route"] == "ecs"
    (rule,) = s["RouteBySize"]["Choices"]
    assert rule["And"] == [
        {"Variable": "$.small_file_bytes", "NumericGreaterThan": 0},
        {"Variable": "$.input.size", "IsPresent": True},
        {"Variable": "$.input.size", "IsNumeric": True},
        {"Variable": "$.input.size", "NumericLessThanEqualsPath": "$.small_file_bytes"},
    ]
    assert (rule["Next"], s["RouteBySize"]["Default"]) == ("UseSmallFilePath", "CreateCluster")
    assert s["UseSmallFilePath"]["Result"] == "lambda" and s["UseSmallFilePath"]["ResultPath"] == "$.route"


def test_a_small_file_out_of_time_or_memory_goes_to_the_ecs_tasks() -> None:
    """Lambda reports running out of time or memory, or a runtime that exited, by those names
    (Step Functions called them all Lambda.Unknown before): never retried in the function, taken
    by the ECS path; anything else the function raised is retried, then fails."""
    s = states()
    task = s["ProcessSmallFile"]
    ran_out = ["Lambda.Unknown", "Sandbox.Timedout", "Runtime.OutOfMemory", "Runtime.ExitError", "States.Timeout"]
    assert set(ran_out) <= set(task["Retry"][0]["ErrorEquals"])
    assert task["Retry"][0]["MaxAttempts"] == 0
    fallback, rest = task["Catch"]
    assert fallback == {"ErrorEquals": ran_out, "ResultPath": "$.small_file_error", "Next": "UseEcsPath"}
    assert rest["ErrorEquals"] == ["States.ALL"] and rest["Next"] == "MarkFailed"
    assert s["UseEcsPath"] == {**s["UseEcsPath"], "Result": "ecs", "ResultPath": "$.route", "Next": "CreateCluster"}
    # AWS's recommended retry of Lambda service errors, and throttling with jitter.
    service = next(r for r in task["Retry"] if "Lambda.ServiceException" in r["ErrorEquals"])
    assert service["IntervalSeconds"] == 2 and service["MaxAttempts"] == 6 and service["BackoffRate"] == 2
    throttled = next(r for r in task["Retry"] if r["ErrorEquals"] == ["Lambda.TooManyRequestsException"])
    assert throttled["JitterStrategy"] == "FULL"


def test_the_small_file_path_creates_nothing_to_clean_up() -> None:
    s = states()
    assert s["NeedsCleanup"]["Choices"] == [{"Variable": "$.route", "StringEquals": "lambda", "Next": "RouteOutcome"}]
    assert s["NeedsCleanup"]["Default"] == "Cleanup"
    verdicts = {
        rule["StringEquals"]: rule["Next"] for rule in s["CheckSmallFileVerdict"]["Choices"] if "Not" not in rule
    }
    assert verdicts == {"accepted": "MarkAccepted", "duplicate": "MarkDuplicate", "invalid": "MarkInvalid"}
    assert s["CheckSmallFileVerdict"]["Choices"][0]["Not"] == {
        "Variable": "$.result.verdict.verdict",
        "IsPresent": True,
    }


def test_the_path_of_a_valid_file() -> None:
    assert _valid_path(
        "GenerateExecutionParameters",
        {"RouteBySize": "CreateCluster", "NeedsCleanup": "Cleanup", "ChooseArchiveCopy": "ArchiveFile"},
    ) == [
        "GenerateExecutionParameters",
        "RouteBySize",
        "CreateCluster",
        "RegisterValidatorTask",
        "RunValidator",
        "ReadVerdict",
        "CheckVerdict",
        "RegisterTransformerTask",
        "RunTransformer",
        "CheckTransformerExit",
        "MarkAccepted",
        "NeedsCleanup",
        "Cleanup",
        "DeleteCluster",
        "RouteOutcome",
        "ChooseArchiveCopy",
        "ArchiveFile",
        "ChooseSourceDeletion",
        "DeleteSourceFile",
        "NotifySuccess",
    ]


def _first_rule(state: dict) -> dict:
    """The first rule of a Choice that is not a guard against a missing field."""
    return next(rule for rule in state["Choices"] if "Not" not in rule)


def test_a_verdict_file_without_a_verdict_is_an_unknown_verdict() -> None:
    """Comparing a missing field is a States.Runtime error, which no Catch takes (the execution
    would fail without its cleanup): the field's presence is tested first."""
    check = states()["CheckVerdict"]
    assert check["Choices"][0] == {
        "Not": {"Variable": "$.result.verdict.verdict", "IsPresent": True},
        "Next": "UnknownVerdict",
    }
    assert states()["UnknownVerdict"]["Next"] == "MarkFailed"


def test_only_a_transformer_that_exited_0_leads_to_accepted() -> None:
    s = states()
    into_accepted = [name for name, state in all_states(s).items() if state.get("Next") == "MarkAccepted"]
    into_accepted += [
        name
        for name, state in all_states(s).items()
        for rule in state.get("Choices", [])
        if rule["Next"] == "MarkAccepted"
    ]
    # The ECS path's transformer that exited 0, or the small-file function's own verdict.
    assert sorted(into_accepted) == ["CheckSmallFileVerdict", "CheckTransformerExit"]
    assert s["RunTransformer"]["Next"] == "CheckTransformerExit"
    # One container per task; ArrayContains of no exit code at all is false, never an error.
    assert s["RunTransformer"]["ResultSelector"]["exited_0.$"] == "States.ArrayContains($.Containers[*].ExitCode, 0)"
    (rule,) = s["CheckTransformerExit"]["Choices"]
    assert rule["And"] == [
        {"Variable": "$.transformer_run.exited_0", "IsPresent": True},
        {"Variable": "$.transformer_run.exited_0", "BooleanEquals": True},
    ]
    assert s["CheckTransformerExit"]["Default"] == "TransformerExitNotZero"
    assert s["TransformerExitNotZero"]["Next"] == "MarkFailed"


def test_every_task_has_a_timeout_and_only_ecs_tasks_retry_after_30_seconds() -> None:
    for name, state in all_states(states()).items():
        if state["Type"] != "Task":
            continue
        assert state.get("TimeoutSeconds"), name
        retried = [r for r in state.get("Retry", []) if r["MaxAttempts"] > 0]
        if state["Resource"].endswith("ecs:runTask.sync"):
            assert retried == [
                {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 30, "MaxAttempts": 3, "BackoffRate": 2.0}
            ]
        else:
            assert all(r["IntervalSeconds"] < 30 for r in retried), name


#: What no retry can fix, per integration: a missing permission, object, bucket or cluster, or a
#: request the service refuses as malformed.
FAIL_AT_ONCE = {
    "aws-sdk:ecs:": {"Ecs.AccessDeniedException", "Ecs.ClientException", "Ecs.InvalidParameterException"},
    "ecs:runTask": {"ECS.AccessDeniedException", "ECS.ClientException", "ECS.InvalidParameterException"},
    "aws-sdk:s3:": {"S3.NoSuchKeyException", "S3.NoSuchBucketException", "S3.AccessDeniedException"},
    "sns:publish": {"SNS.AuthorizationErrorException", "SNS.NotFoundException"},
    "lambda:invoke": {"Lambda.AccessDeniedException", "Lambda.ResourceNotFoundException"},
    "dynamodb:putItem": {"DynamoDB.ResourceNotFoundException", "DynamoDB.AccessDeniedException"},
    "aws-sdk:dynamodb:": {"DynamoDb.ResourceNotFoundException", "DynamoDb.AccessDeniedException"},
}


def test_a_task_that_retries_fails_at_once_on_what_no_retry_can_fix() -> None:
    """A denied permission or a missing object fails its step at once (its error code then
    reaches the failure notification), instead of waiting out every retry first; retriers
    are tried in order, so the one that never retries comes first."""
    for name, state in all_states(states()).items():
        if state["Type"] != "Task" or not state.get("Retry"):
            continue
        first, *rest = state["Retry"]
        kind = next(k for k in FAIL_AT_ONCE if f":::{k}" in state["Resource"])
        assert first["MaxAttempts"] == 0, name
        assert {"States.Permissions", *FAIL_AT_ONCE[kind]} <= set(first["ErrorEquals"]), name
        assert rest and all(r["MaxAttempts"] > 0 for r in rest), name


def test_every_failure_goes_through_cleanup_and_cluster_deletion() -> None:
    s = states()
    work = [
        "CreateCluster",
        "RegisterValidatorTask",
        "RunValidator",
        "ReadVerdict",
        "RegisterTransformerTask",
        "RunTransformer",
    ]
    for name in work:
        assert [c["Next"] for c in s[name]["Catch"]] == ["MarkFailed"], name
    for mark in ("MarkAccepted", "MarkDuplicate", "MarkInvalid", "MarkFailed"):
        assert s[mark]["Next"] == "NeedsCleanup"
    assert s["NeedsCleanup"]["Default"] == "Cleanup"
    assert s["Cleanup"]["Next"] == "DeleteCluster"
    assert s["Cleanup"]["Catch"][0]["Next"] == "DeleteCluster"
    assert s["DeleteCluster"]["Next"] == s["DeleteCluster"]["Catch"][0]["Next"] == "RouteOutcome"
    assert s["NotifyPipelineFailure"]["Next"] == "WorkflowFailed"
    assert s["WorkflowFailed"]["Type"] == "Fail"


def test_failure_messages_carry_execution_file_and_error() -> None:
    s = states()
    invalid = s["NotifyPipelineFailure"]["Parameters"]["Message.$"]
    infra = s["NotifyInfraFailure"]["Parameters"]["Message.$"]
    for message in (invalid, infra):
        assert "$$.Execution.Name" in message and "$.file" in message
    assert "$.result.verdict.summary" in invalid
    assert "$.error.Cause" in infra


def test_substitutions_are_the_documented_ones() -> None:
    names = set(re.findall(r"\$\{(\w+)\}", DEFINITION.read_text()))
    documented = (REPO / "docs" / "aws.md").read_text()
    for name in names:
        assert f"${{{name}}}" in documented, f"${{{name}}} is not documented in docs/aws.md"


def worst_case_seconds(state: dict) -> float:
    """A Task's longest run: every attempt of every retrier times out, with every back-off wait."""
    if state["Type"] == "Parallel":
        own = max(longest_path(b["States"], b["StartAt"]) for b in state["Branches"])
    elif state["Type"] == "Task":
        own = state["TimeoutSeconds"]
    elif state["Type"] == "Wait":
        raise AssertionError("a Wait state needs its own budget")
    else:
        return 0
    attempts, waits = 1, 0.0
    for retrier in state.get("Retry", []):
        count, interval, rate = (
            retrier.get("MaxAttempts", 3),
            retrier.get("IntervalSeconds", 1),
            retrier.get("BackoffRate", 2.0),
        )
        attempts += count
        waits += sum(min(interval * rate**k, retrier.get("MaxDelaySeconds", float("inf"))) for k in range(count))
    return own * attempts + waits


def longest_path(machine: dict[str, dict], start: str) -> float:
    def successors(state: dict) -> set[str]:
        found = {c["Next"] for c in state.get("Choices", [])} | {c["Next"] for c in state.get("Catch", [])}
        return found | {state[k] for k in ("Next", "Default") if k in state}

    memo: dict[str, float] = {}

    def walk(name: str) -> float:
        if name not in memo:
            state = machine[name]
            memo[name] = worst_case_seconds(state) + max((walk(n) for n in successors(state)), default=0)
        return memo[name]

    return walk(start)


def test_the_worst_case_of_every_path_ends_before_the_execution_timeout() -> None:
    """A timed-out execution runs no cleanup: task timeouts × attempts + waits must fit the budget."""
    machine = json.loads(DEFINITION.read_text())
    worst = longest_path(machine["States"], machine["StartAt"])
    assert worst < machine["TimeoutSeconds"], f"worst case {worst:.0f} s ≥ {machine['TimeoutSeconds']} s"


def test_cleanup_deregisters_then_deletes_each_task_definition() -> None:
    for branch in states()["Cleanup"]["Branches"]:
        s = branch["States"]
        first = s[branch["StartAt"]]
        assert first["Resource"].endswith("ecs:deregisterTaskDefinition") and first["ResultPath"] is None
        delete = s[first["Next"]]
        assert delete["Resource"].endswith("ecs:deleteTaskDefinitions")
        assert delete["Parameters"]["TaskDefinitions.$"] == first["Parameters"]["TaskDefinition.$"].join(
            ["States.Array(", ")"]
        )


def test_an_infrastructure_failure_says_how_to_reprocess_the_file() -> None:
    """The execution ends in a Fail state after cleanup, so a redrive repeats the failure: the message
    gives the command that starts a new execution with the same input instead."""
    message = states()["NotifyInfraFailure"]["Parameters"]["Message.$"]
    assert "redrive the execution" not in message
    assert "aws stepfunctions start-execution --state-machine-arn {}" in message
    assert "describe-execution --execution-arn {} --query input" in message
    assert message.endswith("$$.StateMachine.Id, $$.Execution.Id)")


def test_the_ephemeral_cluster_says_container_insights_explicitly() -> None:
    """Not left to the account's default: enabled there, every short-lived cluster would bill its metrics."""
    parameters = states()["CreateCluster"]["Parameters"]
    assert parameters["Settings"] == [{"Name": "containerInsights", "Value": "disabled"}]


def test_every_infrastructure_failure_is_recorded_in_the_batch_history_first() -> None:
    """The notification and the history tell the same failure: every way into the notification
    passes the recording states, whose failure never stops the notification."""
    s = all_states(states())
    into = {
        name
        for name, state in s.items()
        for target in [state.get("Next"), state.get("Default")]
        + [c["Next"] for c in state.get("Catch", []) + state.get("Choices", [])]
        if target == "NotifyInfraFailure"
    }
    assert into == {"RecordFailureUnderBatch", "RecordFailureInHistory"}
    for name in into:
        assert s[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.record_error", "Next": "NotifyInfraFailure"}
        ]
    assert s["RecordFailure"]["Parameters"] == {"at.$": "$$.State.EnteredTime"}  # one time for both items
    (rule,) = s["FailureOfABatch"]["Choices"]
    assert rule["And"][0] == {"Variable": "$.result.verdict.batch_id", "IsPresent": True}  # the guard first
    assert rule["Next"] == "RecordFailureUnderBatch" and s["FailureOfABatch"]["Default"] == "RecordFailureInHistory"
    assert states()["GenerateExecutionParameters"]["Parameters"]["result"] == {"verdict": {"batch_id": ""}}


def test_a_recorded_failure_is_a_run_item_as_the_ledger_writes_and_reads_it() -> None:
    """The state machine writes the ledger's run items itself: the same attributes, of the same
    types, as `run_items` (what `orderpipe batches` reads); under a batch, both items in one
    transaction, identical but for their key, as the ledger writes them."""
    from orderpipe.adapters.dynamodb_retract import run_items
    from orderpipe.ports import RunRecord

    history, under_batch = run_items(RunRecord("b" * 64, "o.csv", "failed", 0, (), "t0", "t1", "m"))
    s = states()
    together = s["RecordFailureUnderBatch"]
    assert together["Resource"].endswith(":::aws-sdk:dynamodb:transactWriteItems")
    first, second = (put["Put"] for put in together["Parameters"]["TransactItems"])
    assert first["TableName"] == second["TableName"] == "${LedgerTable}"
    for item, expected in (
        (s["RecordFailureInHistory"]["Parameters"]["Item"], history),
        (first["Item"], history),
        (second["Item"], under_batch),
    ):
        assert list(item) == list(expected)
        for attribute, value in item.items():
            assert next(iter(value)).removesuffix(".$") == next(iter(expected[attribute])), attribute
        assert item["status"] == {"S": "failed"} and item["rows"] == {"N": "0"} and item["dates"] == {"L": []}
        assert item["finished_at"] == {"S.$": "$.failed.at"}
        assert item["message"]["S.$"].startswith("States.Format('{}: {} (execution {})', $.error.Error, $.error.Cause")
    assert {k: v for k, v in first["Item"].items() if k != "pk"} == {
        k: v for k, v in second["Item"].items() if k != "pk"
    }
    assert (first["Item"]["pk"], second["Item"]["pk"]) == (
        {"S": "RUN"},
        {"S.$": "States.Format('RUNS#{}', $.result.verdict.batch_id)"},
    )
    assert s["RecordFailureInHistory"]["Parameters"]["Item"]["batch_id"] == {"S": ""}


def test_a_file_over_s3s_copy_limit_is_copied_in_parts_by_the_copy_function() -> None:
    """CopyObject copies at most 5 GiB: a larger file (by the size the trigger gave; none given:
    one request, as before) is archived or quarantined by the copy function, then deleted from
    input/ as any other; a failed copy is an infrastructure failure, the file kept."""
    s = states()
    assert (
        s["GenerateExecutionParameters"]["Parameters"]["large_copy_bytes.$"]
        == "States.StringToJson('${LargeCopyBytes}')"
    )
    for choose, copy, small, after in (
        ("ChooseArchiveCopy", "CopyLargeFileToArchive", "ArchiveFile", "ChooseSourceDeletion"),
        ("ChooseQuarantineCopy", "CopyLargeFileToQuarantine", "QuarantineFile", "ChooseQuarantinedDeletion"),
    ):
        (rule,) = s[choose]["Choices"]
        assert rule["And"] == [
            {"Variable": "$.input.size", "IsPresent": True},
            {"Variable": "$.input.size", "IsNumeric": True},
            {"Variable": "$.input.size", "NumericGreaterThanPath": "$.large_copy_bytes"},
        ]
        assert (rule["Next"], s[choose]["Default"]) == (copy, small)
        task = s[copy]
        assert (
            task["Resource"].endswith(":::lambda:invoke") and task["Parameters"]["FunctionName"] == "${CopyFunctionArn}"
        )
        assert task["Parameters"]["Payload"]["target.$"] == "$.result.verdict.archive_key"
        assert task["Next"] == s[small]["Next"] == after
        assert task["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}]
    targets = {rule["Next"] for rule in s["RouteOutcome"]["Choices"]}
    assert targets == {"ChooseArchiveCopy", "ChooseQuarantineCopy"}
