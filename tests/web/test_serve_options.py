"""`orderpipe serve`'s options, the real command: a token must pass unchanged through a URL, a
cookie and a header, or the command refuses it at start (from --token and from the variable);
on a wildcard address it prints addresses that answer, and any address of this machine is a
good Host; --allow-host and --cors-origin are written as the headers they must match. Every
connection stays on 127.0.0.0/8."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from orderpipe.cli import main
from orderpipe.web.security import Guard
from tests.web.conftest import ORDERPIPE, fill, serving

TOKEN = "0123456789abcdef0123"
EVERY_KIND = "Az09-._~Az09-._~Az09"  # each kind of character a token may have
BAD_TOKENS = [
    "0123456789abcdéf0123",  # Latin-1, but not ASCII
    "0123456789abcdef€€€€",  # not even Latin-1: no header can carry it
    "0123456789abcdef+/==",  # base64: '+' reads as a space in a URL
    "0123456789abcdef;x=1",  # ';' ends a cookie
    "0123456789abcdef 0123",
    "0123456789abcdef\t0123",
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("serve-options")
    fill(tmp / "home", {}, tmp)
    return tmp / "home"


def refused(home: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`orderpipe serve ARGS`, which must stop at once (a server that starts is killed after 15 s)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")} | dict(env or {})
    try:
        return subprocess.run(
            [ORDERPIPE, "--home", str(home), "serve", "--port", "0", *args],
            capture_output=True, text=True, timeout=15, check=False, env=environ,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve {' '.join(args)} started instead of refusing")


def test_a_token_with_characters_a_url_cookie_or_header_cannot_carry_is_refused(home: Path) -> None:
    for token in BAD_TOKENS:
        for result in (refused(home, "--token", token), refused(home, env={"ORDERPIPE_SERVE_TOKEN": token})):
            assert result.returncode == 2, (token, result.stderr)
            assert "letters A-Z a-z, digits 0-9 and - . _ ~" in result.stderr, result.stderr
    with pytest.raises(ValueError, match="letters A-Z"):  # the rule holds for any guard, not only the CLI's
        Guard(token=BAD_TOKENS[1])


def test_a_token_of_every_allowed_kind_signs_in_by_url_cookie_and_header(home: Path) -> None:
    with serving(home, env={"ORDERPIPE_SERVE_TOKEN": EVERY_KIND}) as url:
        bearer = httpx.get(url + "/api/version", headers={"Authorization": f"Bearer {EVERY_KIND}"})
        with httpx.Client(base_url=url) as browser:
            entry = browser.get(f"/?token={EVERY_KIND}")
            data = browser.get("/api/kpis/daily")
    assert bearer.status_code == 200
    assert entry.status_code == 303 and data.status_code == 200


@contextmanager
def announced(home: Path, *args: str) -> Iterator[list[str]]:
    """`orderpipe serve ARGS` running; yields its lines up to the first with a URL, and the next
    one if that line says it is on every address."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")}
    process = subprocess.Popen(
        [ORDERPIPE, "--home", str(home), "serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        lines = [process.stdout.readline()]
        while lines[-1] and "http://" not in lines[-1]:
            lines.append(process.stdout.readline())
        if "every address" in lines[-1]:
            lines.append(process.stdout.readline())
        yield lines
    finally:
        process.terminate()
        process.wait(10)


def test_a_wildcard_address_prints_addresses_that_answer(home: Path) -> None:
    with announced(home, "--host", "0.0.0.0", "--token", TOKEN, "--allow-host", "Kpis.Example.com.") as lines:
        urls = re.findall(r"http://\S+/", lines[-2])
        assert "0.0.0.0" not in lines[-2] and urls and urls[0].startswith("http://127.0.0.1:"), lines
        assert "--allow-host" in lines[-1] and "?token=" in lines[-1], lines
        port = int(urls[0].rsplit(":", 1)[1].rstrip("/"))
        auth = {"Authorization": f"Bearer {TOKEN}"}

        def status(address: str, host: str) -> int:
            return httpx.get(f"http://{address}:{port}/api/version", headers={**auth, "Host": host}).status_code

        assert status("127.0.0.1", f"127.0.0.1:{port}") == 200
        assert status("127.0.0.2", f"127.0.0.2:{port}") == 200  # an address of this machine: no --allow-host
        assert status("127.0.0.2", f"127.0.0.3:{port}") == 400  # not the address this connection came to
        assert status("127.0.0.2", f"kpis.example.com:{port}") == 200  # the --allow-host name, as browsers send it
        refused = httpx.get(f"http://127.0.0.2:{port}/api/version", headers={**auth, "Host": "other.example"})
        assert refused.status_code == 400 and "--allow-host" in refused.json()["error"]
    assert f"http://kpis.example.com:{port}/" in urls
    for url in urls:  # each printed address is one of this machine's: it can be bound (nothing is sent)
        address = re.sub(r"^http://\[?|\]?:\d+/$", "", url)
        if address != "kpis.example.com":
            with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
                probe.bind((address, 0))


def test_a_loopback_address_other_than_127_0_0_1_answers(home: Path) -> None:
    with announced(home, "--host", "127.0.0.2") as lines:
        [url] = re.findall(r"http://\S+/", lines[-1])
        assert url.startswith("http://127.0.0.2:")
        assert httpx.get(url + "api/version").status_code == 200


def test_allow_host_and_cors_origin_are_written_as_browsers_send_them(home: Path) -> None:
    with serving(home, "--allow-host", "BÜCHER.example", "--cors-origin", "HTTPS://Reports.Example:443/") as url:
        idn = httpx.get(url + "/api/version", headers={"Host": "xn--bcher-kva.example"})
        cors = httpx.get(url + "/api/version", headers={"Origin": "https://reports.example"})
    assert idn.status_code == 200
    assert cors.headers.get("access-control-allow-origin") == "https://reports.example"
    for option, value in [
        ("--allow-host", "http://kpis.example.com/"),
        ("--allow-host", "kpis.example.com:8000"),
        ("--allow-host", "kpis example"),
        ("--cors-origin", "https://reports.example/dashboard"),
        ("--cors-origin", "reports.example"),
        ("--cors-origin", "ftp://reports.example"),
    ]:
        result = refused(home, option, value)
        assert result.returncode == 2 and option in result.stderr, (option, value, result.stderr)


def test_the_help_says_what_allow_host_takes() -> None:
    text = " ".join(CliRunner().invoke(main, ["serve", "--help"]).stdout.split())
    assert "A DNS name that leads here" in text and "IP addresses need none" in text
    assert "letters, digits, - . _ ~" in text
