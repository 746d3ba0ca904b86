"""The emulator and its ECS agent, for the end-to-end tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.aws import moto_bridge
from tests.aws.emulated import EcsAgent


@pytest.fixture(scope="module")
def emulator(moto_server: str) -> Iterator[str]:
    httpx.post(f"{moto_server}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}})
    httpx.post(
        f"{moto_server}/moto-api/state-manager/set-transition",
        json={"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000}},
    )
    moto_bridge.apply()
    yield moto_server


@pytest.fixture
def agent(emulator: str, tmp_path: Path) -> Iterator[EcsAgent]:
    moto_bridge.FUNCTION_ENV["ORDERPIPE_HOME"] = str(tmp_path / "function")
    moto_bridge.INVOCATIONS.clear()
    worker = EcsAgent({"ORDERPIPE_HOME": str(tmp_path / "container")})
    worker.thread.start()
    yield worker
    worker.stop.set()
    worker.thread.join(5)
