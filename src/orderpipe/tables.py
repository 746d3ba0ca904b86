"""Batches staged as one table file: a catalog's products, and at relational grain a header or
line file's rows. Small enough to keep in memory until the file is read; written sorted by their
key, so the same rows always give the same file (a retry overwrites it with identical bytes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from orderpipe.core.relational import HEADER_SCHEMA, LINE_SCHEMA
from orderpipe.core.screen import CATALOG_COLUMNS

__all__ = ["TABLES", "StagedTable", "TableStage"]


@dataclass(frozen=True, slots=True)
class StagedTable:
    """A batch's rows in one local file, sorted by their key: a catalog's (products and their
    categories), or at relational grain a header or line file's (`kind`)."""

    path: Path
    rows: int
    kind: str = "catalog"

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


#: What a table batch stages, by kind: its columns (the first is its key) and their types.
TABLES: dict[str, dict[str, pl.DataType]] = {
    "catalog": dict.fromkeys(CATALOG_COLUMNS, pl.String()),
    "headers": HEADER_SCHEMA,
    "lines": LINE_SCHEMA,
}


class TableStage:
    """Keeps a table batch's rows (a catalog, headers or lines: one file each) and writes them
    sorted by their key, so the same rows always give the same file."""

    def __init__(self, workdir: Path, kind: str = "catalog") -> None:
        self.workdir = workdir
        self.kind = kind
        self._frames: list[pl.DataFrame] = []

    def __enter__(self) -> TableStage:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.discard()

    def add(self, rows: pl.DataFrame) -> None:
        self._frames.append(rows.select(list(TABLES[self.kind])))

    def finish(self) -> StagedTable:
        schema = TABLES[self.kind]
        frame = pl.concat(self._frames, how="vertical") if self._frames else pl.DataFrame(schema=schema)
        path = self.workdir / f"{self.kind}-{uuid.uuid4().hex}.parquet"
        frame.sort(next(iter(schema))).write_parquet(path, compression="zstd", statistics=False)
        self._frames = []
        return StagedTable(path, frame.height, self.kind)

    def discard(self) -> None:
        self._frames = []
