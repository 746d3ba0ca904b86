"""Test-only bridges over gaps of moto 5.2.5's Step Functions interpreter (pinned: check them
again before moving to another moto version). Applied in-process: the ThreadedMotoServer
serves from the test process, so patching its classes changes what the server does.

1. `aws-sdk:ecs:*` and `ecs:runTask.sync` pass AWS's PascalCase parameters (`Cluster`,
   `ContainerDefinitions`…) to boto3 unconverted (boto3's ECS API is camelCase), and return
   `aws-sdk:ecs:*` results camelCase where AWS returns PascalCase (`$.Cluster.ClusterArn`). We
   convert both ways with botocore's own service model (structure members only: map keys like
   `awslogs-group` and environment values stay as written).
2. `stop_task` cannot record a container's exit code and `.sync` ignores exit codes. The test
   ECS agent records each task's exit code in `EXIT_CODES`; the `.sync` resolver fails a
   stopped task with a non-zero exit with `States.TaskFailed`, as AWS does for an essential
   container (one container per task), and describes a task that exited 0 with that exit code
   on its container, as AWS does.
3. S3 CopyObject's `CopySource` must be URL-encoded on AWS (the trigger encodes it); botocore,
   which moto's interpreter calls, encodes a string CopySource again, so we decode it first.
4. `aws-sdk:s3:getObject` leaves `Body` a stream (AWS gives the text): we read it.
5. A retried `ecs:runTask.sync` fails at once with `States.Timeout`: the interpreter reuses the
   first attempt's task-token callback endpoint, which it interrupted when that attempt ended.
   Each attempt gets a fresh endpoint here.
6. `lambda:invoke` needs Docker to run a function in moto. Here a function's handler (its image
   command, `module.function`) runs in a local subprocess with the function's environment, kept
   warm for the next invocation as Lambda keeps an execution environment, under
   its limits as Lambda applies them: killed when its resident memory passes MemorySize, or
   when it runs past Timeout. As Lambda reports them, Step Functions then sees
   `Runtime.OutOfMemory` or `Sandbox.Timedout` (moto would name both `Exception`), and an
   exception the handler raised by its class name.
"""

from __future__ import annotations

import datetime
import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import unquote

import botocore.session
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk,
    state_task_service_ecs,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.backend import execution_worker

EXIT_CODES: dict[str, int] = {}
#: Added to every function's environment (a test's scratch folder); each invocation's outcome.
FUNCTION_ENV: dict[str, str] = {}
INVOCATIONS: list[tuple[str, str]] = []
_RUNNER = """
import importlib, json, sys
module, _, name = sys.argv[1].rpartition(".")
function = None
for line in sys.stdin:
    try:
        if function is None:
            function = getattr(importlib.import_module(module), name)
        answer = {"result": function(json.loads(line), None)}
    except Exception as exc:
        answer = {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc)}}
    sys.stdout.write(json.dumps(answer) + "\\n")
    sys.stdout.flush()
"""
_model = botocore.session.get_session().get_service_model("ecs")
_applied = False


def _convert(value: Any, shape: Any) -> Any:
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        members = {name.lower(): (name, member) for name, member in shape.members.items()}
        out = {}
        for key, item in value.items():
            name, member = members.get(key.lower(), (key, None))
            out[name] = _convert(item, member)
        return out
    if shape.type_name == "list" and isinstance(value, list):
        return [_convert(v, shape.member) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: _convert(v, shape.value) for k, v in value.items()}
    return value


def _pascal(value: Any, shape: Any) -> Any:
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        return {key[0].upper() + key[1:]: _pascal(item, shape.members.get(key)) for key, item in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_pascal(v, shape.member) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: _pascal(v, shape.value) for k, v in value.items()}
    return value


def to_ecs_parameters(action: str, parameters: dict[str, Any]) -> dict[str, Any]:
    operation = _model.operation_model(action[0].upper() + action[1:])
    return _convert(parameters, operation.input_shape)


def _resident_mb(pid: int) -> float:
    try:
        status = open(f"/proc/{pid}/status").read()  # noqa: SIM115
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)


#: Warm execution environments, as Lambda keeps them: idle runner processes of one function and
#: environment, each serving one invocation at a time (a killed one is never reused).
_IDLE: dict[tuple[str, frozenset[tuple[str, str]]], list[subprocess.Popen[bytes]]] = {}
_POOL_LOCK = threading.Lock()


