"""Invalid copies of a benchmark file, for the `invalid` section of `run.py`.

`python benchmarks/invalid.py PLAIN OUT --near-end` writes PLAIN with one row's quantity spelled
`x`, 1,000 rows before its end; `--every 10` spoils every tenth row (10 % of the rows) instead.
The other bytes are PLAIN's: the run of the copy is compared with the run of PLAIN.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl


def broken(plain: Path, out: Path, every: int | None) -> None:
    """`plain` with a bad quantity in one row near its end (`every` None) or in every `every`-th row."""
    scan = pl.scan_csv(plain, infer_schema=False).with_row_index("__row")
    if every is None:
        rows = scan.select(pl.len()).collect().item()
        bad = pl.col("__row") == max(rows - 1_000, 0)
    else:
        bad = pl.col("__row") % every == every - 1
    spoiled = scan.with_columns(pl.when(bad).then(pl.lit("x")).otherwise(pl.col("quantity")).alias("quantity"))
    part = out.with_name(out.name + ".part")  # a cut file is never taken for the copy
    spoiled.drop("__row").sink_csv(part, maintain_order=True)
    part.replace(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("plain", type=Path)
    parser.add_argument("out", type=Path)
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--near-end", action="store_true")
    how.add_argument("--every", type=int)
    args = parser.parse_args()
    broken(args.plain, args.out, None if args.near_end else args.every)


if __name__ == "__main__":
    main()
