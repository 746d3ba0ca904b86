"""Floors under `orderpipe run` on the same machine: what any job on the file must pay.

- `read`: start, import Polars, read every field as a string (a byte count per column keeps
  each field parsed); no check, no types, no output.
- `checks`: the same plus orderpipe's rule checks on every row (`screen_columns`, the values as
  read), counted and thrown away: no facts, no hash, no KPIs, no store.

What a wall-time target leaves once a floor is paid is what the rest may take.
"""

from __future__ import annotations

import sys

import polars as pl


def main(path: str, floor: str) -> None:
    scan = pl.scan_csv(path, infer_schema=False, empty_string_is_null=False, encoding="utf8")
    if floor == "read":
        scan.select(pl.all().str.len_bytes().sum()).collect(engine="streaming")
        return
    from orderpipe.core.rules import DEFAULT_CATEGORIES
    from orderpipe.core.screen import screen_columns

    columns = scan.with_columns(pl.col("returned").alias("__last"))
    checked = columns.select(screen_columns(DEFAULT_CATEGORIES, trimmed=False))
    ok, rows = checked.select(pl.col("ok").sum(), pl.len()).collect(engine="streaming").row(0)
    if ok != rows:
        raise SystemExit(f"{path}: some row fails the checks; the floor is measured on valid files")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
