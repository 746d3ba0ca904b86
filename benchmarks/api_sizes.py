"""Worst-case sizes of the API's answers as Lambda returns them, against its 6 MB response limit.

Each endpoint is asked through the Lambda handler's own path (Mangum over the app, an API Gateway
HTTP API event) over a store that holds the widest values the schema allows on every date of the
largest range (params.MAX_RANGE_DAYS): money of 33 digits, counts of 19 (SQLite's integers),
rates of 1.000000, category names of 32 characters. The size is that of the response the runtime
sends (`json.dumps` of the handler's result), which is what the limit applies to.

The run history is asked the same way: /api/batches of 1,000 runs, each listing every date of
the range (its largest page, following every `Link`), and /api/batches/{id} of a batch whose file
came 1,000 times, each run with the widest report a run keeps.

    .venv/bin/python benchmarks/api_sizes.py --categories 8 11 50 --unpaged
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from orderpipe.bootstrap import Reader
from orderpipe.core.report import BRIEF_SAMPLES, MAX_FILE_NAME_CHARS, MAX_MESSAGE_CHARS, MAX_VALUE_CHARS
from orderpipe.core.rules import ERROR_CODES
from orderpipe.ports import RunRecord
from orderpipe.web import params
from orderpipe.web.app import create_app
from orderpipe.web.pages import MAX_ANSWER_BYTES
from orderpipe.web.security import Guard

LAMBDA_LIMIT = 6 * 1024 * 1024
START = dt.date(2000, 1, 1)
MONEY = Decimal("9" * 31 + ".99")
COUNT = 10**19 - 1
RATE = Decimal("1.000000")
#: A validation report as wide as a run keeps one: every rule, BRIEF_SAMPLES samples each, every
#: text at its clipped length in a character JSON escapes to six bytes.
WIDE_REPORT = json.dumps({
    "file": "€" * MAX_FILE_NAME_CHARS, "verdict": "invalid", "rows": COUNT, "warnings": [],
    "errors": [{"code": code, "count": COUNT, "hint": "€" * MAX_MESSAGE_CHARS, "samples": [
        {"line": COUNT, "column": "€" * MAX_VALUE_CHARS, "value": "€" * MAX_VALUE_CHARS,
         "message": "€" * MAX_MESSAGE_CHARS}
    ] * BRIEF_SAMPLES} for code in ERROR_CODES],
}, ensure_ascii=False)  # fmt: skip
EVENT = Path(__file__).resolve().parents[1] / "tests" / "events" / "apigw_http_v2_daily_kpis.json"


class WideKpis:
    """Every date of the range, every category, each value as wide as it can be."""

    def __init__(self, categories: int, days: int) -> None:
        self.names = [f"Category {i:02d} " + "x" * 20 for i in range(categories)]
        self.dates = [(START + dt.timedelta(days=n)).isoformat() for n in range(days)]

    def _within(self, start: str | None, end: str | None) -> list[str]:
        return [d for d in self.dates if (start is None or d >= start) and (end is None or d <= end)]

    def daily(self, start: str | None, end: str | None) -> list[dict[str, object]]:
        return [
            {"order_date": d, "total_orders": COUNT, "total_revenue": MONEY, "total_items_sold": COUNT,
             "return_rate": RATE, "unique_customers": COUNT, "returned_orders": COUNT}
            for d in self._within(start, end)
        ]  # fmt: skip

    def category(self, name: str | None, start: str | None, end: str | None) -> list[dict[str, object]]:
        return [
            {"category": c, "order_date": d, "daily_revenue": MONEY, "avg_order_value": MONEY,
             "avg_return_rate": RATE, "orders": COUNT, "returned_orders": COUNT}
            for c in self.names if name in (None, c) for d in self._within(start, end)
        ]  # fmt: skip

    def generation(self) -> int:
        return 1


class WideLedger:
    """`count` runs whose every field is as wide as the run history holds: a 255-byte file
    name, the dates of a file spanning the range, a long message; positions 1..count."""

    def __init__(self, dates: list[str], count: int = params.MAX_BATCH_LIMIT, one_batch: bool = False) -> None:
        self.dates = tuple(dates)
        self.count = count
        self.one_batch = one_batch  # every run of one batch (its file dropped again and again)

    def last_run(self) -> str:
        return str(self.count)

    def _id(self, n: int) -> str:
        return f"{0 if self.one_batch else n:064x}"

    def _record(self, n: int) -> RunRecord:
        return RunRecord(self._id(n), "€" * 85, "accepted", COUNT, self.dates, "2026-01-01T00:00:00.000+00:00",
                         "2026-01-01T00:00:01.000+00:00", "m" * 400, COUNT, WIDE_REPORT, position=str(n))  # fmt: skip

    def runs(
        self,
        limit: int | None = None,
        status: str | None = None,
        batch_id: str | None = None,
        before: str | None = None,
    ) -> list[Any]:
        """The latest `limit` runs before `before` (of the ids that start with `batch_id`), oldest first."""
        below = min(int(before), self.count + 1) if before is not None else self.count + 1
        chosen = [n for n in range(1, below) if batch_id is None or self._id(n).startswith(batch_id)]
        return [self._record(n) for n in chosen[-limit if limit else 0 :]]


def lambda_size(app: Any, path: str, query: str) -> tuple[int, int, str | None]:
    """(the Lambda response's bytes, the body's UTF-8 bytes, the Link header) of one GET."""
    from mangum import Mangum

    event = json.loads(EVENT.read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["rawQueryString"] = query
    event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&")) if query else {}
    result = Mangum(app, lifespan="off")(event, None)
    assert result["statusCode"] == 200, result
    return len(json.dumps(result)), len(result["body"].encode()), result["headers"].get("link")


def lambda_pages(app: Any, path: str, query: str) -> list[tuple[int, int, str | None]]:
    """lambda_size of every page of one question, following each `Link: rel="next"`."""
    answers = [lambda_size(app, path, query)]
    while answers[-1][2] is not None:
        link = str(answers[-1][2])
        answers.append(lambda_size(app, path, link[link.index("<?") + 2 : link.index(">")]))
    return answers


def measure_history(bound: int | None, dates: list[str]) -> None:
    """/api/batches of 1,000 runs (its largest page, and how many pages), and /api/batches/{id}
    of a batch whose file came 1,000 times, each run listing `dates` and a wide report."""
    shown = "unpaged" if bound else f"{MAX_ANSWER_BYTES:,}"
    for ledger, path, query in [
        (WideLedger(dates), "/api/batches", f"limit={params.MAX_BATCH_LIMIT}"),
        (WideLedger(dates), "/api/batches", f"limit={params.MAX_BATCH_LIMIT}&format=csv"),
        (WideLedger(dates, one_batch=True), "/api/batches/" + "0" * 64, ""),
    ]:
        app = create_app(lambda g=ledger: Reader(WideKpis(1, 1), g), guard=Guard(allowed_hosts=None),
                         answer_bytes=bound)  # fmt: skip
        answers = lambda_pages(app, path, query) if bound is None else [lambda_size(app, path, query)]
        size, body, link = max(answers)
        what = f"largest of {len(answers)} pages" if len(answers) > 1 else (link or "-")
        mark = "OVER" if size > LAMBDA_LIMIT else ""
        print(f"{shown:>9} {'-':>10} {path[:20]:<20} {query:<24} {size:>13,} {body:>11,}  {what} {mark}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--categories", type=int, nargs="+", default=[8, 11, 50])
    parser.add_argument("--batch-dates", type=int, default=0, help="dates per run (default: the range's)")
    parser.add_argument("--unpaged", action="store_true", help="also measure with no bound (as before paging)")
    args = parser.parse_args(argv)
    days = params.MAX_RANGE_DAYS
    end = (START + dt.timedelta(days=days - 1)).isoformat()
    span = f"from={START}&to={end}"
    print(f"Lambda limit {LAMBDA_LIMIT:,} bytes; range {START}..{end} ({days} days)")
    print(f"{'bound':>9} {'categories':>10} {'endpoint':<20} {'query':<24} {'lambda bytes':>13} {'body':>11}  next")
    for bound in [None, 10**12] if args.unpaged else [None]:
        for categories in args.categories:
            kpis = WideKpis(categories, days)
            app = create_app(lambda k=kpis: Reader(k, WideLedger([])), guard=Guard(allowed_hosts=None),
                             answer_bytes=bound)  # fmt: skip
            asks = [("/api/kpis/category", f"{span}{q}") for q in ("", "&money=string", "&format=csv")]
            if categories == args.categories[0]:
                asks += [("/api/kpis/daily", f"{span}{q}") for q in ("", "&money=string", "&format=csv")]
            for path, query in asks:
                size, body, link = lambda_size(app, path, query)
                shown = "unpaged" if bound else f"{MAX_ANSWER_BYTES:,}"
                mark = "OVER" if size > LAMBDA_LIMIT else ""
                extra = query.replace(span, "").lstrip("&")
                print(f"{shown:>9} {categories:>10} {path:<20} {extra:<24} {size:>13,} "
                      f"{body:>11,}  {link or '-'} {mark}")  # fmt: skip
        measure_history(bound, WideKpis(1, days).dates[: args.batch_dates or days])
    return 0


if __name__ == "__main__":
    sys.exit(main())
