"""The dashboard's browser test cannot pass unseen: without Chromium it fails (it is never
skipped), and `make test` first installs Debian's chromium and chromium-driver when they are
missing, or stops and says what to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_the_browser_test_fails_without_a_browser(tmp_path: Path) -> None:
    environ = os.environ | {"DASHBOARD_CHROMIUM": str(tmp_path / "no-chromium"), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "tests/web/test_browser.py",
         "-k", "the_page_loads_clean"],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "skipped" not in out.lower(), out
    assert "1 error" in out and "no-chromium is missing" in out, out
    assert "apt-get install -y chromium chromium-driver" in out, out


def make(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("make")
    assert found, "make is needed to test the Makefile"
    environ = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(
        [found, "--no-print-directory", *args], cwd=REPO, env=environ | {"PATH": path},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_make_test_installs_the_browser_first() -> None:
    dry = make("-n", "test", path=os.environ["PATH"])
    lines = dry.stdout.splitlines()
    install = next(n for n, line in enumerate(lines) if "apt-get install -y -qq chromium chromium-driver" in line)
    tests = next(n for n, line in enumerate(lines) if "/pytest" in line)
    assert install < tests, dry.stdout


def test_make_test_stops_and_says_what_to_run_when_it_cannot_install(tmp_path: Path) -> None:
    """No chromium and no way to install it (no apt-get here, or not root): make stops, loudly."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "sh"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    result = make("browser", path=str(bin_dir))
    assert result.returncode != 0
    assert "chromium and chromium-driver" in result.stderr
    assert "apt-get update && apt-get install -y chromium chromium-driver" in result.stderr, result.stderr
