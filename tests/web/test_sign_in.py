"""The deployed dashboard behind a sign-in: the page signs its user in to a Cognito user pool on
moto's server (a new account: its first password changed, an authenticator app set up, then a
later sign-in with a one-time code) in Debian's Chromium, and sends the access token with every
API request; API Gateway's JWT authorizer stands in front of the app (`jwt_authorizer`), so a
page that sent no token, or a wrong one, would show no KPI."""

from __future__ import annotations

import base64
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from orderpipe.web.app import create_app
from orderpipe.web.security import Guard
from orderpipe.web.sign_in import SignIn
from tests.web.conftest import fill, reader_of, running, wait_for
from tests.web.jwt_authorizer import JwtAuthorizer

USER = "ana@example.com"
FIRST_PASSWORD = "Temporary-pass-1!"
PASSWORD = "Chosen-password-22?"


def authenticator_code(secret: str) -> str:
    """What an authenticator app shows for `secret` now (RFC 6238: base32 key, SHA-1, 6 digits, 30 s)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    return TOTP(key, 6, SHA1(), 30, enforce_key_length=False).generate(time.time()).decode()


@pytest.fixture
def pool(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> SignIn:
    """A user pool as the stack makes it (MFA by app required, no self sign-up) with one account
    an administrator created; its app client allows the flows the page uses."""
    monkeypatch.setenv("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")  # moto then checks the codes
    cognito = boto3.client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName="orderpipe-users", MfaConfiguration="ON", UsernameAttributes=["email"])[
        "UserPool"
    ]["Id"]  # people sign in with their e-mail address; the pool names them by an id of its own
    cognito.set_user_pool_mfa_config(
        UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration="ON"
    )
    client = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="dashboard",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(UserPoolId=pool_id, Username=USER, TemporaryPassword=FIRST_PASSWORD)
    return SignIn(pool_id, client, f"{moto_server}/")


@pytest.fixture
def site(pool: SignIn, tmp_path: Path) -> Iterator[tuple[str, JwtAuthorizer]]:
    home = tmp_path / "home"
    fill(home, {}, tmp_path)
    app = create_app(lambda: reader_of(home, {}), guard=Guard(), sign_in=pool)
    gate = JwtAuthorizer(app, pool.endpoint, pool.user_pool_id, pool.client_id)
    with running(gate) as url:
        yield url, gate


def step(driver: Any) -> str:
    dialog = "document.querySelector('#sign-in')"
    return str(driver.execute_script(f"return {dialog}.open ? {dialog}.dataset.step : ''"))


def enter(driver: Any, field: str, value: str) -> None:
    box = driver.find_element("id", field)
    box.clear()
    box.send_keys(value)


def go_on(driver: Any, to: str) -> None:
    driver.find_element("id", "sign-in-next").click()
    wait_for(driver, lambda d: step(d) == to, f"the sign-in never reached {to or 'the dashboard'}: at {step(driver)!r}")


def shot(driver: Any, folder: Path, name: str) -> None:
    """A screenshot of the page as it is (copied to DASHBOARD_SCREENSHOTS_TO when set: docs/images)."""
    path = folder / name
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 5_000
    target = os.environ.get("DASHBOARD_SCREENSHOTS_TO")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


def revenue(driver: Any) -> str:
    return str(driver.execute_script("return document.querySelector('.tile[data-kpi=revenue] .value').textContent"))


def first_sign_in(driver: Any) -> str:
    """A new account's first sign-in: its password changed, an authenticator app set up; returns the app's key."""
    enter(driver, "sign-in-user", USER)
    enter(driver, "sign-in-password", FIRST_PASSWORD)
    go_on(driver, "new-password")
    enter(driver, "sign-in-new-password", PASSWORD)
    go_on(driver, "setup")
    secret = str(driver.find_element("id", "sign-in-secret").text)
    assert f"secret={secret}" in driver.find_element("id", "sign-in-uri").text
    enter(driver, "sign-in-setup-code", authenticator_code(secret))
    go_on(driver, "")
    return secret


def test_a_new_account_signs_in_and_the_page_reads_the_kpis_with_its_token(
    browser: Any, site: tuple[str, JwtAuthorizer], tmp_path: Path
) -> None:
    url, gate = site
    assert httpx.get(f"{url}/api/kpis/daily").status_code == 401  # no token: no data
    browser.get(f"{url}/?range=all")
    wait_for(browser, lambda d: step(d) == "password", "the page did not ask to sign in")
    assert revenue(browser) == "–" and gate.refused == ["/api/kpis/daily"]  # the page asked for nothing yet

    shot(browser, tmp_path, "sign-in-1280-light.png")
    enter(browser, "sign-in-user", USER)
    enter(browser, "sign-in-password", "Wrong-password-1!")
    go_on(browser, "password")
    wait_for(browser, lambda d: d.find_element("id", "sign-in-error").text, "a wrong password said nothing")
    assert "Incorrect username or password" in browser.find_element("id", "sign-in-error").text

    secret = first_sign_in(browser)
    wait_for(browser, lambda d: revenue(d) not in ("–", ""), "signed in, the page showed no revenue")
    shown = revenue(browser)
    assert gate.refused == ["/api/kpis/daily"]  # every request of the page carried a valid token

    browser.refresh()  # the tab keeps its tokens
    wait_for(browser, lambda d: revenue(d) == shown, "after a reload the page did not show the KPIs again")
    assert step(browser) == ""

    browser.find_element("id", "sign-out").click()
    wait_for(browser, lambda d: step(d) == "password", "signing out did not ask to sign in again")
    enter(browser, "sign-in-user", USER)
    enter(browser, "sign-in-password", PASSWORD)
    go_on(browser, "code")  # the app is set up: a code from it
    enter(browser, "sign-in-code", authenticator_code(secret))
    go_on(browser, "")
    wait_for(browser, lambda d: revenue(d) == shown, "the second sign-in showed no KPIs")


def signed_in(driver: Any, url: str) -> str:
    """The page opened and a new account signed in, its KPIs shown; returns the access token."""
    driver.get(f"{url}/?range=all")
    wait_for(driver, lambda d: step(d) == "password", "the page did not ask to sign in")
    first_sign_in(driver)
    wait_for(driver, lambda d: revenue(d) not in ("–", ""), "signed in, the page showed no revenue")
    return str(driver.execute_script("return JSON.parse(sessionStorage.getItem('orderpipe.sign-in')).access"))


def test_an_expired_session_renews_its_token_without_asking_again(
    browser: Any, site: tuple[str, JwtAuthorizer]
) -> None:
    url, gate = site
    signed_in(browser, url)
    # The access token is taken for expired: the next request renews it with the refresh token.
    old = browser.execute_script(
        "const t = JSON.parse(sessionStorage.getItem('orderpipe.sign-in')); t.expires = Date.now();"
        "sessionStorage.setItem('orderpipe.sign-in', JSON.stringify(t)); return t.access"
    )
    browser.refresh()
    wait_for(browser, lambda d: revenue(d) not in ("–", ""), "after renewing its token the page showed no revenue")
    renewed = browser.execute_script("return JSON.parse(sessionStorage.getItem('orderpipe.sign-in')).access")
    assert renewed != old and step(browser) == ""
    assert gate.refused == []


def test_a_token_the_api_no_longer_takes_is_renewed_once_and_the_request_sent_again(
    browser: Any, site: tuple[str, JwtAuthorizer]
) -> None:
    url, gate = site
    old = signed_in(browser, url)
    gate.refuse_next = 1  # API Gateway answers the next request 401, whatever it carries
    browser.refresh()
    wait_for(browser, lambda d: revenue(d) not in ("–", ""), "after a 401 the page showed no revenue")
    renewed = browser.execute_script("return JSON.parse(sessionStorage.getItem('orderpipe.sign-in')).access")
    assert len(gate.refused) == 1 and renewed != old and step(browser) == ""
