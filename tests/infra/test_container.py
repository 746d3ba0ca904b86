"""The container image's contract, checked without Docker (no engine here): what .dockerignore
lets through builds and installs the package, the entrypoint is `orderpipe task …`, the user is
not root, and the one Python version (the Dockerfile's base image) is the one used everywhere.
Also the deploy commands of the Makefile."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

from infra.orderpipe_stack import python_version

from tests.conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.split(None, 1)[:1] == [name]]


def context_files() -> list[str]:
    """The build context: the repository's files that .dockerignore lets through (last match wins)."""
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").rstrip("/")))
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    kept = []
    for path in listed:
        if not (REPO / path).is_file():
            continue
        included = True
        for negated, pattern in rules:
            parts = path.split("/")
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            if any(fnmatch.fnmatch(p, pattern) for p in prefixes):
                included = negated
        if included:
            kept.append(path)
    return kept


def test_the_build_context_is_enough_to_install_the_package(tmp_path: Path) -> None:
    files = context_files()
    assert "pyproject.toml" in files and "src/orderpipe/tasks.py" in files
    assert not any(f.startswith(("tests/", "infra/", ".venv/", "data/")) for f in files)
    context = tmp_path / "context"
    for name in files:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, context / name)
    for copied in instructions("COPY"):
        if not copied.startswith("--from"):
            for source in copied.split()[:-1]:
                assert (context / source).exists(), f"COPY {source}: not in the build context"
    # setuptools builds the source distribution from the context alone (what `pip install .` starts with).
    build = "from setuptools import build_meta as b; print(b.build_sdist('dist'))"
    built = subprocess.run([sys.executable, "-c", build], cwd=context, capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    with tarfile.open(context / "dist" / built.stdout.split()[-1]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"src/orderpipe/tasks.py", "src/orderpipe/aws.py", "src/orderpipe/core/validate.py"} <= names
    assert "src/orderpipe.egg-info/entry_points.txt" in names
    scripts = tomllib.loads((context / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"orderpipe": "orderpipe.__main__:entry"}


def test_the_entrypoint_runs_orderpipe_task_as_the_state_machine_asks() -> None:
    (entrypoint,) = instructions("ENTRYPOINT")
    machine = json.loads((REPO / "step_functions" / "MainStepFn.json").read_text())["States"]
    for state, command in (("RegisterValidatorTask", "validate"), ("RegisterTransformerTask", "transform")):
        (container,) = machine[state]["Parameters"]["ContainerDefinitions"]
        assert [*json.loads(entrypoint), *container["Command"]] == ["orderpipe", "task", command]


def test_the_image_runs_as_a_non_root_user() -> None:
    final_stage = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    users = [line.split()[1] for line in final_stage.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), users


def test_one_python_version_pinned_in_one_place() -> None:
    (image,) = [a for a in instructions("ARG") if a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:\d+\.\d+-slim@sha256:[0-9a-f]{64}", image), image
    assert instructions("FROM") == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]  # no other base image
    version = python_version()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == f">={version}"
    assert project["tool"]["mypy"]["python_version"] == version
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == version, "the development interpreter"


def test_deploys_use_a_pinned_cdk_cli_ask_before_widening_iam_and_bootstrap_is_a_target() -> None:
    makefile = (REPO / "Makefile").read_text()
    (cli,) = re.findall(r"^CDK := .*$", makefile, re.MULTILINE)
    assert re.search(r"aws-cdk@\d+\.\d+\.\d+$", cli), cli
    deploy = makefile.split("\ndeploy:", 1)[1].split("\n\n", 1)[0]
    assert "--require-approval never" not in deploy and "--require-approval $(APPROVAL)" in deploy
    assert re.search(r"^APPROVAL \?= broadening$", makefile, re.MULTILINE)
    assert re.search(r'^bootstrap: .*\n\t(PATH=".*?" )?\$\(CDK\) bootstrap ', makefile, re.MULTILINE)
