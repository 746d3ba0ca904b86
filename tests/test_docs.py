"""The README's commands run as shown: each `$ orderpipe …` line of its console examples (and
the shell lines that call orderpipe) runs in order on a fresh home with the sample files, exits
as its `# exit N` comment says (0 without one), and prints the output shown under it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from orderpipe.core.meaning import checked_with
from orderpipe.core.rules import DEFAULT_CATEGORIES
from orderpipe.core.shape import SEED_SHAPE
from tests.conftest import REPO

SHOWN_HOME = "~/.orderpipe"


@dataclass
class Example:
    command: str
    exit_code: int
    output: list[str]


def examples(markdown: str) -> list[Example]:
    found: list[Example] = []
    for language, body in re.findall(r"```(\w*)\n(.*?)```", markdown, flags=re.S):
        for line in body.splitlines():
            if language == "console" and line.startswith("$ "):
                command, _, comment = line[2:].partition("#")
                code = re.match(r"\s*exit ([0-9]+)", comment)
                found.append(Example(command.strip(), int(code.group(1)) if code else 0, []))
            elif language == "console" and found:
                found[-1].output.append(line)
            elif language == "sh" and "orderpipe" in line.split("#")[0].replace("ORDERPIPE", ""):
                found.append(Example(line.split("  #")[0].strip(), 0, []))
    return found


def normalised(text: str) -> list[str]:
    """Times of day and processing times vary from run to run."""
    text = re.sub(r"\b[0-9]+\.[0-9]{2} s\b", "T s", text)
    return text.splitlines()


def test_the_readme_shows_commands() -> None:
    shown = examples((REPO / "README.md").read_text())
    assert len([e for e in shown if e.command.startswith("orderpipe")]) >= 6
    assert any(e.exit_code == 1 for e in shown)


def test_every_readme_command_runs_as_shown(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")}
    env |= {"ORDERPIPE_HOME": str(home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    for example in examples((REPO / "README.md").read_text()):
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", example.command],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == example.exit_code, (example.command, result.stdout, result.stderr)
        if example.output:
            actual = result.stdout.replace(str(home), SHOWN_HOME)
            assert normalised(actual) == normalised("\n".join(example.output)), example.command


@pytest.mark.parametrize(
    "page", ["README.md", "docs/troubleshooting.md", "docs/validation.md", "docs/api.md", "docs/dashboard.md"]
)
def test_docs_explain_themselves(page: str) -> None:
    """No pointer to a document that is not in the repository."""
    text = (REPO / page).read_text()
    assert not re.search(r"SPEC|§|\bthe issue\b|\bthe spec\b", text, flags=re.I), page


def _leaf_commands(group: click.Group, prefix: str = "") -> list[str]:
    names: list[str] = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            if command.invoke_without_command:  # a command of its own too (`batches`)
                names.append(prefix + name)
            names += _leaf_commands(command, f"{prefix}{name} ")
        else:
            names.append(prefix + name)
    return names


def test_the_readme_says_what_ctrl_c_does_to_every_command() -> None:
    """Each command under the bullet that names it, with the line it prints (they differ: a
    reading command has nothing to finish, `watch` drains and exits 0, `serve` stops serving)."""
    from orderpipe.cli import DRAINING, INTERRUPTED, STOPPED, main

    text = (REPO / "README.md").read_text()
    section = text[text.index("Ctrl-C (SIGINT) or SIGTERM, command by command") :].split("\n\n")[1]
    bullets = [" ".join(b.split()) for b in section.split("\n- ")]
    for command in _leaf_commands(main):
        said = DRAINING if command == "watch" else STOPPED.get(command, INTERRUPTED)
        shown = "`task …`" if command.startswith("task ") else f"`{command}`"
        [bullet] = [b for b in bullets if shown in b.split(":")[0]]
        assert said.split("…")[0].split(" (")[0][:40] in bullet, (command, bullet)
    assert "exits **0**" in next(b for b in bullets if b.startswith("`watch`"))


def test_the_validation_report_shown_is_what_validate_prints(tmp_path: Path) -> None:
    """docs/validation.md's example file, validated: the JSON it shows, field for field; the
    quarantined copy's report adds the batch id and the digest of the settings it was checked with."""
    text = (REPO / "docs" / "validation.md").read_text()
    csv_text = re.search(r"For this `bad.csv`:\n\n```csv\n(.*?)```", text, flags=re.S)
    shown = re.search(r"`orderpipe validate bad.csv --format json` prints \(exit 1\):\n\n```json\n(.*?)```", text, re.S)
    assert csv_text and shown
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_text.group(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")}
    env["ORDERPIPE_HOME"] = str(tmp_path / "h")
    orderpipe = str(Path(sys.executable).with_name("orderpipe"))
    result = subprocess.run([orderpipe, "validate", str(bad), "--format", "json"], env=env, capture_output=True,
                            text=True, check=False, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert json.loads(result.stdout) == json.loads(shown.group(1))
    subprocess.run([orderpipe, "run", str(bad)], env=env, capture_output=True, check=False, timeout=60)
    stored = json.loads((tmp_path / "h" / "rejected" / "bad.csv.report.json").read_text())
    digest = hashlib.sha256(bad.read_bytes()).hexdigest()
    assert stored.pop("checked_with") == checked_with(DEFAULT_CATEGORIES, SEED_SHAPE)
    assert stored == json.loads(shown.group(1)) | {"batch_id": digest}


#: Each command's arguments for a first run on a home that does not exist yet.
FIRST_RUN = {
    "run": ["data/sample/valid_order.csv"],
    "watch": [],
    "replay": ["--rejected"],
    "validate": ["data/sample/valid_order.csv"],
    "init": ["--preset", "seed"],
    "serve": ["--port", "0"],
    "batches": [],
    "batches retract": ["deadbeef00"],
    "status": [],
    "dismiss": ["deadbeef00"],
    "kpis daily": [],
    "kpis category": [],
    "kpis rebuild": [],
    "task validate": [],
    "task transform": [],
}


def _creates_a_home(command: str, home: Path) -> bool:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")}
    env |= {"ORDERPIPE_TASK_KEY": "input/a.csv", "ORDERPIPE_TASK_RESULT_KEY": "results/a.json"}
    orderpipe = str(Path(sys.executable).with_name("orderpipe"))
    args = [orderpipe, "--home", str(home), *command.split(), *FIRST_RUN[command]]
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=5)  # `watch` runs until stopped: by then it has made its home
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return home.is_dir()


def test_the_docs_name_every_command_that_creates_a_home(tmp_path: Path) -> None:
    from orderpipe.cli import main

    assert set(FIRST_RUN) == set(_leaf_commands(main)), "a new command: say whether it creates a home"
    creating = {"task" if c.startswith("task ") else c for c in FIRST_RUN if _creates_a_home(c, tmp_path / c)}
    assert creating == {"run", "watch", "replay", "kpis rebuild", "init", "task"}
    for page in ("README.md", "docs/troubleshooting.md"):
        [listed] = re.findall(r"only ((?:`[^`]+`(?:, | and ))+`[^`]+`) create a home", (REPO / page).read_text())
        assert set(re.findall(r"`([^`]+)`", listed)) == creating, page


PAGES_WITH_COMMANDS = ["README.md", "docs/troubleshooting.md", "docs/validation.md", "docs/input-formats.md",
                       "docs/semantics.md"]  # fmt: skip


@pytest.mark.parametrize("page", PAGES_WITH_COMMANDS)
def test_before_its_first_command_a_page_says_how_to_get_orderpipe_on_path(page: str) -> None:
    """`make demo` installs the command into .venv/bin/, which is not on PATH."""
    text = (REPO / page).read_text()
    first = re.search(r"`orderpipe [a-z-]|^\$ orderpipe ", text, flags=re.M)
    assert first is not None, page
    assert "source .venv/bin/activate" in " ".join(text[: first.start()].split()), page


def test_activating_the_virtualenv_puts_orderpipe_on_path() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(["bash", "-c", "source .venv/bin/activate && orderpipe --version"], cwd=REPO, env=env,
                            capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "orderpipe" in result.stdout


@pytest.mark.parametrize("page", PAGES_WITH_COMMANDS)
def test_every_speed_figure_says_when_it_was_measured(page: str) -> None:
    """A figure of time per GB, or of how long `make demo` takes, is a measurement: its
    paragraph gives the date it was measured on."""
    for paragraph in (REPO / page).read_text().split("\n\n"):
        if re.search(r"min per GB|min for 1 GB|make demo` took", paragraph):
            assert re.search(r"\b20[0-9]{2}-[0-9]{2}-[0-9]{2}\b", paragraph), (page, paragraph[:200])
