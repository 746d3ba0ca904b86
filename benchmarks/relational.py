"""Relational files (`make bench` section `relational`): headers, lines and products apart.

1. The lab's own dataset (6 header files, 19 line files, the catalog: 9,000 orders, 27,007
   items), when it is beside the repository (`../shared/peer-data`): one `orderpipe run` of
   every file on a fresh home with the `lab` preset, median of 3.
2. A generated export of the same shape, larger: one line file and one header file (1,000,000
   lines of 300,000 orders; 100,000 of 30,000 with --quick), run lines first; then a file of
   one line, and one of one header, on that home: what a small file costs once the tables
   are full (every recompute reads them).
"""

from __future__ import annotations

import random
import shutil
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEER = HERE.parent.parent / "shared" / "peer-data" / "Zukizuk__real-time-event-driven-data-pipeline" / "data"
ITEMS = "id,order_id,user_id,product_id,status,created_at,shipped_at,delivered_at,returned_at,sale_price"
HEADERS = "order_id,user_id,status,created_at,returned_at,shipped_at,delivered_at,num_of_item"


def lab_home(home: Path) -> Path:
    from orderpipe.presets import PRESETS

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "orderpipe.toml").write_text(PRESETS["lab"])
    return home


def generated(data: Path, orders: int, lines: int) -> tuple[Path, Path]:
    """A line file and a header file of the lab's shape (made once; deterministic)."""
    items_file, headers_file = data / f"order_items_{lines}.csv", data / f"orders_{orders}.csv"
    if items_file.exists() and headers_file.exists():
        return items_file, headers_file
    print(f"generating {items_file.name} and {headers_file.name}…", flush=True)
    rng = random.Random(1)
    with items_file.open("w") as out:
        out.write(ITEMS + "\n")
        for n in range(1, lines + 1):
            out.write(
                f"{n},{rng.randint(1, orders)},{rng.randint(1, 90_000)},{rng.randint(1, 10_000)},delivered,"
                f"2025-03-30T17:09:26,2025-03-31T05:09:26,2025-04-02T03:09:26,,{rng.randint(100, 99_999) / 100}\n"
            )
    with headers_file.open("w") as out:
        out.write(HEADERS + "\n")
        for n in range(1, orders + 1):
            status = rng.choice(["delivered", "returned", "shipped"])
            day = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            out.write(f"{n},{rng.randint(1, 90_000)},{status},{day}T16:14:26,,,,{rng.randint(1, 4)}\n")
    return items_file, headers_file


def main(orderpipe: str, data: Path, quick: bool, measure: Callable[..., Any]) -> None:
    print("\n## Relational files: headers, lines and products apart (`--preset lab`)\n")
    print("| run | files | MB | wall s | CPU s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    home = data / "home-relational"
    if PEER.is_dir():
        files = [*sorted((PEER / "orders").glob("*.csv")), *sorted((PEER / "order_items").glob("*.csv"))]
        files.append(PEER / "products.csv")
        runs = []
        for _ in range(3):
            runs.append(measure([orderpipe, "--home", str(lab_home(home)), "-q", "run", *map(str, files)]))
        _row("the lab's dataset, every file (median of 3)", files, runs)
    else:
        print(f"| the lab's dataset | – | – | – | – | – |  (not beside the repository: {PEER})")
    orders, lines = (30_000, 100_000) if quick else (300_000, 1_000_000)
    items_file, headers_file = generated(data, orders, lines)
    lab_home(home)
    for label, path in ((f"{lines:,} lines, no header in yet", items_file), (f"{orders:,} headers", headers_file)):
        _row(label, [path], [measure([orderpipe, "--home", str(home), "-q", "run", str(path)])])
    small_items, small_headers = data / "order_items_one.csv", data / "orders_one.csv"
    small_items.write_text(f"{ITEMS}\n{lines + 1},5,1,7,x,2025-03-01T10:00:00,,,,9.99\n")
    small_headers.write_text(f"{HEADERS}\n{orders + 1},5,delivered,2025-03-01T10:00:00,,,,1\n")
    for label, path in (("then one line", small_items), ("then one header", small_headers)):
        _row(label, [path], [measure([orderpipe, "--home", str(home), "-q", "run", str(path)])])
    stream = small_files(data / "small-relational", lines + 10, orders + 10, SMALL_FILES)
    full = measure([orderpipe, "--home", str(home), "-q", "run", *map(str, stream)])
    _row(f"then {SMALL_FILES} one-row files in one run", stream, [full])
    empty = measure([orderpipe, "--home", str(lab_home(home)), "-q", "run", *map(str, stream)])
    _row(f"{SMALL_FILES} one-row files in one run, empty tables", stream, [empty])
    print(
        f"\nPer one-row file in one run: {full.seconds / SMALL_FILES:.3f} s on the full tables, "
        f"{empty.seconds / SMALL_FILES:.3f} s on empty ones."
    )
    shutil.rmtree(home, ignore_errors=True)


#: One-row files run one after another by one process: what a small file costs once it has
#: read the tables.
SMALL_FILES = 100


def small_files(folder: Path, first_line: int, first_order: int, count: int) -> list[Path]:
    """`count` one-row files, a header then a line of the same new order, by turns."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    paths = []
    for n in range(count // 2):
        order = first_order + n
        header, line = folder / f"orders_s{n:04d}.csv", folder / f"order_items_s{n:04d}.csv"
        header.write_text(f"{HEADERS}\n{order},5,delivered,2025-03-{n % 28 + 1:02d}T10:00:00,,,,1\n")
        line.write_text(f"{ITEMS}\n{first_line + n},{order},1,7,x,2025-03-01T10:00:00,,,,9.99\n")
        paths += [header, line]
    return paths


def _row(label: str, files: list[Path], runs: list) -> None:  # type: ignore[type-arg]
    run = sorted(runs, key=lambda m: m.seconds)[len(runs) // 2]
    failed = next((m.code for m in runs if m.code), 0)
    size = sum(f.stat().st_size for f in files) / 1e6
    walls = f" ({', '.join(f'{m.seconds:.2f}' for m in runs)})" if len(runs) > 1 else ""
    note = f" FAILED (exit {failed})" if failed else ""
    cpu = statistics.median(m.cpu for m in runs)
    print(f"| {label}{note} | {len(files)} | {size:.1f} | {run.seconds:.2f}{walls} | {cpu:.2f} | {run.peak_mb:.0f} |")
    sys.stdout.flush()
