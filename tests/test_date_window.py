"""Plausible order dates through the real command: a file dated 2052 or 1915 is rejected with a
located error and a hint naming the setting, and accepted once the window is widened or turned
off; the window's bounds are inclusive, read on the clock once per file, in the configured
zone; bad settings are configuration errors; and `replay --rejected` takes a file again when
the window changed, as a setting or as the clock moved it, and only then."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orderpipe.cli import main
from orderpipe.config import load_settings
from orderpipe.core import window
from orderpipe.core.shape import InputShape
from orderpipe.errors import ConfigError
from tests.conftest import order, write

Invoke = Callable[..., Result]
#: The test's clock: 23:30 in UTC, already the next day east of it.
NOW = dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[dt.datetime]:
    """The time the window is read at; a test moves it by setting `clock[0]`."""
    now = [NOW]
    monkeypatch.setattr(window, "clock", lambda: now[0])
    return now


@pytest.fixture
def cli(home: Path, clock: list[dt.datetime]) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(main, ["--home", str(home), *args], env=env, catch_exceptions=False)

    return invoke


def configure(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "orderpipe.toml").write_text(text)


def report_of(home: Path, name: str) -> dict[str, object]:
    return json.loads((home / "rejected" / f"{name}.report.json").read_text())


def only_issue(report: dict[str, object]) -> dict[str, object]:
    (issue,) = report["errors"]  # type: ignore[misc]
    return issue  # type: ignore[no-any-return]


def test_a_file_dated_2052_is_rejected_where_and_why_then_taken_when_the_window_is_widened(
    cli: Invoke, home: Path, tmp_path: Path
) -> None:
    path = write(tmp_path / "future.csv", [order("O1", date="2025-07-06"), order("O2", date="2052-07-06")])
    result = cli("run", str(path))
    assert result.exit_code == 1, result.output
    assert "implausible-date at line 3 (order_date): '2052-07-06' is after 2026-01-01" in result.output
    issue = only_issue(report_of(home, "future.csv"))
    assert issue["code"] == "implausible-date"
    assert "input.latest_date" in str(issue["hint"]) and 'input.dates = "any"' in str(issue["hint"])
    assert issue["samples"] == [
        {
            "line": 3,
            "column": "order_date",
            "value": "2052-07-06",
            "message": "'2052-07-06' is after 2026-01-01, the latest order date allowed (tomorrow in UTC): check"
            " its year, or set input.latest_date",
        }
    ]
    assert cli("kpis", "daily", "--format", "json").output.strip() == "[]"  # nothing of it counted
    configure(home, "[input]\nlatest_date = 2052-12-31\n")  # a TOML date
    result = cli("replay", "--rejected")
    assert result.exit_code == 0, result.output
    assert "accepted  future.csv" in result.output
    days = [row["order_date"] for row in json.loads(cli("kpis", "daily", "--format", "json").output)]
    assert days == ["2025-07-06", "2052-07-06"]


def test_a_file_dated_1915_is_rejected_and_taken_with_the_check_off(cli: Invoke, home: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "past.csv", [order("O1", date="1915-03-01")])
    assert cli("run", str(path)).exit_code == 1
    (sample,) = only_issue(report_of(home, "past.csv"))["samples"]  # type: ignore[misc]
    assert sample["message"] == (
        "'1915-03-01' is before 2000-01-01, the earliest order date allowed: check its year, or set input.earliest_date"
    )
    configure(home, '[input]\ndates = "any"\n')
    result = cli("replay", "--rejected")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("day", "accepted"),
    [("2000-01-01", True), ("1999-12-31", False), ("2026-01-01", True), ("2026-01-02", False)],
)
def test_both_bounds_are_inclusive_and_one_day_beyond_is_not(
    cli: Invoke, tmp_path: Path, day: str, accepted: bool
) -> None:
    """At 23:30 on 31 December in UTC, tomorrow is 1 January: that day passes, the 2nd does not."""
    path = write(tmp_path / "edge.csv", [order("O1", date=day)])
    assert cli("run", str(path)).exit_code == (0 if accepted else 1)


@pytest.mark.parametrize(
    ("zone", "latest", "accepted"),
    [
        ("Pacific/Kiritimati", "2026-01-02", True),  # 13:30 on 1 January there: tomorrow is the 2nd
        ("America/New_York", "2026-01-02", False),  # 18:30 on 31 December: tomorrow is the 1st
        ("America/New_York", "2026-01-01", True),
    ],
)
def test_tomorrow_is_read_in_the_configured_zone(
    cli: Invoke, home: Path, tmp_path: Path, zone: str, latest: str, accepted: bool
) -> None:
    configure(home, f'[input]\ntimezone = "{zone}"\n[input.columns]\norder_timestamp = "created"\n')
    header = "order_id,customer_id,created,category,product_id,quantity,unit_price,returned"
    path = write(tmp_path / "stamps.csv", [f"O1,C1,{latest} 08:00:00,Books,P1,1,2.50,false"], header)
    assert cli("run", str(path)).exit_code == (0 if accepted else 1)


@pytest.mark.parametrize(("zone", "accepted"), [("America/New_York", True), ("Europe/Berlin", False)])
def test_a_timestamp_is_checked_by_its_date_in_the_zone(
    cli: Invoke, home: Path, tmp_path: Path, zone: str, accepted: bool
) -> None:
    """23:30 in New York on the last allowed day is already the next day in Berlin."""
    configure(
        home,
        f'[input]\ntimezone = "{zone}"\nlatest_date = "2030-06-30"\n[input.columns]\norder_timestamp = "created"\n',
    )
    header = "order_id,customer_id,created,category,product_id,quantity,unit_price,returned"
    path = write(tmp_path / "stamps.csv", ["O1,C1,2030-06-30T23:30:00-04:00,Books,P1,1,2.50,false"], header)
    result = cli("run", str(path))
    assert result.exit_code == (0 if accepted else 1), result.output
    if not accepted:
        (sample,) = only_issue(report_of(home, "stamps.csv"))["samples"]  # type: ignore[misc]
        assert sample["column"] == "created"
        assert sample["message"].startswith(
            "'2030-06-30T23:30:00-04:00' (the order date 2030-07-01 in Europe/Berlin) is after 2030-06-30"
        )


def test_every_line_of_an_order_is_checked(cli: Invoke, home: Path, tmp_path: Path) -> None:
    """At line grain a later line that leaves the date blank inherits the first line's, and is
    reported with it."""
    configure(home, '[input]\ngrain = "line"\n')
    rows = [order("O1", date="2052-01-01"), order("O1", date="", product="P2"), order("O2", date="2025-01-01")]
    assert cli("run", str(write(tmp_path / "lines.csv", rows))).exit_code == 1
    issue = only_issue(report_of(home, "lines.csv"))
    assert issue["code"] == "implausible-date"
    assert [s["line"] for s in issue["samples"]] == [2, 3]  # type: ignore[attr-defined]


def test_catalog_files_hold_no_dates(cli: Invoke, home: Path, tmp_path: Path) -> None:
    configure(home, '[input]\ncatalog = true\nlatest_date = "2020-01-01"\n')
    products = tmp_path / "products.csv"
    products.write_text("product_id,category\nP1,Books\n")
    assert cli("run", str(products)).exit_code == 0


def test_validate_reads_the_window_as_run_does_from_a_file_and_from_a_stream(cli: Invoke, tmp_path: Path) -> None:
    path = write(tmp_path / "f.csv", [order("O1", date="2052-07-06")])
    assert "implausible-date" in cli("validate", str(path)).output
    runner = CliRunner()
    streamed = runner.invoke(main, ["--home", str(tmp_path / "h2"), "validate", "-"], input=path.read_text())
    assert streamed.exit_code == 1 and "implausible-date" in streamed.output


def test_the_window_is_evaluated_once_per_file(cli: Invoke, tmp_path: Path, clock: list[dt.datetime]) -> None:
    """A file read across midnight is judged by the window of the moment it was first read."""
    reads: list[dt.datetime] = []

    def ticking() -> dt.datetime:
        reads.append(clock[0])
        return clock[0] + dt.timedelta(days=len(reads) - 1)  # each reading a day later

    path = write(tmp_path / "f.csv", [order("O1", date="2026-01-02"), order("O2", date="2026-01-01")])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(window, "clock", ticking)
        result = cli("run", str(path))  # the screen flags it: both validators read it
    assert result.exit_code == 1, result.output
    assert len(reads) == 1


# -- replay: the window is part of what a verdict was reached with ------------------------------


def test_a_file_a_day_ahead_is_replayed_and_accepted_once_its_day_has_come(
    cli: Invoke, home: Path, tmp_path: Path, clock: list[dt.datetime]
) -> None:
    ahead = write(tmp_path / "ahead.csv", [order("O1", date="2026-01-02")])
    other = write(tmp_path / "other.csv", [order("O2", date="2025-06-01", category="Gadgets")])
    assert cli("run", str(ahead), str(other)).exit_code == 1
    result = cli("replay", "--rejected")  # the same day: neither would change
    assert result.exit_code == 1
    assert result.output.count("unchanged") == 2, result.output
    clock[0] += dt.timedelta(days=1)
    result = cli("replay", "--rejected")
    assert "accepted  ahead.csv" in result.output
    # a file rejected for something else keeps its digest as days pass: it is left alone
    assert "unchanged  rejected/other.csv" in result.output
    assert sorted(p.name for p in (home / "rejected").iterdir()) == ["other.csv", "other.csv.report.json"]


def test_a_file_rejected_by_the_window_is_replayed_when_the_window_changes(
    cli: Invoke, home: Path, tmp_path: Path
) -> None:
    path = write(tmp_path / "old.csv", [order("O1", date="1999-06-01")])
    assert cli("run", str(path)).exit_code == 1
    assert "unchanged" in cli("replay", "--rejected").output
    configure(home, "[input]\nearliest_date = 1999-01-01\n")
    result = cli("replay", "--rejected")
    assert result.exit_code == 0, result.output
    assert "accepted  old.csv" in result.output


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('dates = "off"', "input.dates in "),
        ('earliest_date = "2000-13-01"', "input.earliest_date in "),
        ('latest_date = "next week"', "input.latest_date in "),
        ("latest_date = 2030-01-01T10:00:00", "input.latest_date in "),
        ('earliest_date = "2030-01-01"\nlatest_date = "2029-12-31"', "no date would pass"),
        ('dates = "any"\nlatest_date = "2030-01-01"', "read only with input.dates = 'window'"),
    ],
)
def test_a_bad_window_setting_is_a_configuration_error_naming_file_and_key(
    cli: Invoke, home: Path, tmp_path: Path, text: str, words: str
) -> None:
    configure(home, f"[input]\n{text}\n")
    result = cli("run", str(write(tmp_path / "f.csv", [order()])))
    assert result.exit_code == 2
    assert words in result.output
    assert str(home / "orderpipe.toml") in result.output


def test_the_settings_come_from_the_file_the_variables_and_the_input_table(home: Path) -> None:
    configure(home, "[input]\nearliest_date = 1990-01-01\n")
    assert load_settings(home, environ={}).shape == InputShape(earliest_date="1990-01-01")
    env = {"ORDERPIPE_INPUT_LATEST_DATE": "2040-01-01"}
    assert load_settings(home, environ=env).shape == InputShape(earliest_date="1990-01-01", latest_date="2040-01-01")
    table = {"ORDERPIPE_INPUT": json.dumps({"dates": "any"})}  # how the AWS stack passes [input]
    configure(home, "")
    assert load_settings(home, environ=table).shape == InputShape(dates="any")
    with pytest.raises(ConfigError, match="ORDERPIPE_INPUT_DATES"):
        load_settings(home, environ={"ORDERPIPE_INPUT_DATES": "never"})


def test_the_window_is_not_part_of_what_stored_facts_mean(cli: Invoke, home: Path, tmp_path: Path) -> None:
    """A home that holds facts takes a new window: it decides only which files are accepted."""
    assert cli("run", str(write(tmp_path / "a.csv", [order("O1", date="2025-07-06")]))).exit_code == 0
    configure(home, '[input]\nearliest_date = 2020-01-01\nlatest_date = "2030-12-31"\n')
    assert cli("run", str(write(tmp_path / "b.csv", [order("O2", date="2029-07-06")]))).exit_code == 0


def test_a_window_alone_is_no_shape_to_explain(cli: Invoke, home: Path, tmp_path: Path) -> None:
    """Files in the seed's format are still read as such: a report lists no shape for a window."""
    configure(home, '[input]\nlatest_date = "2060-12-31"\n')
    result = cli("validate", str(write(tmp_path / "f.csv", [order("O1", date="2052-07-06")])), "--format", "json")
    assert result.exit_code == 0, result.output
    assert "shape" not in json.loads(result.output)


@pytest.mark.parametrize(
    ("latest", "bound"),
    [("tomorrow", "tomorrow in Asia/Tokyo"), ("2030-06-30", "input.latest_date")],
)
def test_the_message_names_which_latest_bound_a_date_passed(latest: str, bound: str) -> None:
    """A moving bound says it is tomorrow and where; a fixed one names the setting that set it."""
    now = dt.datetime(2030, 6, 1, 12, tzinfo=dt.UTC)
    found = window.evaluate("window", "2000-01-01", latest, "Asia/Tokyo", now)
    assert found is not None
    last = found.latest.isoformat()
    assert found.error(dt.date(2031, 1, 1)) == (
        f"is after {last}, the latest order date allowed ({bound}): check its year, or set input.latest_date"
    )
    assert found.error(found.latest) is None and found.error(found.earliest) is None  # both bounds allowed
    assert found.error(dt.date(1999, 12, 31)) == (
        "is before 2000-01-01, the earliest order date allowed: check its year, or set input.earliest_date"
    )
