"""Configured input shapes through the real command: `init --preset`, `validate`, `run`; every
new error code with a failing and a passing file; a Shopify-like export end to end."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from orderpipe.cli import main
from orderpipe.config import load_settings
from orderpipe.errors import ConfigError


@pytest.fixture
def cli(home: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(main, ["--home", str(home), *args], env=env, catch_exceptions=False)

    return invoke


def configure(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "orderpipe.toml").write_text(text)


LINES = """
[input]
grain = "line"
timezone = "Europe/Berlin"
[input.columns]
order_id = "Order"
order_timestamp = "Created"
[input.returned]
column = "Status"
values = ["refunded"]
"""
HEADER = "Order,customer_id,Created,category,product_id,quantity,unit_price,Status"


def report_of(home: Path, name: str) -> dict[str, object]:
    return json.loads((home / "rejected" / f"{name}.report.json").read_text())


def samples(report: dict[str, object], code: str) -> list[dict[str, object]]:
    issues = [i for i in report["errors"] if i["code"] == code]  # type: ignore[attr-defined, index]
    assert issues, report
    return issues[0]["samples"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("code", "bad", "good", "where"),
    [
        (
            "invalid-timestamp",
            ["O1,C1,2025-10-07 25:00:00 +0200,Books,P1,1,10,paid"],
            ["O1,C1,2025-10-07 23:00:00 +0200,Books,P1,1,10,paid"],
            (2, "Created"),
        ),
        (
            "duplicate-line",
            ["O1,C1,2025-10-07 10:00:00,Books,P1,1,10,paid", "O1,,,Books,P1,2,10,"],
            ["O1,C1,2025-10-07 10:00:00,Books,P1,1,10,paid", "O1,,,Books,P2,2,10,"],
            (3, "product_id"),
        ),
        (
            "inconsistent-order",
            ["O1,C1,2025-10-07 10:00:00,Books,P1,1,10,paid", "O1,C2,,Home,P2,2,10,"],
            ["O1,C1,2025-10-07 10:00:00,Books,P1,1,10,paid", "O1,C1,,Home,P2,2,10,"],
            (3, "customer_id"),
        ),
    ],
)
def test_each_new_error_code_fails_and_passes(  # type: ignore[no-untyped-def]
    cli, home: Path, tmp_path: Path, code: str, bad: list[str], good: list[str], where: tuple[int, str]
) -> None:
    configure(home, LINES)
    bad_file = tmp_path / "bad.csv"
    bad_file.write_text("\n".join([HEADER, *bad]) + "\n")
    result = cli("run", str(bad_file))
    assert result.exit_code == 1, result.output
    sample = samples(report_of(home, "bad.csv"), code)[0]
    assert (sample["line"], sample["column"]) == where
    if code != "invalid-timestamp":  # names both lines
        assert "line 2" in str(sample["message"]), sample
    assert (home / "rejected" / "bad.csv").exists()
    good_file = tmp_path / "good.csv"
    good_file.write_text("\n".join([HEADER, *good]) + "\n")
    result = cli("run", str(good_file))
    assert result.exit_code == 0, result.output
    assert (home / "processed" / "good.csv").exists()


def test_inherited_fields_and_status_give_the_kpis(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    configure(home, LINES)
    path = tmp_path / "orders.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                "O1,C1,2025-10-25T22:30:00Z,Books,P1,2,10.00,Refunded",  # 00:30 CEST: the 26th in Berlin
                "O1,,,Home,P2,1,5.25,",
                "O2,C2,2025-10-26T22:30:00Z,Books,P1,1,3.00,paid",  # 23:30 CET: still the 26th
            ]
        )
        + "\n"
    )
    assert cli("run", str(path)).exit_code == 0
    daily = json.loads(cli("kpis", "daily", "--format", "json").output)
    assert daily == [
        {
            "order_date": "2025-10-26",
            "total_orders": 2,
            "total_revenue": 28.25,
            "total_items_sold": 4,
            "return_rate": 0.5,
            "unique_customers": 2,
            "returned_orders": 1,
        }
    ]
    category = json.loads(cli("kpis", "category", "--format", "json").output)
    assert [(c["category"], c["orders"], c["daily_revenue"], c["avg_return_rate"]) for c in category] == [
        ("Books", 2, 23.0, 0.5),
        ("Home", 1, 5.25, 1.0),
    ]


def test_validate_explains_the_shape(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    configure(home, LINES)
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + ",Note\nO1,C1,2025-10-07 10:00:00,Books,P1,1,10,paid,x\n")
    result = cli("validate", str(path))
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "orders.csv: valid, 1 row",
        "  warning: extra columns ignored: 'Note'",
        "  read as: grain: line items: an order spans rows; a line is (order, line_id if the file has it, "
        "else product_id); a later file replaces whole orders",
        "  read as: order_id <- 'Order'",
        "  read as: customer_id <- 'customer_id'; blank on an order's later lines = as on its first line",
        "  read as: order_date <- local date in Europe/Berlin of the timestamp in 'Created'; blank on an "
        "order's later lines = as on its first line",
        "  read as: category <- 'category'",
        "  read as: product_id <- 'product_id'",
        "  read as: quantity <- 'quantity'",
        "  read as: unit_price <- 'unit_price'",
        "  read as: returned <- 'Status' is one of 'refunded' (any case); blank on an order's later lines = as on "
        "its first line",
    ]
    report = json.loads(cli("validate", str(path), "--format", "json").output)
    assert report["shape"][1] == "order_id <- 'Order'"
    missing = tmp_path / "missing.csv"
    missing.write_text("order_id,customer_id,Created,category,product_id,quantity,unit_price,Status\n")
    result = cli("validate", str(missing))
    assert result.exit_code == 1
    assert "line 1 [Order]: the header has no 'Order' column, which feeds order_id" in result.output


def test_the_seed_format_is_unchanged_without_input_settings(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "seed.csv"
    path.write_text(
        "order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned\n"
        "O1,C1,2025-07-06,Books,P1,1,10,false\nO1,C1,2025-07-06,Books,P2,1,10,false\n"
    )
    result = cli("validate", str(path), "--format", "json")
    report = json.loads(result.output)
    assert "shape" not in report and [i["code"] for i in report["errors"]] == ["duplicate-order-id"]


# -- Shopify ---------------------------------------------------------------------------------------
#: The orders export's header as Shopify writes it (the first columns and the ones we read).
SHOPIFY_HEADER = (
    "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,Currency,"
    "Subtotal,Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,Created at,"
    "Lineitem quantity,Lineitem name,Lineitem price,Lineitem compare at price,Lineitem sku,"
    "Lineitem requires shipping,Lineitem taxable,Lineitem fulfillment status,Billing Name,Vendor,Id,Tags"
)
SHOPIFY_ROWS = [
    # first row of an order: every order field; later rows: only the line's own fields
    "#1001,ann@example.com,paid,2025-10-07 09:52:01 +0200,fulfilled,2025-10-08 14:21:21 +0200,yes,EUR,"
    '53.91,0.00,0.00,53.91,WELCOME10,5.99,Standard,2025-10-07 09:50:26 +0200,2,"Masque, Bio",19.99,24.90,'
    "MASK-1,true,true,fulfilled,Ann Example,Beauty,7410991464714,",
    "#1001,,,,,,,,,,,,,,,,1,Tote bag,13.93,,TOTE-1,true,true,fulfilled,,Home,,",
    "#1002,bob@example.com,refunded,2025-10-07 23:40:00 -0500,unfulfilled,,no,EUR,20.00,0.00,0.00,20.00,,"
    "0.00,Standard,2025-10-07 23:30:00 -0500,1,Paperback,20.00,,BOOK-1,true,true,,Bob Example,Books,7410991464715,vip",
    "#1003,ann@example.com,partially_refunded,2025-10-08 08:00:00 +0200,fulfilled,,yes,EUR,9.00,0.00,0.00,"
    "9.00,,0.00,Standard,2025-10-08 08:00:00 +0200,3,Soap,3.00,,SOAP-1,true,true,fulfilled,Ann Example,Beauty,"
    "7410991464716,",
]


def test_a_shopify_export_end_to_end_with_the_preset(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("init", "--preset", "shopify")
    assert result.exit_code == 0, result.output
    config = home / "orderpipe.toml"
    config.write_text(config.read_text().replace('timezone = "UTC"', 'timezone = "Europe/Paris"'))
    export = tmp_path / "orders_export_1.csv"
    export.write_bytes(("\r\n".join([SHOPIFY_HEADER, *SHOPIFY_ROWS]) + "\r\n").encode("utf-8-sig"))
    result = cli("run", str(export))
    assert result.exit_code == 0, result.output
    assert (home / "processed" / "orders_export_1.csv").exists()
    daily = {d["order_date"]: d for d in json.loads(cli("kpis", "daily", "--format", "json").output)}
    # #1001 (two lines) in Paris on the 7th; #1002 at 23:30 in UTC-5 is 06:30 on the 8th in Paris
    assert daily["2025-10-07"]["total_orders"] == 1
    assert Decimal(str(daily["2025-10-07"]["total_revenue"])) == Decimal("53.91")
    assert daily["2025-10-07"]["total_items_sold"] == 3
    assert daily["2025-10-08"]["total_orders"] == 2 and daily["2025-10-08"]["return_rate"] == 0.5
    assert daily["2025-10-08"]["unique_customers"] == 2
    categories = {
        (c["category"], c["order_date"]): c for c in json.loads(cli("kpis", "category", "--format", "json").output)
    }
    assert categories[("Books", "2025-10-08")]["avg_return_rate"] == 1.0
    assert categories[("Beauty", "2025-10-08")]["avg_return_rate"] == 0.0  # partially refunded is not returned
    assert categories[("Home", "2025-10-07")]["daily_revenue"] == 13.93


def test_init_writes_loadable_presets_and_keeps_an_existing_file(cli, home: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("init", "--preset", "seed").exit_code == 0
    assert load_settings(home, environ={}).shape.is_seed
    result = cli("init", "--preset", "shopify")
    assert result.exit_code == 2 and "already exists" in result.output
    assert cli("init", "--preset", "shopify", "--force").exit_code == 0
    shape = load_settings(home, environ={}).shape
    assert (
        shape.lines and shape.source("unit_price") == "Lineitem price" and shape.returned_column == "Financial Status"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[input]\ngrain = "rows"\n', "must be 'order'"),
        ('[input]\ntimezone = "Mars/Olympus"\n', "IANA time zone"),
        ('[input.columns]\norder_timestamp = "Created at"\n', "needs input.timezone"),
        ('[input]\ntimezone = "UTC"\n', "no input.columns.order_timestamp"),
        ('[input.returned]\ncolumn = "Status"\n', "set both input.returned.column and input.returned.values"),
        ('[input.columns]\norder_id = "Name"\ncustomer_id = "Name"\n', "feed two fields"),
        ('[input.columns]\norder_idd = "Name"\n', "did you mean 'input.columns.order_id'"),
        ('[input.columns]\nline_id = "Line"\n', "only with input.grain = 'line'"),
    ],
)
def test_bad_input_settings_are_named(home: Path, text: str, message: str) -> None:
    configure(home, text)
    with pytest.raises(ConfigError, match=message):
        load_settings(home, environ={})


def test_input_settings_from_the_environment(home: Path) -> None:
    env = {
        "ORDERPIPE_INPUT_GRAIN": "line",
        "ORDERPIPE_INPUT_COLUMNS_ORDER_ID": "Name",
        "ORDERPIPE_INPUT_RETURNED_COLUMN": "Financial Status",
        "ORDERPIPE_INPUT_RETURNED_VALUES": "refunded,voided",
    }
    shape = load_settings(home, environ=env).shape
    assert shape.lines and shape.source("order_id") == "Name" and shape.returned_values == ("refunded", "voided")


def test_the_whole_input_table_as_json(home: Path) -> None:
    table = {"grain": "line", "columns": {"order_id": "Name"}, "returned": {"column": "S", "values": ["refunded"]}}
    env = {"ORDERPIPE_INPUT": json.dumps(table), "ORDERPIPE_INPUT_COLUMNS_ORDER_ID": "Order"}
    shape = load_settings(home, environ=env).shape
    assert shape.lines and shape.source("order_id") == "Order" and shape.returned_values == ("refunded",)
    assert load_settings(home, environ={"ORDERPIPE_INPUT": "{}"}).shape.is_seed
    with pytest.raises(ConfigError, match=r"unknown setting 'input\.grian'"):
        load_settings(home, environ={"ORDERPIPE_INPUT": '{"grian": "line"}'})
    with pytest.raises(ConfigError, match="not a JSON object"):
        load_settings(home, environ={"ORDERPIPE_INPUT": "grain=line"})


def test_an_order_whose_lines_are_apart_is_read_exactly(cli, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The fast pass fills blank order fields from the row above; an order split by another one
    is left to the exact validator, which fills them from the order's first line."""
    configure(home, LINES)
    path = tmp_path / "apart.csv"
    rows = [
        "O1,C1,2025-10-07 10:00:00,Books,P1,1,10,refunded",
        "O2,C2,2025-10-08 10:00:00,Books,P1,1,1,paid",
        "O1,,,Home,P2,1,5,",
    ]
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    assert cli("run", str(path)).exit_code == 0
    category = json.loads(cli("kpis", "category", "--format", "json").output)
    assert [(c["category"], c["order_date"], c["orders"], c["avg_return_rate"]) for c in category] == [
        ("Books", "2025-10-07", 1, 1.0),
        ("Books", "2025-10-08", 1, 0.0),
        ("Home", "2025-10-07", 1, 1.0),
    ]
