"""The state machine definition: valid ASL, and the shape SPEC §5 asks for."""

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


def test_the_path_of_a_valid_file() -> None:
    s = states()
    path, name = [], "GenerateExecutionParameters"
    while name:
        path.append(name)
        state = s[name]
        name = state["Choices"][0]["Next"] if state["Type"] == "Choice" else state.get("Next")  # the valid branch
    assert path == [
        "GenerateExecutionParameters",
        "CreateCluster",
        "RegisterValidatorTask",
        "RunValidator",
        "ReadVerdict",
        "CheckVerdict",
        "RegisterTransformerTask",
        "RunTransformer",
        "MarkAccepted",
        "Cleanup",
        "DeleteCluster",
        "RouteOutcome",
        "ArchiveFile",
        "ChooseSourceDeletion",
        "DeleteSourceFile",
        "NotifySuccess",
    ]


def test_every_task_has_a_timeout_and_only_ecs_tasks_retry_after_30_seconds() -> None:
    for name, state in all_states(states()).items():
        if state["Type"] != "Task":
            continue
        assert state.get("TimeoutSeconds"), name
        if state["Resource"].endswith("ecs:runTask.sync"):
            assert state["Retry"] == [
                {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 30, "MaxAttempts": 3, "BackoffRate": 2.0}
            ]
        else:
            assert all(r["IntervalSeconds"] < 30 for r in state.get("Retry", [])), name


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
        assert s[mark]["Next"] == "Cleanup"
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
