"""Settings: every bad value is refused with its key and its source, never silently defaulted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orderpipe.cli import main
from orderpipe.config import OTHER_VARIABLES, load_settings
from orderpipe.errors import ConfigError
from tests.conftest import REPO


def refused(home: Path, environ: dict[str, str] | None = None, toml: str | None = None) -> str:
    if toml is not None:
        home.mkdir(parents=True, exist_ok=True)
        (home / "orderpipe.toml").write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(home, environ=environ or {})
    return str(caught.value)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "0", "0.001", "3601", "1e9", "", "soon"])
def test_poll_interval_must_be_finite_and_sane(home: Path, value: str) -> None:
    message = refused(home, {"ORDERPIPE_WATCH_POLL_INTERVAL": value})
    assert message.startswith("watch.poll_interval from ORDERPIPE_WATCH_POLL_INTERVAL: must be a finite number")
    assert repr(value) in message


@pytest.mark.parametrize("toml", ["inf", "nan", "true", "0", '"0.5"', "[1]"])
def test_poll_interval_in_the_file(home: Path, toml: str) -> None:
    message = refused(home, toml=f"[watch]\npoll_interval = {toml}\n")
    assert message.startswith(f"watch.poll_interval in {home / 'orderpipe.toml'}: must be a finite number")


def test_good_values_pass(home: Path) -> None:
    settings = load_settings(
        home,
        environ={
            "ORDERPIPE_WATCH_POLL_INTERVAL": "0.01",
            "ORDERPIPE_FACTS_ROWS_PER_PART": "50",
            "ORDERPIPE_PREFIXES_INPUT": "data/in/",
            "ORDERPIPE_LOG_LEVEL": "debug",
            "ORDERPIPE_NOTIFY_WEBHOOK_URL": "http://127.0.0.1:8080/hook",
            "ORDERPIPE_HOME": "ignored-when-home-is-given",
            "ORDERPIPE_TASK_KEY": "input/a.csv",
        },
    )
    assert (settings.poll_interval, settings.rows_per_part, settings.input_prefix) == (0.01, 50, "data/in/")
    assert settings.log_level == "DEBUG"
    home.mkdir()
    (home / "orderpipe.toml").write_text("[facts]\nrows_per_part = 7\n[watch]\npoll_interval = 2\n")
    settings = load_settings(home, environ={})
    assert (settings.rows_per_part, settings.poll_interval) == (7, 2.0)


@pytest.mark.parametrize("value", ["2.9", "1e6", "-5", "0", "true", " 50", "５０", ""])
def test_rows_per_part_env_must_be_digits(home: Path, value: str) -> None:
    message = refused(home, {"ORDERPIPE_FACTS_ROWS_PER_PART": value})
    assert message.startswith("facts.rows_per_part from ORDERPIPE_FACTS_ROWS_PER_PART: must be a whole number")


@pytest.mark.parametrize("toml", ["2.9", "true", "false", '"50"', "0", "-1", "2.0"])
def test_rows_per_part_file_must_be_an_integer(home: Path, toml: str) -> None:
    message = refused(home, toml=f"[facts]\nrows_per_part = {toml}\n")
    assert message.startswith("facts.rows_per_part in")
    assert "must be a whole number" in message


@pytest.mark.parametrize(
    "prefix",
    [
        "../escape/",
        "input/../../x/",
        "/abs/",
        "input",
        "./input/",
        "in//put/",
        "in/./put/",
        "in\\put/",
        "in\x00put/",
        "/",
        "",
        ".work/",
        ".tmp/x/",
    ],
)
def test_prefixes_must_stay_inside_the_home(home: Path, prefix: str) -> None:
    message = refused(home, {"ORDERPIPE_PREFIXES_INPUT": prefix})
    assert message.startswith("prefixes.input from ORDERPIPE_PREFIXES_INPUT: must be a relative folder path")


@pytest.mark.parametrize(
    "prefix",
    ["orderpipe.db/", "orderpipe.db-wal/", "orderpipe.db-shm/", "orderpipe.db-journal/x/", "orderpipe.toml/",
     "OrderPipe.DB/", ".work/", ".tmp/"],
)
@pytest.mark.parametrize(
    "variable",
    ["ORDERPIPE_PREFIXES_INPUT", "ORDERPIPE_PREFIXES_PROCESSED", "ORDERPIPE_PREFIXES_REJECTED",
     "ORDERPIPE_PREFIXES_WAREHOUSE"],
)
def test_no_folder_setting_takes_a_name_the_home_keeps(home: Path, prefix: str, variable: str) -> None:
    """A folder named like the database or the settings would wedge the home for good."""
    message = refused(home, {variable: prefix})
    assert "orderpipe keeps" in message and "for itself at the top of the home" in message
    # Nothing was made: the home still opens once the setting is gone.
    assert not (home / prefix.split("/")[0]).exists()


@pytest.mark.parametrize("name", ["orderpipe.db", "orderpipe.db-wal", "orderpipe.db-shm", "orderpipe.toml"])
def test_a_home_wedged_by_a_folder_under_a_kept_name_says_how_to_free_it(home: Path, name: str) -> None:
    (home / name / "input").mkdir(parents=True)
    for command in (["kpis", "daily"], ["batches"], ["run", str(REPO / "data" / "sample" / "valid_order.csv")]):
        result = subprocess.run(
            [sys.executable, "-m", "orderpipe", "--home", str(home), *command], capture_output=True, text=True
        )
        assert result.returncode == 2, (command, result.stderr)
        assert f"{home / name} is a folder, but orderpipe keeps its" in result.stderr
        assert "move it aside" in result.stderr


def test_prefixes_must_not_nest_or_repeat(home: Path) -> None:
    nested = refused(home, {"ORDERPIPE_PREFIXES_REJECTED": "input/rejected/"})
    assert "prefixes.rejected 'input/rejected/'" in nested and "is inside prefixes.input 'input/'" in nested
    assert "ORDERPIPE_PREFIXES_REJECTED" in nested
    same = refused(home, {"ORDERPIPE_PREFIXES_PROCESSED": "input/"})
    assert "are both 'input/': they must differ" in same


def test_a_bad_prefix_creates_nothing_outside_the_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "orderpipe.toml").write_text('[prefixes]\ninput = "../escape/"\n')
    for args in (["kpis", "daily"], ["batches"], ["run", str(REPO / "data" / "sample" / "valid_order.csv")]):
        result = CliRunner().invoke(main, ["--home", str(home), *args], env={})
        assert result.exit_code == 2, result.output
        assert f"prefixes.input in {home / 'orderpipe.toml'}: must be a relative folder path" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]
    assert [p.name for p in home.iterdir()] == ["orderpipe.toml"]


@pytest.mark.parametrize(
    ("key", "toml", "expected"),
    [
        ("categories", '"Books"', "must be a non-empty list"),
        ("categories", "[]", "must be a non-empty list"),
        ("categories", "[1, 2]", "must be a non-empty list"),
        ("categories", '["Books", " Toys"]', "names must be non-empty without surrounding spaces"),
        ("categories", '["Books", "Books"]', "lists 'Books' more than once"),
        ("log_level", "10", "must be one of DEBUG, INFO, WARNING, ERROR"),
        ("log_level", '"LOUD"', "must be one of DEBUG, INFO, WARNING, ERROR"),
        ("backend", '"s3"', "must be 'local' or 'aws'"),
        ("backend", "1", "must be 'local' or 'aws'"),
        ("notify.webhook_url", '"ftp://x"', "must be an http(s) URL"),
        ("notify.webhook_url", '"https://"', "must be an http(s) URL"),
        ("notify.webhook_url", "42", "must be a string"),
        ("aws.bucket", '"My_Bucket"', "must be an S3 bucket name"),
        ("aws.ledger_table", '"a b"', "must be a DynamoDB table name"),
        ("aws.order_table", "[]", "must be a string"),
        ("aws.success_topic_arn", '"topic"', "must be an SNS topic ARN"),
    ],
)
def test_each_setting_is_type_checked(home: Path, key: str, toml: str, expected: str) -> None:
    table, _, name = key.rpartition(".")
    text = (f"[{table}]\n" if table else "") + f"{name} = {toml}\n"
    message = refused(home, toml=text)
    assert message.startswith(f"{key} in {home / 'orderpipe.toml'}: {expected}"), message


def test_every_bad_value_is_reported_one_line_each(home: Path) -> None:
    message = refused(home, {"ORDERPIPE_WATCH_POLL_INTERVAL": "nan", "ORDERPIPE_BACKEND": "gcp"})
    lines = message.split("\norderpipe: ")
    assert len(lines) == 2
    assert {line.split(":")[0] for line in lines} == {
        "watch.poll_interval from ORDERPIPE_WATCH_POLL_INTERVAL",
        "backend from ORDERPIPE_BACKEND",
    }


def test_unknown_variable_is_refused_with_a_suggestion(home: Path) -> None:
    message = refused(home, {"ORDERPIPE_CATEGRIES": "Books"})
    assert message.startswith("unknown environment variable ORDERPIPE_CATEGRIES (did you mean 'ORDERPIPE_CATEGORIES'?)")
    assert "ORDERPIPE_WATCH_POLL_INTERVAL" in message and "ORDERPIPE_TASK_KEY" in message
    far = refused(home, {"ORDERPIPE_XYZZY": "1"})
    assert far.startswith("unknown environment variable ORDERPIPE_XYZZY; known: ")


def test_unknown_file_key_gets_a_suggestion(home: Path) -> None:
    message = refused(home, toml="[watch]\npoll_intervall = 1\n")
    assert "unknown setting 'watch.poll_intervall' (did you mean 'watch.poll_interval'?)" in message


def test_unknown_variable_exits_2_through_the_cli(home: Path) -> None:
    result = CliRunner().invoke(main, ["--home", str(home), "kpis", "daily"], env={"ORDERPIPE_CATEGRIES": "Books"})
    assert result.exit_code == 2
    assert "did you mean 'ORDERPIPE_CATEGORIES'?" in result.stderr


def test_nan_poll_interval_stops_watch_at_once(home: Path) -> None:
    for value in ("nan", "inf"):
        result = CliRunner().invoke(main, ["--home", str(home), "watch"], env={"ORDERPIPE_WATCH_POLL_INTERVAL": value})
        assert result.exit_code == 2, result.output
        assert "watch.poll_interval from ORDERPIPE_WATCH_POLL_INTERVAL" in result.stderr


def test_every_orderpipe_variable_the_project_uses_is_known() -> None:
    """The variables read outside the settings (container, state machine, infra, tests) must
    not be refused as typos."""
    from orderpipe.config import _BY_VARIABLE

    known = {*_BY_VARIABLE, *OTHER_VARIABLES}
    used: set[str] = set()
    for folder in ("src", "tests", "infra", "step_functions", "docs"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".json", ".md", ".ts", ".yaml", ".yml"):
                used |= set(re.findall(r"ORDERPIPE_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8", "replace")))
    used |= set(re.findall(r"ORDERPIPE_[A-Z0-9_]*[A-Z0-9]", (REPO / "Dockerfile").read_text()))
    used -= {"ORDERPIPE_CATEGRIES", "ORDERPIPE_XYZZY"}  # the typos these tests make on purpose
    assert used <= known, used - known


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "3601", "soon"])
def test_settle_time_must_be_finite_and_sane(home: Path, value: str) -> None:
    message = refused(home, {"ORDERPIPE_WATCH_SETTLE_TIME": value})
    assert message.startswith("watch.settle_time from ORDERPIPE_WATCH_SETTLE_TIME: must be a finite number")


def test_settle_time_is_read(home: Path) -> None:
    assert load_settings(home, environ={}).settle_time == 2.0
    assert load_settings(home, environ={"ORDERPIPE_WATCH_SETTLE_TIME": "0.5"}).settle_time == 0.5


DEEP = 5000  # far past Python's recursion limit (1000): its parsers recurse once per level


@pytest.mark.parametrize(
    "toml",
    [
        "categories = " + "[" * DEEP + "]" * DEEP,  # arrays
        "x = " + "{a = " * DEEP + "1" + "}" * DEEP,  # inline tables
        "[" + ".".join(["a"] * DEEP) + "]\n",  # a table header
        "a" + ".a" * DEEP + " = 1\n",  # a dotted key
        "[input.columns.order_id.more]\nname = 'x'\n",  # parsed, but deeper than any setting
    ],
    ids=["arrays", "inline-tables", "table-header", "dotted-key", "one-level-too-deep"],
)
def test_a_deeply_nested_file_is_a_configuration_error_naming_it(home: Path, toml: str) -> None:
    message = refused(home, toml=toml)
    assert message.startswith(f"{home / 'orderpipe.toml'}: ")
    assert "nested too deeply" in message and "remove the deeper nesting" in message
    assert len(message) < 400


@pytest.mark.parametrize(
    "text",
    ["[" * DEEP + "]" * DEEP, '{"a": ' * DEEP + "1" + "}" * DEEP, '{"columns": {"order_id": {"x": "y"}}}'],
    ids=["arrays", "objects", "one-level-too-deep"],
)
def test_a_deeply_nested_input_variable_is_a_configuration_error_naming_it(home: Path, text: str) -> None:
    message = refused(home, {"ORDERPIPE_INPUT": text})
    assert message.startswith("ORDERPIPE_INPUT: ")
    assert "nested too deeply" in message and '{"columns": {"order_id": "Name"}}' in message
    assert len(message) < 400


def test_deep_nesting_exits_2_from_the_command_line(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "orderpipe.toml").write_text("categories = " + "[" * DEEP + "]" * DEEP)
    result = CliRunner().invoke(main, ["--home", str(home), "batches"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"orderpipe: {home / 'orderpipe.toml'}: tables or arrays nested too deeply")
    assert "internal error" not in result.stderr
    (home / "orderpipe.toml").unlink()
    env = {"ORDERPIPE_INPUT": '{"a": ' * DEEP + "1" + "}" * DEEP}
    result = CliRunner().invoke(main, ["--home", str(home), "kpis", "daily"], env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith("orderpipe: ORDERPIPE_INPUT: tables or arrays nested too deeply")


def test_a_message_quoting_a_huge_value_stays_a_line(home: Path) -> None:
    message = refused(home, toml="categories = " + "[" * 400 + "]" * 400 + "\nlog_level = '" + "x" * 100_000 + "'\n")
    assert all(len(line) <= 420 for line in message.splitlines())
    message = refused(home, toml=f"{'k' * 10_000} = 1\n")
    assert message.startswith(f"{home / 'orderpipe.toml'}: unknown setting 'kkkk")
    assert len(message.split("; known:")[0]) < 200
