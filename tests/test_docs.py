"""The README's commands run as shown: each `$ orderpipe …` line of its console examples (and
the shell lines that call orderpipe) runs in order on a fresh home with the sample files, exits
as its `# exit N` comment says (0 without one), and prints the output shown under it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

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
