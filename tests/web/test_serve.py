"""`orderpipe serve`, the real command: where it listens, who it answers, what it refuses."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import ORDERPIPE, fill, serving

TOKEN = "0123456789abcdef0123"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    fill(home, {}, tmp_path)
    return home


def test_serves_on_loopback_with_strict_headers(home: Path) -> None:
    with serving(home) as url:
        assert url.startswith("http://127.0.0.1:")
        page = httpx.get(url + "/")
        api = httpx.get(url + "/api/kpis/daily")
        refused = httpx.post(url + "/api/kpis/daily")
        rebound = httpx.get(url + "/api/kpis/daily", headers={"Host": "attacker.example:80"})
        assets = [httpx.get(url + src) for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)]
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for response in (page, api, refused, rebound):
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "access-control-allow-origin" not in response.headers
    assert api.status_code == 200
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    assert rebound.status_code == 400 and "host" in rebound.json()["error"]
    assert len(assets) >= 4 and all(a.status_code == 200 for a in assets)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text)  # nothing from elsewhere


def test_another_address_needs_a_token(home: Path) -> None:
    result = subprocess.run(
        [ORDERPIPE, "--home", str(home), "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=20, check=False,
        env={k: v for k, v in os.environ.items() if k != "ORDERPIPE_SERVE_TOKEN"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "token" in result.stderr and "--host 0.0.0.0" in result.stderr
    short = subprocess.run(
        [ORDERPIPE, "--home", str(home), "serve", "--token", "short"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert short.returncode == 2 and "at least 16 characters" in short.stderr


def test_a_token_is_required_of_every_request(home: Path) -> None:
    with serving(home, env={"ORDERPIPE_SERVE_TOKEN": TOKEN}) as url:
        bare = httpx.get(url + "/api/version")
        wrong = httpx.get(url + "/api/version", headers={"Authorization": "Bearer " + "x" * 20})
        bearer = httpx.get(url + "/api/version", headers={"Authorization": f"Bearer {TOKEN}"})
        with httpx.Client(base_url=url) as browser:
            entry = browser.get(f"/?token={TOKEN}&range=7d")
            page = browser.get(entry.headers["location"])
            data = browser.get("/api/kpis/daily")
    assert bare.status_code == 401 and wrong.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    assert bearer.status_code == 200
    assert entry.status_code == 303 and entry.headers["location"] == "/?range=7d"
    assert "HttpOnly" in entry.headers["set-cookie"] and "SameSite=Strict" in entry.headers["set-cookie"]
    assert page.status_code == 200 and data.status_code == 200


def test_cors_only_for_configured_origins(home: Path) -> None:
    with serving(home, "--cors-origin", "https://reports.example") as url:
        allowed = httpx.get(url + "/api/version", headers={"Origin": "https://reports.example"})
        other = httpx.get(url + "/api/version", headers={"Origin": "https://other.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://reports.example"
    assert "access-control-allow-origin" not in other.headers


def test_a_home_that_is_not_there_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [ORDERPIPE, "--home", str(tmp_path / "nowhere"), "serve", "--port", "0"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and "orderpipe run FILE" in result.stderr
