"""Real servers for the API tests: uvicorn on a free port (in a thread, or `orderpipe serve` as
a process), over a home filled by the real pipeline."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from orderpipe.bootstrap import Reader, open_pipeline, open_reader
from orderpipe.config import load_settings
from orderpipe.web.connections import REQUEST_TIMEOUT, SEND_TIMEOUT
from orderpipe.web.serve import Limits, listen, server_config
from tests.conftest import REPO, order, run_file, write

ORDERPIPE = str(Path(sys.executable).with_name("orderpipe"))
CHROMIUM = os.environ.get("DASHBOARD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = os.environ.get("DASHBOARD_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
WAIT = 15


@contextmanager
def running(
    app: Any,
    bounds: Limits | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
    send_timeout: float = SEND_TIMEOUT,
) -> Iterator[str]:
    """`app` on uvicorn at a free port of 127.0.0.1, in a thread, with `serve`'s own socket
    (TCP_NODELAY: without it each request waits ~40 ms for a delayed ACK) and settings; yields
    the base URL."""
    import uvicorn

    bounds = bounds or Limits(connections=50, backlog=32)
    sock = listen("127.0.0.1", 0, bounds.backlog)
    server = uvicorn.Server(server_config(app, False, bounds, request_timeout, send_timeout))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def serving(home: Path, *args: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """The real `orderpipe serve --port 0` as a process; yields the URL it announces. Its
    ORDERPIPE_* variables are `env`'s only (none inherited: a test's AWS settings stay its own)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")} | dict(env or {})
    process = subprocess.Popen(
        [ORDERPIPE, "--home", str(home), "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environ,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"http://\S+/", line)
    try:
        assert found, f"no URL announced: {line}{process.stdout.read() if process.poll() is not None else ''}"
        yield found.group(0).rstrip("/")
    finally:
        process.terminate()
        process.wait(10)


def fill(home: Path, env: Mapping[str, str], tmp: Path) -> None:
    """Two accepted files (the second corrects an order and adds a date), one rejected."""
    pipeline = open_pipeline(load_settings(home, environ=env))
    run_file(pipeline, REPO / "data" / "sample" / "valid_order.csv")
    run_file(pipeline, REPO / "data" / "sample" / "invalid_order.csv")
    run_file(
        pipeline,
        write(
            tmp / "more.csv",
            [
                order("O9", "C9", "2025-07-08", "Books", "P9", "2", "12.50", "true"),
                order("O10", "C1", "2025-07-08", "Toys", "P3", "1", "5.05"),
            ],
        ),
    )


def reader_of(home: Path, env: Mapping[str, str]) -> Reader:
    return open_reader(load_settings(home, environ=env))


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A filled home: folder + SQLite, or S3 + DynamoDB on moto's server."""
    env: dict[str, str] = request.getfixturevalue("aws_env") if request.param == "dynamodb" else {}
    home = tmp_path / "home"
    fill(home, env, tmp_path)
    return home, env


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = [str(p) for p in (Path(CHROMIUM), Path(DRIVER)) if not p.is_file()]
    if missing:
        pytest.fail(
            f"the dashboard's browser test needs Debian's chromium and chromium-driver, and {', '.join(missing)}"
            f" is missing: `make test` installs them as root; or run (as root) {INSTALL}",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--window-size=1280,800",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def wait_for(driver: Any, condition: Any, message: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(lambda d: condition(d), message)
