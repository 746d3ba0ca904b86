"""The sweeper on moto's server: what ended executions of this state machine left is deleted;
running executions and other state machines' names are left alone."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from orderpipe import aws

# A Wait keeps an execution RUNNING whether or not moto executes state machines.
WAITING = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}


def register(ecs: object, family: str) -> str:
    return ecs.register_task_definition(  # type: ignore[attr-defined]
        family=family,
        containerDefinitions=[{"name": "orderpipe", "image": "orderpipe:test", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]


def test_sweep_deletes_only_what_ended_executions_left(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sfn, ecs = boto3.client("stepfunctions"), boto3.client("ecs")
    machine = sfn.create_state_machine(
        name=f"sweep-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(WAITING),
        roleArn="arn:aws:iam::123456789012:role/states",
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", machine)
    monkeypatch.setenv("ORDERPIPE_EPHEMERAL_PREFIX", "Orderpipe_")  # the stack's name and `_`
    tag = uuid.uuid4().hex[:8]
    ended, running, foreign = f"timedout-{tag}", f"running-{tag}", f"other-{tag}"
    for name in (ended, running):
        sfn.start_execution(stateMachineArn=machine, name=name, input="{}")
    sfn.stop_execution(executionArn=machine.replace(":stateMachine:", ":execution:") + f":{ended}")
    for name in (ended, running, foreign):
        ecs.create_cluster(clusterName=f"Orderpipe_{name}")
    left = register(ecs, f"Orderpipe_validator-{ended}")
    ecs.deregister_task_definition(taskDefinition=left)  # deregistered, never deleted
    register(ecs, f"Orderpipe_validator-{ended}")
    register(ecs, f"Orderpipe_transformer-{ended}")
    kept = [register(ecs, f"Orderpipe_validator-{running}"), register(ecs, f"Orderpipe_transformer-{foreign}")]
    # Another stack's leftovers of an execution of the same name: its prefix is not this stack's.
    ecs.create_cluster(clusterName=f"Orderpipe-Staging_{ended}")
    kept.append(register(ecs, f"Orderpipe-Staging_validator-{ended}"))

    swept = aws.sweep(ecs=ecs, sfn=sfn)

    assert swept["clusters"] == [f"Orderpipe_{ended}"]
    assert len(swept["task_definitions"]) == 3
    status = {
        c["clusterName"]: c["status"]
        for c in ecs.describe_clusters(
            clusters=[*(f"Orderpipe_{n}" for n in (ended, running, foreign)), f"Orderpipe-Staging_{ended}"]
        )["clusters"]
    }
    assert status == {
        f"Orderpipe-Staging_{ended}": "ACTIVE",
        f"Orderpipe_{ended}": "INACTIVE",
        f"Orderpipe_{running}": "ACTIVE",
        f"Orderpipe_{foreign}": "ACTIVE",
    }
    for family in (f"Orderpipe_validator-{ended}", f"Orderpipe_transformer-{ended}"):
        for state in ("ACTIVE", "INACTIVE"):
            assert ecs.list_task_definitions(familyPrefix=family, status=state)["taskDefinitionArns"] == []
    for arn in kept:
        assert ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"] == "ACTIVE"
    # Leave the shared emulator as found: the end-to-end tests require no cluster or task definition.
    for name in (f"Orderpipe_{running}", f"Orderpipe_{foreign}", f"Orderpipe-Staging_{ended}"):
        ecs.delete_cluster(cluster=name)
    for arn in kept:
        ecs.deregister_task_definition(taskDefinition=arn)
    ecs.delete_task_definitions(taskDefinitions=kept)
