"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium through the
version-matched chromium-driver, against the real `orderpipe serve` on a home filled by
`orderpipe run`. `make test` installs both packages when they are missing (as root; otherwise it
stops and says what to run), so a machine without them FAILS these tests: they are never
skipped. DASHBOARD_CHROMIUM and DASHBOARD_CHROMEDRIVER name other binaries.

Screenshots at 1280×800 and 375×800 (light and dark) go to the test's output folder; with
DASHBOARD_SCREENSHOTS_TO=DIR they are also copied there (docs/images for the docs).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from benchmarks.generate import generate

from orderpipe.web.app import create_app
from tests.conftest import REPO, order, write
from tests.web.conftest import ORDERPIPE, reader_of, running, serving, wait_for

TODAY = dt.date.today()


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
    aov = (Decimal(cents) / count).quantize(Decimal(1), ROUND_HALF_EVEN) / 100  # to even, as every amount
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


def requested(driver: Any) -> list[str]:
    """The URLs the page asked for since the last call."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(str(message["params"]["request"]["url"]))
    return urls


def test_a_paged_api_still_shows_and_exports_the_whole_range(
    site: tuple[str, Path], browser: Any, tmp_path: Path
) -> None:
    """Answers over a small bound come in pages of whole dates: the page follows each `next` (and
    the CSV export each `Link`), so it shows and exports every date as one answer would."""
    url, home = site
    daily = api_rows(url, "/api/kpis/daily")
    categories = api_rows(url, "/api/kpis/category")
    with running(create_app(lambda: reader_of(home, {}), answer_bytes=2_500)) as small:
        requested(browser)  # what earlier tests left
        open_view(browser, small + "/?range=all")
        shown = tiles(browser)
        assert {k: shown[k] for k in ("revenue", "orders", "aov")} == expected_tiles(
            daily, "total_revenue", "total_orders"
        )
        cells = category_cells(browser)
        assert set(cells) == {r["category"] for r in categories}
        for name, row in cells.items():
            own = [r for r in categories if r["category"] == name]
            assert row[0] == expected_tiles(own, "daily_revenue", "orders")["revenue"], name
            assert row[3] == f"{sum(r['orders'] for r in own):,}", name
        assert len([u for u in requested(browser) if "/api/kpis/category?" in u]) > 2  # it was paged
        assert shown_error(browser) == ""
        open_view(browser, small + "/?range=all&cat=Books")  # its CSV: one category, in pages too
        browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
        browser.find_element("css selector", "#export").click()
        wait_for(browser, lambda d: list(tmp_path.glob("*.csv")), "no CSV was downloaded")
        [saved] = tmp_path.glob("*.csv")
        lines = saved.read_text().splitlines()
        assert lines[0].startswith("category,order_date,")
        books = [r["order_date"] for r in categories if r["category"] == "Books"]
        assert [line.split(",")[:2] for line in lines[1:]] == [["Books", day] for day in books]
        assert len([u for u in requested(browser) if "/api/kpis/category?" in u and "format=csv" in u]) > 1


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


def test_what_waits_for_a_header_shows_above_the_latest_batches(browser: Any, tmp_path: Path) -> None:
    """At relational grain the newest file's message ends with what waits; the page shows it,
    and shows the wait end once the header comes."""
    from orderpipe.presets import PRESETS
    from tests.test_lab_reference import HEADERS, ITEMS

    home = tmp_path / "lab"
    home.mkdir()
    (home / "orderpipe.toml").write_text(PRESETS["lab"])
    lines = tmp_path / "order_items_1.csv"
    lines.write_text(f"{ITEMS}\n1,O1,7,P1,x,t,,,,10.00\n2,O1,7,P2,x,t,,,,5.50\n")
    run(home, lines)
    with serving(home) as url:
        open_view(browser, url + "/?range=all")
        latest = browser.find_element("css selector", "#latest")
        assert latest.text.startswith("order_items_1.csv: accepted") and latest.text.count("order_items_1.csv") == 1
        assert "2 lines of 1 order waiting for the header" in latest.text
        header = tmp_path / "orders_1.csv"
        header.write_text(f"{HEADERS}\nO1,7,delivered,{TODAY.isoformat()}T10:00:00,,,,2\n")
        run(home, header)
        wait_for(browser, lambda d: "orders_1.csv" in d.find_element("css selector", "#latest").text, "no new file")
        assert "nothing waits" in browser.find_element("css selector", "#latest").text


# -- every date, exact money, live or offline, every batch, distinct axis labels -----------------


def cli_rows(home: Path, *args: str) -> list[dict[str, Any]]:
    """What `orderpipe kpis …` prints, money as exact decimals."""
    result = subprocess.run(
        [ORDERPIPE, "--home", str(home), "kpis", *args, "--format", "json"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    rows: list[dict[str, Any]] = json.loads(result.stdout, parse_float=Decimal)
    return rows


def stamp(driver: Any) -> str:
    return str(driver.find_element("css selector", "#stamp").text)


def shown_error(driver: Any) -> str:
    banner = driver.find_element("css selector", "#error")
    return str(banner.text) if banner.is_displayed() else ""


def category_cells(driver: Any) -> dict[str, list[str]]:
    return dict(
        driver.execute_script(
            "return [...document.querySelectorAll('#categories tbody tr')]"
            ".map(r => [r.dataset.category, [...r.cells].slice(1).map(c => c.textContent)])"
        )
    )


FAR_DATES = ("0001-01-01", "1901-03-04", "2090-01-01", "9999-12-31")  # each day of the calendar counts


@pytest.fixture(scope="module")
def far(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Orders long ago, far ahead (the calendar's first and last days included) and this week."""
    folder = tmp_path_factory.mktemp("far")
    home = folder / "home"
    dates = [*FAR_DATES, (TODAY - dt.timedelta(days=3)).isoformat(), TODAY.isoformat()]
    category = ("Books", "Toys")
    returned = ("false", "true")
    rows = [
        order(f"F{i}", f"C{i}", day, category[i % 2], "P1", str(i + 1), f"{i + 1}.25", returned[i % 3 == 0])
        for i, day in enumerate(dates)
    ]
    home.mkdir()
    (home / "orderpipe.toml").write_text('[input]\ndates = "any"\n')  # years 1 and 9999 are the point here
    run(home, write(folder / "far.csv", rows))
    with serving(home) as url:
        yield url, home


