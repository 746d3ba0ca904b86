"""Settings that would change what the stored facts mean are refused, not applied: the home
records the settings its first batch was cut with, and a counting command with others stops
with exit 2 before reading anything. Safe changes go through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orderpipe.adapters.folder import FolderStore
from orderpipe.cli import main
from orderpipe.config import load_settings
from orderpipe.core.meaning import MEANING_FILE, input_meaning, meaning_changes
from orderpipe.core.shape import SEED_SHAPE, InputShape
from orderpipe.errors import InfrastructureError
from orderpipe.settings_record import SettingsRecord
from tests.adapters.test_notify import Receiver
from tests.conftest import order, write
from tests.test_input_shapes import SHOPIFY_HEADER, SHOPIFY_ROWS


def cli(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)


def daily(home: Path) -> list[dict[str, object]]:
    return json.loads(cli(home, "kpis", "daily", "--format", "json").output)  # type: ignore[no-any-return]


def test_a_seed_preset_over_a_home_of_line_items_is_refused(home: Path, tmp_path: Path) -> None:
    assert cli(home, "init", "--preset", "shopify").exit_code == 0
    export = write(tmp_path / "orders_export_1.csv", SHOPIFY_ROWS, header=SHOPIFY_HEADER)
    assert cli(home, "run", str(export)).exit_code == 0
    before = daily(home)
    assert sum(int(str(d["total_orders"])) for d in before) == 3  # three orders, one spanning two lines

    assert cli(home, "init", "--preset", "seed", "--force").exit_code == 0
    again = write(tmp_path / "more.csv", [order("O9", date="2025-10-07")])
    for args in (("run", str(again)), ("kpis", "rebuild"), ("replay", "--rejected")):
        refused = cli(home, *args)
        assert refused.exit_code == 2, (args, refused.output)
        assert "input.grain: 'line' when the stored facts were counted, 'order' now" in refused.output
        assert "input.columns.order_id: 'Name' when the stored facts were counted, 'order_id' now" in refused.output
        assert "start a new home" in refused.output
    assert daily(home) == before  # the KPIs still read as they were counted
    assert not list((home / "input").iterdir())  # nothing was taken in
    assert cli(home, "batches", "--format", "jsonl").exit_code == 0  # reading still works

    assert cli(home, "init", "--preset", "shopify", "--force").exit_code == 0  # undo the change
    assert cli(home, "run", str(export)).exit_code == 0  # the same bytes: a duplicate, counted once
    assert daily(home) == before


SAFE = [
    'categories = ["Books", "Toys", "Home", "Electronics", "Clothing", "Sports", "Beauty", "Grocery", "Garden"]',
    'log_level = "WARNING"',
    'notify.webhook_url = "http://127.0.0.1:9/hook"',
    "facts.rows_per_part = 5000",
    'prefixes.input = "inbox/"',
    'prefixes.processed = "done/"',
    'prefixes.rejected = "bad/"',
]
REFUSED = [
    ('input.grain = "line"', "input.grain"),
    ('input.columns.order_id = "Order"', "input.columns.order_id"),
    ('input.columns.customer_id = "Email"', "input.columns.customer_id"),
    ('input.columns.order_date = "Day"', "input.columns.order_date"),
    ('input.columns.quantity = "Qty"', "input.columns.quantity"),
    ('input.columns.unit_price = "Price"', "input.columns.unit_price"),
    ('input.columns.product_id = "Sku"', "input.columns.product_id"),
    ('input.columns.category = "Type"', "input.columns.category"),
    ('input.columns.returned = "Back"', "input.columns.returned"),
    ('input.columns.order_timestamp = "Created"\ninput.timezone = "UTC"', "input.timezone"),
    ('input.returned.column = "Status"\ninput.returned.values = ["refunded"]', "input.returned.column"),
    ("input.catalog = true", "input.catalog"),
    ('prefixes.warehouse = "facts/"', "prefixes.warehouse"),
]


def _toml(line: str) -> str:
    """`a.b.c = v` lines as TOML tables."""
    tables: dict[str, list[str]] = {}
    for entry in line.splitlines():
        key, _, value = entry.partition(" = ")
        table, _, name = key.rpartition(".")
        tables.setdefault(table, []).append(f"{name} = {value}")
    top = "\n".join(tables.pop("", []))
    return top + "\n" + "".join(f"\n[{t}]\n" + "\n".join(v) + "\n" for t, v in tables.items())


@pytest.fixture
def counted(home: Path, tmp_path: Path) -> Path:
    """A home with one accepted batch under the default settings."""
    assert cli(home, "run", str(write(tmp_path / "first.csv", [order("O1")]))).exit_code == 0
    return home


@pytest.mark.parametrize("setting", SAFE)
def test_a_safe_change_goes_through(setting: str, counted: Path, tmp_path: Path) -> None:
    hook = Receiver() if "webhook_url" in setting else None  # (a receiver that answers: no retries)
    if hook is not None:
        setting = setting.replace("http://127.0.0.1:9/hook", hook.url)
    (counted / "orderpipe.toml").write_text(_toml(setting))
    result = cli(counted, "run", str(write(tmp_path / "second.csv", [order("O2")])))
    assert result.exit_code == 0, result.output
    if hook is not None:
        hook.server.shutdown()
        assert [(body["event"], body["file"]) for body in hook.bodies] == [("accepted", "second.csv")]


@pytest.mark.parametrize(("setting", "named"), REFUSED)
def test_a_change_of_meaning_is_refused(setting: str, named: str, counted: Path, tmp_path: Path) -> None:
    (counted / "orderpipe.toml").write_text(_toml(setting))
    result = cli(counted, "run", str(write(tmp_path / "second.csv", [order("O2")])))
    assert result.exit_code == 2, result.output
    assert f"{named}: " in result.output and "now" in result.output
    assert "Nothing was read or changed" in result.output


def test_a_home_with_nothing_counted_takes_any_settings(home: Path, tmp_path: Path) -> None:
    rejected = write(tmp_path / "bad.csv", [order("O1", quantity="0")])
    assert cli(home, "run", str(rejected)).exit_code == 1  # a rejected file records nothing
    assert not (home / MEANING_FILE).exists()
    (home / "orderpipe.toml").write_text(_toml('input.columns.order_id = "Order"'))
    good = write(tmp_path / "good.csv", [order("O1")], header="Order" + order_header_tail())
    assert cli(home, "run", str(good)).exit_code == 0
    recorded = json.loads((home / MEANING_FILE).read_text())["settings"]
    assert recorded["input.columns.order_id"] == "Order"


def order_header_tail() -> str:
    return ",customer_id,order_date,category,product_id,quantity,unit_price,returned"


def test_a_damaged_record_is_named(counted: Path, tmp_path: Path) -> None:
    (counted / MEANING_FILE).write_text("{not json")
    result = cli(counted, "run", str(write(tmp_path / "second.csv", [order("O2")])))
    assert result.exit_code == 2
    assert f"{MEANING_FILE} in the home is damaged" in result.output


def test_a_process_that_lost_the_race_to_other_settings_does_not_commit(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "home")
    first = SettingsRecord(store, SEED_SHAPE, "warehouse/", tmp_path / "work")
    lines = SettingsRecord(store, InputShape(grain="line"), "warehouse/", tmp_path / "work")
    first.ensure()
    with pytest.raises(InfrastructureError, match=r"input\.grain: 'order' when"):
        lines.ensure()
    first.ensure()  # the same settings: recorded already, nothing to say


def test_every_setting_of_the_shape_is_in_the_meaning() -> None:
    """A new [input] setting must be placed: part of the meaning, or safe on purpose."""
    settings = load_settings(Path("/nonexistent-home"), environ={})
    meaning = input_meaning(settings.shape, "warehouse/")
    # which new files are catalog, header or line batches, which order dates are plausible: not
    # what a row says
    safe_on_purpose = {"input.catalog_files", "input.header_files", "input.line_files"} | {
        "input.dates",
        "input.earliest_date",
        "input.latest_date",
    }
    input_keys = {k for k in _known_keys() if k.startswith("input.")}
    assert input_keys - set(meaning) == safe_on_purpose
    assert meaning_changes({"input.grain": "order"}, meaning) == []  # an older record: the rest unchanged


def _known_keys() -> set[str]:
    from orderpipe.config import _CHECKS

    return set(_CHECKS)


def test_a_reports_digest_of_the_settings_is_the_same_across_versions() -> None:
    """A rejected file's report keeps the digest of the settings it was checked with; a replay
    leaves it alone while the digest is unchanged. So the digest of the same settings must not
    change when orderpipe does: these values were computed by earlier versions."""
    from orderpipe.core.meaning import checked_with
    from orderpipe.core.rules import DEFAULT_CATEGORIES

    shape = InputShape(grain="line", timezone="UTC", columns=(("order_timestamp", "Created at"),))
    assert checked_with(DEFAULT_CATEGORIES, SEED_SHAPE) == "24f352ebc8398020"
    assert checked_with(DEFAULT_CATEGORIES, shape, "2025-03-11") == "8ebf7a2b73573bbf"
    relational = InputShape(grain="relational", catalog=True, line_files="items*.csv")
    assert checked_with(DEFAULT_CATEGORIES, relational) != checked_with(
        DEFAULT_CATEGORIES, InputShape(grain="relational", catalog=True)
    )


def test_a_refusal_says_what_changed_and_both_ways_forward() -> None:
    from orderpipe.core.meaning import meaning_changes, refusal

    changes = meaning_changes(
        {"input.grain": "order", "input.timezone": ""}, {"input.grain": "line", "input.timezone": "UTC"}
    )
    assert changes == [
        "input.grain: 'order' when the stored facts were counted, 'line' now",
        "input.timezone: (not set) when the stored facts were counted, 'UTC' now",
    ]
    assert refusal(changes, "/h") == (
        "the settings would change what the facts stored in /h mean (input.grain: 'order' when the stored facts"
        " were counted, 'line' now; input.timezone: (not set) when the stored facts were counted, 'UTC' now)."
        " Nothing was read or changed. Either set these back to their values when the facts were counted (the"
        " record is input-settings.json in the home), or start a new home with the new settings and count the"
        " archived files of processed/ again there, in their commit order (`orderpipe batches --wide`)"
    )
