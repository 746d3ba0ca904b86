"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium through the
version-matched chromium-driver, against the real `orderpipe serve` on a home filled by
`orderpipe run`. `.ci/run` installs both packages when they are missing; outside CI the test is
left out, with a message, on a machine that has neither.

Screenshots at 1280×800 and 375×800 (light and dark) go to the test's output folder; with
DASHBOARD_SCREENSHOTS_TO=DIR they are also copied there (docs/images for the docs).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from benchmarks.generate import generate

from tests.conftest import REPO, order, write
from tests.web.conftest import ORDERPIPE, serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = not (Path(CHROMIUM).exists() and Path(DRIVER).exists())
if MISSING and os.environ.get("CI"):
    pytest.fail("CI needs Debian's chromium and chromium-driver (.ci/run installs them)", pytrace=False)
pytestmark = pytest.mark.skipif(MISSING, reason="no chromium, chromium-driver (apt-get install them)")

TODAY = dt.date.today()
WAIT = 15


def run(home: Path, *files: Path) -> None:
    result = subprocess.run(
        [ORDERPIPE, "--home", str(home), "run", *map(str, files)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode in (0, 1), result.stderr  # 1: a rejected file, on purpose


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Sixty days of orders up to today and one rejected file, served on a free port."""
    folder = tmp_path_factory.mktemp("dashboard")
    home = folder / "home"
    orders = folder / "orders.csv"
    generate(orders, 6000, days=60, start=(TODAY - dt.timedelta(days=59)).isoformat())
    run(home, orders, REPO / "data" / "sample" / "invalid_order.csv")
    with serving(home) as url:
        yield url, home


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
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


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def viewport(driver: Any, width: int, height: int = 800) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def dark(driver: Any, on: bool) -> None:
    features = [{"name": "prefers-color-scheme", "value": "dark" if on else "light"}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})


def renders(driver: Any) -> int:
    return int(driver.execute_script("return Number(document.body.dataset.renders || 0)"))


def wait_for(driver: Any, condition: Any, message: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(lambda d: condition(d), message)


def open_view(driver: Any, url: str) -> None:
    driver.get(url)
    wait_for(driver, lambda d: renders(d) >= 1, "the page never rendered")


def tiles(driver: Any) -> dict[str, str]:
    return dict(
        driver.execute_script(
            "return [...document.querySelectorAll('.tile')]"
            ".map(t => [t.dataset.kpi, t.querySelector('.value').textContent])"
        )
    )


def expected_tiles(rows: list[dict[str, Any]], revenue: str, orders: str) -> dict[str, str]:
    """What the tiles must say, computed from the API's rows (money in exact cents)."""
    cents = sum(int(Decimal(r[revenue]) * 100) for r in rows)
    count = sum(r[orders] for r in rows)
    aov = (Decimal(cents) / count).quantize(Decimal(1), ROUND_HALF_UP) / 100
    return {"revenue": f"{Decimal(cents) / 100:,.2f}", "orders": f"{count:,}", "aov": f"{aov:,.2f}"}


def api_rows(url: str, path: str, **params: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = httpx.get(url + path, params={**params, "money": "string"}).json()["rows"]
    return rows


def test_the_page_loads_clean_and_stays_on_this_machine(site: tuple[str, Path], browser: Any) -> None:
    url, _ = site
    open_view(browser, url + "/")
    wait_for(browser, lambda d: tiles(d)["revenue"] != "–", "tiles stayed empty")
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    requested = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    # data: URLs are inline (the date inputs' own icons): they leave nothing
    away = [u for u in requested if not u.startswith((url + "/", "data:"))]
    assert requested and away == []


def test_tiles_show_what_the_api_returns(site: tuple[str, Path], browser: Any) -> None:
    url, _ = site
    open_view(browser, url + "/?range=all")
    rows = api_rows(url, "/api/kpis/daily")
    shown = tiles(browser)
    assert {k: shown[k] for k in ("revenue", "orders", "aov")} == expected_tiles(rows, "total_revenue", "total_orders")
    returned = sum(r["returned_orders"] for r in rows) / sum(r["total_orders"] for r in rows)
    assert abs(float(shown["return_rate"].rstrip("%")) - returned * 100) <= 0.05


def test_the_charts_draw(site: tuple[str, Path], browser: Any) -> None:
    url, _ = site
    open_view(browser, url + "/?range=30d")
    drawn = browser.execute_script(
        """return [...document.querySelectorAll('.chart canvas')].map(c => {
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let ink = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) ink++;
             return ink; })"""
    )
    assert len(drawn) == 4 and all(ink > 500 for ink in drawn), drawn
    assert browser.find_elements("css selector", ".lane a.accepted")  # the accepted batch, on the axis


def test_a_preset_changes_the_url_and_the_data(site: tuple[str, Path], browser: Any) -> None:
    url, _ = site
    open_view(browser, url + "/?range=all")
    before = renders(browser)
    browser.find_element("css selector", 'button[data-range="7d"]').click()
    wait_for(browser, lambda d: renders(d) > before, "no new render after the preset")
    assert "range=7d" in browser.current_url
    start = (TODAY - dt.timedelta(days=6)).isoformat()
    rows = api_rows(url, "/api/kpis/daily", **{"from": start, "to": TODAY.isoformat()})
    shown = tiles(browser)
    assert {k: shown[k] for k in ("revenue", "orders", "aov")} == expected_tiles(rows, "total_revenue", "total_orders")
    assert "vs previous" in browser.find_element("css selector", '.tile[data-kpi="revenue"] .delta').text
    browser.back()  # the view is in the URL: back returns to it
    wait_for(browser, lambda d: "range=all" in d.current_url and tiles(d)["orders"] != shown["orders"], "back")


def test_a_category_click_filters_the_page(site: tuple[str, Path], browser: Any) -> None:
    url, _ = site
    open_view(browser, url + "/?range=30d")
    row = browser.find_element("css selector", '#categories tbody tr[data-category="Books"]')
    before = renders(browser)
    row.click()
    wait_for(browser, lambda d: renders(d) > before, "no new render after the click")
    assert "cat=Books" in browser.current_url
    start = (TODAY - dt.timedelta(days=29)).isoformat()
    rows = api_rows(url, "/api/kpis/category", name="Books", **{"from": start, "to": TODAY.isoformat()})
    shown = tiles(browser)
    assert {k: shown[k] for k in ("revenue", "orders", "aov")} == expected_tiles(rows, "daily_revenue", "orders")
    assert "Books" in browser.find_element("css selector", "#filter").text
    assert "name=Books" in browser.find_element("css selector", "#export").get_attribute("href")


def test_a_rejected_batch_opens_with_its_report(site: tuple[str, Path], browser: Any) -> None:
    url, _ = site
    [rejected] = httpx.get(url + "/api/batches", params={"status": "rejected"}).json()["runs"]
    open_view(browser, f"{url}/?range=30d&batch={rejected['batch_id'][:12]}")  # a shared link to it
    dialog = browser.find_element("css selector", "#batch")
    wait_for(browser, lambda d: "why it was rejected" in dialog.text.lower(), "no report in the batch's details")
    assert "invalid_order.csv" in dialog.text and "invalid-integer" in dialog.text
    assert "line 2, quantity: '-1' is not a whole number of digits" in dialog.text
    browser.find_element("css selector", "#batch .close").click()
    wait_for(browser, lambda d: "batch=" not in d.current_url, "closing left the batch in the URL")


def test_the_dark_theme_and_the_screenshots(site: tuple[str, Path], browser: Any, shots: Path) -> None:
    url, _ = site
    saved = []
    for theme in ("light", "dark"):
        dark(browser, theme == "dark")
        for width in (1280, 375):
            viewport(browser, width)
            open_view(browser, url + "/?range=30d")
            background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
            channels = [int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]]
            assert (sum(channels) < 120) == (theme == "dark"), (theme, background)
            overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{width} px: the page is {overflow} px wider than the screen"
            path = shots / f"dashboard-{width}-{theme}.png"
            browser.save_screenshot(str(path))
            saved.append(path)
    dark(browser, False)
    viewport(browser, 1280)
    assert all(p.stat().st_size > 10_000 for p in saved)
    target = os.environ.get("DASHBOARD_SCREENSHOTS_TO")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for path in saved:
            shutil.copy(path, Path(target) / path.name)


def test_a_new_batch_shows_without_a_reload(site: tuple[str, Path], browser: Any, tmp_path: Path) -> None:
    url, home = site
    open_view(browser, url + "/?range=7d")
    browser.execute_script("window.stillTheSamePage = true")
    before = tiles(browser)
    today = TODAY.isoformat()
    late = [order(f"LATE{i}", f"C{i}", today, "Toys", "P1", "2", "1000.00") for i in range(3)]
    extra = write(tmp_path / "late.csv", late)
    run(home, extra)
    wait_for(browser, lambda d: tiles(d)["orders"] != before["orders"], "the tiles did not change within the wait")
    assert browser.execute_script("return window.stillTheSamePage === true")  # no reload
    rows = api_rows(url, "/api/kpis/daily", **{"from": (TODAY - dt.timedelta(days=6)).isoformat(), "to": today})
    shown = tiles(browser)
    assert {k: shown[k] for k in ("revenue", "orders", "aov")} == expected_tiles(rows, "total_revenue", "total_orders")
    assert "Last updated" in browser.find_element("css selector", "#stamp").text


def test_an_empty_home_says_what_to_do_next(browser: Any, tmp_path: Path) -> None:
    home = tmp_path / "empty"
    subprocess.run([ORDERPIPE, "--home", str(home), "-q", "kpis", "rebuild"], check=True, timeout=60)
    with serving(home) as url:
        open_view(browser, url + "/")
        box = browser.find_element("css selector", "#empty")
        assert box.is_displayed() and "No KPIs yet" in box.text and "orderpipe run FILE.csv" in box.text
        assert not browser.find_element("css selector", "#tiles").is_displayed()
        run(home, REPO / "data" / "sample" / "valid_order.csv")
        wait_for(browser, lambda d: not d.find_element("css selector", "#empty").is_displayed(), "still empty")
        open_view(browser, url + "/?range=7d")  # the sample's dates are in 2025: nothing in the last week
        assert "No orders in this range" in browser.find_element("css selector", "#empty").text
