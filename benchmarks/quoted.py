"""The same orders as other files write them: quoted fields, CRLF line ends.

A generated file (`generate.py`) rewritten, value for value, as real exports write it, so a run
of each variant can be compared with the plain file it came from (same rows, same KPIs):

- `all`: every field quoted, CRLF (database and BI exports, spreadsheets);
- `commas`: the same, and in 1 row of 100 a comma inside a quoted value (the product id, or the
  line's SKU: the KPIs do not read it);
- `names`: line items with only the item's name quoted, holding a comma (a shop export quotes
  only what needs it), LF.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from orderpipe.atomic import atomic_output

VARIANTS = ("all", "commas", "names")
#: The column given a comma in 1 row of 100 (`commas`), and the quoted name (`names`).
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
            if variant == "commas" and index % 100 == 0:
                row[comma] += ",B"
            writer.writerow(row)
        text.flush()
        text.detach()  # the atomic output closes the file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--variant", choices=VARIANTS, default="all")
    args = parser.parse_args()
    rewrite(args.source, args.target, args.variant)


if __name__ == "__main__":
    main()