def _environment(handler: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """An idle runner for this handler and environment, or a new one (a cold start). Runners of
    any other environment (an earlier test's) are stopped: they would only hold memory."""
    key = (handler, frozenset(env.items()))
    with _POOL_LOCK:
        for other in [k for k in _IDLE if k != key]:
            for child in _IDLE.pop(other):
                child.kill()
        if _IDLE.get(key):
            return _IDLE[key].pop()
    return subprocess.Popen(
        [sys.executable, "-c", _RUNNER, handler],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def invoke_function(parameters: dict, region: str, state_credentials: Any) -> dict[str, Any]:
    """One invocation, as Lambda answers it to Step Functions (see 6. above)."""
    client = boto_client_for(service="lambda", region=region, state_credentials=state_credentials)
    config = client.get_function(FunctionName=parameters["FunctionName"])["Configuration"]
    handler = config["ImageConfigResponse"]["ImageConfig"]["Command"][0]
    env = {**os.environ, **config.get("Environment", {}).get("Variables", {}), **FUNCTION_ENV}
    payload = parameters.get("Payload") or b"{}"
    event = json.loads(payload if isinstance(payload, bytes) else payload.read())
    child = _environment(handler, env)
    assert child.stdin is not None and child.stdout is not None
    line, crash = b"", ""
    try:
        child.stdin.write(json.dumps(event).encode() + b"\n")
        child.stdin.flush()
    except OSError:
        crash = "Runtime.ExitError"
    deadline = time.monotonic() + config["Timeout"]
    while not crash and not line:
        if select.select([child.stdout], [], [], 0.02)[0]:
            line = child.stdout.readline()
            if not line:
                crash = "Runtime.ExitError"
        elif _resident_mb(child.pid) > config["MemorySize"]:
            crash = "Runtime.OutOfMemory"
        elif time.monotonic() > deadline:
            crash = "Sandbox.Timedout"
    if crash:
        child.kill()
        child.wait()
        INVOCATIONS.append((handler, crash))
        message = {
            "Runtime.ExitError": "Runtime exited without providing a reason",
            "Runtime.OutOfMemory": "Runtime exited with error: signal: killed",
            "Sandbox.Timedout": f"Task timed out after {config['Timeout']:.2f} seconds",
        }[crash]
        return {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": {"errorType": crash, "errorMessage": message},
        }
    with _POOL_LOCK:
        _IDLE.setdefault((handler, frozenset(env.items())), []).append(child)
    answer = json.loads(line)
    if "result" in answer:
        INVOCATIONS.append((handler, "ok"))
        return {"StatusCode": 200, "Payload": answer["result"]}
    INVOCATIONS.append((handler, answer["error"]["errorType"]))
    return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": answer["error"]}


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True

    sdk = state_task_service_aws_sdk.StateTaskServiceAwsSdk
    original_sdk_eval = sdk._eval_service_task

    def sdk_eval(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any):
        if self._get_boto_service_name() == "s3" and "CopySource" in normalised_parameters:
            normalised_parameters["CopySource"] = unquote(normalised_parameters["CopySource"])
        if self._get_boto_service_name() != "ecs":
            original_sdk_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
            result = env.stack[-1]
            if isinstance(result, dict) and hasattr(result.get("Body"), "read"):
                result["Body"] = result["Body"].read().decode("utf-8")
            return None
        converted = to_ecs_parameters(self.resource.api_action, normalised_parameters)
        normalised_parameters.clear()
        normalised_parameters.update(converted)
        original_sdk_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        action = self.resource.api_action
        operation = _model.operation_model(action[0].upper() + action[1:])
        env.stack[-1] = _pascal(env.stack[-1], operation.output_shape)

    sdk._eval_service_task = sdk_eval

    ecs = state_task_service_ecs.StateTaskServiceEcs
    original_pattern = ecs._eval_integration_pattern

    def fresh_endpoint_per_attempt(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        token = env.states.context_object.context_object_data["Task"]["Token"]
        env.callback_pool_manager._pool.pop(token, None)
        env.callback_pool_manager.add(token)
        return original_pattern(self, env, *args, **kwargs)

    ecs._eval_integration_pattern = fresh_endpoint_per_attempt
    describe_output = _model.operation_model("DescribeTasks").output_shape

    def ecs_eval(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any):
        """RunTask, answered as AWS does for `.sync`: the PascalCase description of the task."""
        client = boto_client_for(
            region=resource_runtime_part.region, service="ecs", state_credentials=state_credentials
        )
        response = client.run_task(**to_ecs_parameters("runTask", normalised_parameters))
        task = response["tasks"][0]
        described = client.describe_tasks(cluster=task["clusterArn"], tasks=[task["taskArn"]])
        described.pop("ResponseMetadata", None)
        env.stack.append(_pascal(described, describe_output))

    def ecs_resolver(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ):
        client = boto_client_for(
            region=resource_runtime_part.region, service="ecs", state_credentials=state_credentials
        )
        submitted = env.stack.pop()["Tasks"][0]

        def resolve() -> Any:
            described = client.describe_tasks(cluster=submitted["ClusterArn"], tasks=[submitted["TaskArn"]])
            task = described["tasks"][0]
            if task["lastStatus"] != "STOPPED":
                return None
            code = EXIT_CODES.get(task["taskArn"], 0)
            if code == 0:  # AWS describes a stopped task's container with its exit code (moto lists none)
                containers = task.get("containers") or [{"name": "orderpipe", "lastStatus": "STOPPED"}]
                task["containers"] = [container | {"exitCode": code} for container in containers]
                return _pascal(task, describe_output.members["tasks"].member)
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(
                        taskFailedEventDetails=TaskFailedEventDetails(
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                            error=StatesErrorNameType.StatesTaskFailed.to_name(),
                            cause=f"Essential container in task exited with code {code}",
                        )
                    ),
                )
            )

        return resolve

    ecs._eval_service_task = ecs_eval
    ecs._build_sync_resolver = ecs_resolver
    lambda_eval_utils._invoke_lambda_function = invoke_function

    worker = execution_worker.ExecutionWorker
    original_environment = worker._get_evaluation_environment

    def start_time_as_text(self: Any) -> Any:
        env = original_environment(self)
        execution = env.states.context_object.context_object_data["Execution"]
        started = execution["StartTime"]
        if hasattr(started, "astimezone"):
            utc = started.astimezone(datetime.UTC)
            execution["StartTime"] = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
        return env

    worker._get_evaluation_environment = start_time_as_text
