"""The ledger's contract, the same on SQLite and on DynamoDB."""

from __future__ import annotations

import datetime as dt

from orderpipe.adapters.sqlite import SqliteLedger
from orderpipe.ports import FactEntry
from orderpipe.workflow import Pipeline


def test_fact_entries_reads_any_number_of_dates_in_commit_order(any_pipeline: Pipeline) -> None:
    # More dates than SQLite takes as parameters of one statement (999 in older builds).
    count = 1_200 if isinstance(any_pipeline.ledger, SqliteLedger) else 30
    first = dt.date(2025, 1, 1)
    dates = [(first + dt.timedelta(days=i)).isoformat() for i in range(count)]
    ledger = any_pipeline.ledger
    a = ledger.commit("batch-a", "a.csv", 10, {d: [0] for d in dates})
    b = ledger.commit("batch-b", "b.csv", 10, {d: [0, 1] for d in dates[::2]})
    c = ledger.commit("batch-c", "c.csv", 10, {dates[-1]: [2]})
    unknown = "1999-12-31"
    asked = [dates[-1], unknown, *dates, dates[0]]  # in any order, repeated, some never committed

    read = ledger.fact_entries(asked)

    assert set(read) == {*dates, unknown}
    assert read[unknown] == []
    for i, day in enumerate(dates):
        expected = [FactEntry(day, "batch-a", a.seq, (0,))]
        if i % 2 == 0:
            expected.append(FactEntry(day, "batch-b", b.seq, (0, 1)))
        if day == dates[-1]:
            expected.append(FactEntry(day, "batch-c", c.seq, (2,)))
        assert read[day] == expected, day
