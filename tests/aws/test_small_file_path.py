"""The small-file path end to end on moto's server: the trigger routes a file up to the limit to
one invocation of the container's function (`orderpipe.task_lambda.handler`, really run by the
bridge against moto's S3 and DynamoDB), and a file the function cannot finish to the ECS tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.aws import moto_bridge
from tests.aws.emulated import EcsAgent, Stack, local_kpis
from tests.conftest import order, write

pytestmark = pytest.mark.slow
HANDLER = "orderpipe.task_lambda.handler"


def test_a_small_file_is_counted_by_one_invocation_like_a_local_run(agent: EcsAgent, tmp_path: Path) -> None:
    stack = Stack(agent.ecs.meta.endpoint_url, "small", tmp_path, small_file_bytes=1_000_000)
    path = write(
        tmp_path / "july orders.csv",
        [
            order("O1", "C1", "2025-07-06", "Electronics", "P1", "2", "199.99"),
            order("O2", "C2", "2025-07-06", "Books", "P2", "1", "29.99", "true"),
            order("O3", "C1", "2025-07-07", "Toys", "P3", "3", "5.10"),
        ],
    )
    (name,) = stack.trigger(stack.upload(path, "input/july orders.csv"))["started"]
    assert stack.wait(name)["status"] == "SUCCEEDED", (stack.messages("failure"), moto_bridge.INVOCATIONS)
    assert stack.kpis() == local_kpis([path], tmp_path / "local")
    assert stack.keys("input/") == [] and "processed/july orders.csv" in stack.keys("processed/")
    (message,) = stack.messages("success")
    assert message.startswith("accepted july orders.csv") and name in message
    assert moto_bridge.INVOCATIONS == [(HANDLER, "ok")]
    assert agent.commands == []  # no cluster, no task
    stack.assert_cleaned_up()

    # The same bytes again, under another name: a duplicate, archived, counted once.
    again = tmp_path / "again" / "copy.csv"
    again.parent.mkdir()
    again.write_bytes(path.read_bytes())
    (second,) = stack.trigger(stack.upload(again, "input/copy.csv"))["started"]
    assert stack.wait(second)["status"] == "SUCCEEDED"
    (message,) = stack.messages("success")
    assert message.startswith("duplicate copy.csv")
    assert stack.kpis() == local_kpis([path], tmp_path / "local-2")
    assert agent.commands == []


def test_an_invalid_small_file_is_quarantined_with_its_report(agent: EcsAgent, tmp_path: Path) -> None:
    stack = Stack(agent.ecs.meta.endpoint_url, "small-bad", tmp_path, small_file_bytes=1_000_000)
    path = write(tmp_path / "bad.csv", [order("O1"), order("O2", date="2025-02-30")])
    (name,) = stack.trigger(stack.upload(path, "input/bad.csv"))["started"]
    assert stack.wait(name)["status"] == "FAILED"
    assert stack.keys("rejected/") == ["rejected/bad.csv", "rejected/bad.csv.report.json"]
    (message,) = stack.messages("failure")
    assert "invalid-date" in message and "line 3" in message and name in message
    assert stack.kpis() == ([], [])
    assert moto_bridge.INVOCATIONS == [(HANDLER, "ok")] and agent.commands == []


def test_a_file_over_the_limit_takes_the_ecs_tasks(agent: EcsAgent, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", [order("O1"), order("O2")])
    stack = Stack(agent.ecs.meta.endpoint_url, "over", tmp_path, small_file_bytes=path.stat().st_size - 1)
    (name,) = stack.trigger(stack.upload(path, "input/o.csv"))["started"]
    assert stack.wait(name)["status"] == "SUCCEEDED", stack.messages("failure")
    assert moto_bridge.INVOCATIONS == [] and [c for c, _ in agent.commands] == ["validate", "transform"]
    stack.assert_cleaned_up()


def test_a_file_the_function_runs_out_of_memory_on_is_finished_by_the_ecs_tasks(
    agent: EcsAgent, tmp_path: Path
) -> None:
    """Lambda's smallest memory (128 MB) cannot hold the runtime and 40,000 rows: killed, the
    file goes to the ECS tasks, which count it exactly once."""
    rows = [
        order(f"O{i}", f"C{i % 97}", f"2025-07-{1 + i % 28:02d}", "Books", f"P{i % 13}", "1", "9.99")
        for i in range(40_000)
    ]
    path = write(tmp_path / "big.csv", rows)
    stack = Stack(
        agent.ecs.meta.endpoint_url, "oom", tmp_path, small_file_bytes=path.stat().st_size, function_memory_mb=128
    )
    (name,) = stack.trigger(stack.upload(path, "input/big.csv"))["started"]
    execution = stack.wait(name)
    assert execution["status"] == "SUCCEEDED", (stack.messages("failure"), moto_bridge.INVOCATIONS, agent.commands)
    assert moto_bridge.INVOCATIONS == [(HANDLER, "Runtime.OutOfMemory")]
    assert [c for c, _ in agent.commands] == ["validate", "transform"]
    assert json.loads(execution["output"])["small_file_error"]["Error"] == "Runtime.OutOfMemory"
    assert stack.kpis() == local_kpis([path], tmp_path / "local")
    stack.assert_cleaned_up()


def test_a_function_that_fails_is_retried_then_reported(agent: EcsAgent, tmp_path: Path) -> None:
    """An error the handler raises (here: its ledger table does not exist) is an infrastructure
    failure: retried twice, then notified; the file stays in input/ for another execution."""
    stack = Stack(
        agent.ecs.meta.endpoint_url, "small-broken", tmp_path, small_file_bytes=1_000_000, ledger_override="missing"
    )
    (name,) = stack.trigger(stack.upload(write(tmp_path / "o.csv", [order("O1")]), "input/o.csv"))["started"]
    assert stack.wait(name)["status"] == "FAILED"
    assert len(moto_bridge.INVOCATIONS) == 3 and all(outcome != "ok" for _, outcome in moto_bridge.INVOCATIONS)
    (message,) = stack.messages("failure")
    assert "o.csv" in message and name in message
    assert stack.keys("input/") == ["input/o.csv"] and agent.commands == []
    stack.assert_cleaned_up()
