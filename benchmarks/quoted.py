"""The same orders as other files write them: quoted fields, CRLF line ends.

A generated file (`generate.py`) rewritten, value for value, as real exports write it, so a run
of each variant can be compared with the plain file it came from (same rows, same KPIs):

- `all`: every field quoted, CRLF (database and BI exports, spreadsheets);
- `commas`: the same, and in 1 row of 100 a comma inside a quoted value (the product id, or the
  line's SKU: the KPIs do not read it);
- `breaks`: the same with a line break (LF, as spreadsheets write one inside a cell) instead;
- `names`: line items with only the item's name quoted, holding a comma (a shop export quotes
  only what needs it), LF.

`quoted.py inspect HOME FILE` times nothing itself: it runs what `orderpipe run` does to validate
a file (`ingest.inspect_file`: hash, screen, stage into a scratch folder) under HOME's settings,
so a benchmark can hold `orderpipe validate` against the validation part of a run.
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
from pathlib import Path

from orderpipe.atomic import atomic_output
from orderpipe.config import load_settings
from orderpipe.ingest import inspect_file

VARIANTS = ("all", "commas", "breaks", "names")
#: The column given a comma or a line break in 1 row of 100, and the quoted name (`names`).
COMMA_COLUMNS = ("product_id", "Lineitem sku")
NAME_COLUMN = "Lineitem name"


def rewrite(source: Path, target: Path, variant: str) -> None:
    """Write `source`'s rows to `target` as `variant` spells them."""
    with source.open(newline="", encoding="utf-8") as read, atomic_output(target) as out:
        rows = csv.reader(read)
        header = next(rows)
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        if variant == "names":
            name = header.index(NAME_COLUMN)
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(header)
            for row in rows:
                row[name] += ", size M"  # QUOTE_MINIMAL quotes just this field
                writer.writerow(row)
            text.flush()
            text.detach()
            return
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(header)
        comma = next((header.index(c) for c in COMMA_COLUMNS if c in header), 0)
        for index, row in enumerate(rows):
            if variant in ("commas", "breaks") and index % 100 == 0:
                row[comma] += ",B" if variant == "commas" else "\nB"
            writer.writerow(row)
        text.flush()
        text.detach()  # the atomic output closes the file


def inspect(home: Path, path: Path) -> None:
    """The validation part of `orderpipe run`, alone: exit 1 for an invalid file."""
    settings = load_settings(home)
    with tempfile.TemporaryDirectory() as scratch:
        report = inspect_file(path, path.name, settings.categories, Path(scratch), shape=settings.shape).report
    raise SystemExit(0 if report.valid else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    spell = commands.add_parser("rewrite", help="write SOURCE's rows to TARGET in another spelling")
    spell.add_argument("source", type=Path)
    spell.add_argument("target", type=Path)
    spell.add_argument("--variant", choices=VARIANTS, default="all")
    check = commands.add_parser("inspect", help="validate FILE as `orderpipe run` does, nothing kept")
    check.add_argument("home", type=Path)
    check.add_argument("file", type=Path)
    args = parser.parse_args()
    if args.command == "rewrite":
        rewrite(args.source, args.target, args.variant)
    else:
        inspect(args.home, args.file)


if __name__ == "__main__":
    main()