def test_all_means_every_date_as_the_command_line_says(far: tuple[str, Path], browser: Any, tmp_path: Path) -> None:
    url, home = far
    browser.get_log("browser")  # what earlier tests left
    open_view(browser, url + "/?range=all")
    every = cli_rows(home, "daily")  # no range: all dates
    assert {r["order_date"] for r in every} >= set(FAR_DATES)
    shown = tiles(browser)
    assert {k: shown[k] for k in ("revenue", "orders", "aov")} == expected_tiles(every, "total_revenue", "total_orders")
    assert browser.find_element("css selector", "#period").text == "0001-01-01 to 9999-12-31"
    for name, cells in category_cells(browser).items():
        rows = cli_rows(home, "category", name)
        assert cells[0] == expected_tiles(rows, "daily_revenue", "orders")["revenue"], name
        assert cells[3] == f"{sum(r['orders'] for r in rows):,}", name
    assert shown_error(browser) == ""
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []

    # its CSV holds every date too, one header
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    browser.find_element("css selector", "#export").click()
    wait_for(browser, lambda d: list(tmp_path.glob("*.csv")), "no CSV was downloaded")
    [saved] = tmp_path.glob("*.csv")
    lines = saved.read_text().splitlines()
    assert saved.name == "daily-kpis-0001-01-01-9999-12-31.csv"
    assert lines[0].startswith("order_date,")
    assert [line.split(",")[0] for line in lines[1:]] == [r["order_date"] for r in every]

    # a custom range longer than one answer of the API, and one at the calendar's first day
    open_view(browser, url + "/?range=custom&from=1900-01-01&to=2100-12-31")
    some = cli_rows(home, "daily", "--from", "1900-01-01", "--to", "2100-12-31")
    shown = tiles(browser)
    assert {k: shown[k] for k in ("revenue", "orders", "aov")} == expected_tiles(some, "total_revenue", "total_orders")
    assert shown_error(browser) == ""
    open_view(browser, url + "/?range=custom&from=0001-01-01&to=0001-01-31")
    assert tiles(browser)["orders"] == "1" and shown_error(browser) == ""


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Amounts past 2^53 cents (9,007,199,254,740,992: a binary float's last exact whole number)."""
    folder = tmp_path_factory.mktemp("rich")
    home = folder / "home"
    day = lambda n: (TODAY - dt.timedelta(days=n)).isoformat()  # noqa: E731
    rows = [
        order("R1", "C1", day(0), "Books", "P1", "1000", "999999999999.99"),  # 999,999,999,999,990.00
        order("R2", "C2", day(0), "Books", "P2", "1", "0.03"),
        order("R3", "C3", day(1), "Toys", "P3", "1", "0.05"),
        order("R4", "C4", day(10), "Books", "P4", "1", "0.01"),  # the previous 7 days
    ]
    run(home, write(folder / "rich.csv", rows))
    with serving(home) as url:
        yield url, home


def test_money_is_exact_to_the_cent(rich: tuple[str, Path], browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    url, _ = rich
    open_view(browser, url + "/?range=7d")
    assert tiles(browser) == {
        "revenue": "999,999,999,999,990.08",
        "orders": "3",
        "aov": "333,333,333,333,330.03",  # 99,999,999,999,999,008 cents / 3, to even
        "return_rate": "0.0%",
    }
    start = (TODAY - dt.timedelta(days=6)).isoformat()
    week = api_rows(url, "/api/kpis/daily", **{"from": start, "to": TODAY.isoformat()})
    shown = tiles(browser)
    assert {k: shown[k] for k in ("revenue", "orders", "aov")} == expected_tiles(week, "total_revenue", "total_orders")
    delta = browser.find_element("css selector", '.tile[data-kpi="revenue"] .delta').text
    assert delta.startswith("+999,999,999,999,990.07 ")
    assert category_cells(browser)["Books"][:2] == ["999,999,999,999,990.03", "+999,999,999,999,990.02"]
    # the day's value under the pointer, at the chart's right end (today)
    over = browser.find_element("css selector", '.chart[data-kpi="revenue"] .u-over')
    ActionChains(browser).move_to_element_with_offset(over, over.size["width"] // 2 - 1, 0).perform()
    legend = browser.find_element("css selector", '.chart[data-kpi="revenue"] .u-legend')
    wait_for(browser, lambda d: "999,999,999,999,990.03" in legend.text, f"the legend says {legend.text!r}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving_at(home: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """`orderpipe serve` on a given port (to stop it and start it again where the page looks)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPIPE_")}
    process = subprocess.Popen(
        [ORDERPIPE, "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    try:
        assert f":{port}/" in line, line
        yield process
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(10)


def test_live_says_offline_while_the_server_does_not_answer(browser: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run(home, REPO / "data" / "sample" / "valid_order.csv")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving_at(home, port) as server:
        open_view(browser, url + "/?range=all")
        wait_for(browser, lambda d: stamp(d).endswith("· live"), "never live")
        server.send_signal(signal.SIGSTOP)  # there, but no answer
        wait_for(browser, lambda d: "offline" in stamp(d) and "live" not in stamp(d), "a hung server: not offline")
        server.send_signal(signal.SIGCONT)
        wait_for(browser, lambda d: stamp(d).endswith("· live"), f"not live again: {stamp(browser)!r}")
        database = home / "orderpipe.db"
        saved = database.read_bytes()
        database.write_bytes(b"not a database" * 100)  # the server answers, with an error: says why
        wait_for(browser, lambda d: "offline" in stamp(d) and "503" in shown_error(d), "a refusing server")
        assert "orderpipe.db is damaged" in shown_error(browser)
        database.write_bytes(saved)
        wait_for(browser, lambda d: stamp(d).endswith("· live") and not shown_error(d), "not live after the repair")
    wait_for(browser, lambda d: "offline" in stamp(d), f"a stopped server: {stamp(browser)!r}")
    orders = tiles(browser)["orders"]
    run(home, write(tmp_path / "while-away.csv", [order("W1", "C9", "2025-07-07", "Toys", "P1", "1", "5.00")]))
    with serving_at(home, port):
        wait_for(browser, lambda d: stamp(d).endswith("· live"), f"not live after a restart: {stamp(browser)!r}")
        wait_for(browser, lambda d: tiles(d)["orders"] == str(int(orders) + 1), "what changed while away never showed")
    assert "offline" not in shown_error(browser)


def lane_items(driver: Any) -> list[dict[str, Any]]:
    """Each dot and "+N" button of the batch lane: its text, class, box, and whether it is the
    element a person sees at its centre (nothing drawn over it)."""
    return list(
        driver.execute_script(
            """return [...document.querySelectorAll('.lane > *')].map(e => {
                 const r = e.getBoundingClientRect();
                 const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                 return {text: e.textContent, cls: e.className, title: e.title, seen: top === e,
                         box: [r.left, r.top, r.right, r.bottom]}; })"""
        )
    )


def test_every_batch_of_one_day_is_seen(browser: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    day = TODAY.isoformat()
    files = [write(tmp_path / f"day-{i}.csv", [order(f"S{i}", "C1", day, "Toys", "P1", "1", "2.00")]) for i in range(9)]
    run(home, *files, REPO / "data" / "sample" / "invalid_order.csv", files[0])  # + a rejected, a duplicate
    with serving(home) as url:
        runs = httpx.get(url + "/api/batches").json()["runs"]
        assert len(runs) == 11
        open_view(browser, url + "/?range=7d")
        items = lane_items(browser)
        dots = [i for i in items if not i["cls"].startswith("more")]
        more = [i for i in items if i["cls"].startswith("more")]
        assert all(i["seen"] for i in items), [i["title"] or i["text"] for i in items if not i["seen"]]
        for n, a in enumerate(items):  # no two overlap: one is left of, or above, the other
            for b in items[n + 1 :]:
                (al, at, ar, ab), (bl, bt, br, bb) = a["box"], b["box"]
                assert ar <= bl or br <= al or ab <= bt or bb <= at, (a, b)
        assert len(dots) + sum(int(m["text"].lstrip("+")) for m in more) == len(runs)
        assert any(d["cls"] == "rejected" for d in dots) and any(d["cls"] == "duplicate" for d in dots)
        assert len(more) == 1 and more[0]["text"] == f"+{len(runs) - len(dots)}"
        # the button lists the files it stands for
        browser.find_element("css selector", ".lane .more").click()
        dialog = browser.find_element("css selector", "#batch")
        wait_for(browser, lambda d: dialog.is_displayed(), "the list did not open")
        listed = dialog.find_elements("css selector", "li a")
        dotted = {d["title"].split(": ", 1)[1].split(" (")[0] for d in dots}
        assert len(listed) == len(runs) - len(dots)
        assert {a.text for a in listed} | dotted == {r["file"] for r in runs}
        browser.find_element("css selector", "#batch .close").click()


def test_a_paged_run_history_still_marks_every_batch(browser: Any, tmp_path: Path) -> None:
    """Over a small bound /api/batches comes in pages of a few runs: the page follows each
    `next` and marks every run on the lane, as one answer would."""
    home = tmp_path / "home"
    day = TODAY.isoformat()
    files = [write(tmp_path / f"day-{i}.csv", [order(f"S{i}", "C1", day, "Toys", "P1", "1", "2.00")]) for i in range(7)]
    run(home, *files)
    with running(create_app(lambda: reader_of(home, {}), answer_bytes=1_500)) as small:
        assert "link" in httpx.get(small + "/api/batches", params={"limit": "200"}).headers  # it is paged
        requested(browser)  # what earlier tests left
        open_view(browser, small + "/?range=7d")
        wait_for(browser, lambda d: lane_items(d), "no batch on the lane")
        items = lane_items(browser)
        shown = sum(int(i["text"].lstrip("+")) if i["cls"].startswith("more") else 1 for i in items)
        assert shown == len(files)
        assert len([u for u in requested(browser) if "/api/batches?" in u]) > 1
        assert shown_error(browser) == ""


RECORD_CANVAS_TEXT = """(() => {
  const proto = CanvasRenderingContext2D.prototype;
  const fill = proto.fillText;
  const clear = proto.clearRect;
  proto.fillText = function (text, x, y, ...rest) {
    (this.canvas.drawnTexts ||= []).push({ text: String(text), align: this.textAlign });
    return fill.call(this, text, x, y, ...rest);
  };
  proto.clearRect = function (x, y, w, h) {
    if (x <= 0 && y <= 0 && x + w >= this.canvas.width && y + h >= this.canvas.height) this.canvas.drawnTexts = [];
    return clear.call(this, x, y, w, h);
  };
})();"""


def axis_labels(driver: Any) -> dict[str, dict[str, list[str]]]:
    """The labels drawn on each chart's canvas: the value axis (right-aligned, at the left) and
    the date axis (centred, below)."""
    drawn = driver.execute_script(
        "return [...document.querySelectorAll('.chart')]"
        ".map(c => [c.dataset.kpi, c.querySelector('canvas').drawnTexts || []])"
    )
    return {
        kpi: {
            "values": [t["text"] for t in texts if t["align"] == "right"],
            "dates": [t["text"] for t in texts if t["align"] == "center"],
        }
        for kpi, texts in drawn
    }


def test_axis_labels_are_distinct(browser: Any, tmp_path: Path) -> None:
    """Days whose KPIs differ by little: return rates of 10.0% to 10.6%, 1,000 to 1,006 orders,
    averages of 52.10 to 52.16."""
    home = tmp_path / "home"
    rows = []
    for n in range(7):
        day = (TODAY - dt.timedelta(days=n)).isoformat()
        orders = 1000 + n
        for i in range(orders):
            price = "52.10" if i else f"{52.10 + n * 0.01 * orders:.2f}"
            rows.append(order(f"D{n}-{i}", f"C{i}", day, "Toys", "P1", "1", price, ("false", "true")[i < 100 + n]))
    run(home, write(tmp_path / "narrow.csv", rows))
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_CANVAS_TEXT})
    try:
        with serving(home) as url:
            open_view(browser, url + "/?range=7d")
            week = axis_labels(browser)
            yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
            open_view(browser, f"{url}/?range=custom&from={yesterday}&to={TODAY.isoformat()}")
            two_days = axis_labels(browser)
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})
    for labels in (week, two_days):
        assert set(labels) == {"revenue", "orders", "aov", "return_rate"}
        for kpi, drawn in labels.items():
            for axis, texts in drawn.items():
                assert len(texts) >= 2, (kpi, axis, texts)
                assert len(set(texts)) == len(texts), (kpi, axis, texts)
    rates = week["return_rate"]["values"]
    assert all(t.endswith("%") for t in rates) and any("." in t for t in rates), rates
    assert not any(t.endswith(("am", "pm")) for t in two_days["revenue"]["dates"]), two_days  # days have no hours
