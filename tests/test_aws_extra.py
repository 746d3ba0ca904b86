"""`ORDERPIPE_BACKEND=aws` on the core install (`make demo` installs no boto3): every command
that would reach AWS says in one line to install the `aws` extra, and exits 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

ORDERPIPE = str(Path(sys.executable).with_name("orderpipe"))
AWS = {"ORDERPIPE_BACKEND": "aws", "ORDERPIPE_AWS_BUCKET": "demo-bucket"}


@pytest.fixture
def without_boto3(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python cannot import boto3 or botocore, as on the core install."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['boto3'] = None\nsys.modules['botocore'] = None\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")}
    return env | AWS | {"PYTHONPATH": str(shim), "ORDERPIPE_TASK_KEY": "input/a.csv", "ORDERPIPE_TASK_RESULT_KEY": "r"}


@pytest.mark.parametrize(
    "command",
    [
        ["kpis", "daily"],
        ["kpis", "category"],
        ["batches"],
        ["run", str(REPO / "data/sample/valid_order.csv")],
        ["kpis", "rebuild"],
        ["replay", "--rejected"],
        ["serve", "--port", "0"],
        ["task", "validate"],
        ["task", "transform"],
    ],
    ids=lambda command: " ".join(Path(a).name for a in command),
)
def test_the_aws_backend_without_the_extra_says_what_to_install(
    without_boto3: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    result = subprocess.run(
        [ORDERPIPE, "--home", str(tmp_path / "home"), *command],
        env=without_boto3,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "orderpipe: backend 'aws' needs the aws extra, which is not installed (no module named 'boto3'):"
        " pip install 'orderpipe[aws]' (in a checkout: .venv/bin/pip install -e '.[aws]'),"
        " or use the local backend (backend = 'local', the default)"
    ]
    assert result.stdout == ""


def test_the_shim_really_hides_boto3(without_boto3: dict[str, str]) -> None:
    probe = subprocess.run([sys.executable, "-c", "import boto3"], env=without_boto3, capture_output=True, check=False)
    assert probe.returncode == 1 and b"ModuleNotFoundError" in probe.stderr
