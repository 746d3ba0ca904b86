"""From a landed file in a configured shape to a verdict and the canonical staged rows, fast.

The same two-step design as the seed's format (`ingest.py`): a streaming Polars pass reads the
file through the shape (renamed columns, dates from timestamps, `returned` from a status,
order-level fields inherited at line grain) into the seed's typed stage, while a thread hashes
the bytes; only when that pass flags anything, or the bytes hold quotes, bare CRs or NULs, does
the exact validator (`core/shape_validate.py`) decide and locate. The stage has the seed's
columns, so staging facts, commit and KPIs are shared.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from orderpipe.core.header import PlainHeader, order_layout, plain_header
from orderpipe.core.report import ValidationReport
from orderpipe.core.rules import BLANK_PATTERN, WHITESPACE
from orderpipe.core.screen import screen_columns
from orderpipe.core.shape import UNKNOWN, InputShape
from orderpipe.core.shape_validate import validate_shaped
from orderpipe.core.timestamps import with_local_date
from orderpipe.ingest import (
    CHUNK,
    ROWS_PER_PART,
    Beside,
    ExactStage,
    Inspection,
    fingerprint,
    slice_stage,
)

__all__ = ["inspect_shaped", "returned_from_status"]


def inspect_shaped(
    path: Path,
    name: str,
    shape: InputShape,
    categories: Sequence[str],
    workdir: Path,
    rows_per_part: int = ROWS_PER_PART,
) -> Inspection:
    """Hash, screen through the shape and — when needed — exactly validate one file."""
    if shape.catalog:  # order files carry no category: it is resolved from the catalog
        categories = (*categories, UNKNOWN)
    hashing = Beside(lambda: fingerprint(path))
    counting = Beside(lambda: _separators(path))
    with path.open("rb") as stream:
        header = plain_header(stream, order_layout(shape))
    stage = workdir / f"stage-{uuid.uuid4().hex}.parquet"
    screen: tuple[int, tuple[str, ...]] | None = None
    if header is not None:
        try:
            screen = _screen(path, header, shape, categories, stage)
        except pl.exceptions.PolarsError:
            screen = None  # unreadable to Polars: the exact validator will say where and why
    fp = hashing.result(name)
    commas, lines = counting.result(name)
    if screen is not None and header is not None and commas != (header.width - 1) * lines:
        screen = None  # a row with too few fields (Polars pads it silently), or a blank line
    if screen is not None and header is not None and not fp.needs_exact:
        rows, dates = screen
        report = ValidationReport(name, True, rows, warnings=header.warnings, dates=dates, shape=shape.explain())
        facts = slice_stage(stage, workdir, rows_per_part)
        stage.unlink(missing_ok=True)
        return Inspection(fp.sha256, report, facts)
    stage.unlink(missing_ok=True)
    exact = ExactStage(workdir, categories, rows_per_part)
    with exact, path.open("rb") as stream:
        report = validate_shaped(stream, name, shape, frozenset(categories), exact.add)
    return exact.inspection(fp.sha256, report)


def returned_from_status(status: pl.Expr, values: Sequence[str]) -> pl.Expr:
    """`returned` as text from a status column: "true" when the status is one of `values` in
    any case (`InputShape.is_returned`), else "false"; empty, so the row fails the screen and the
    exact validator decides, for a blank status or one Polars might read otherwise.

    "Any case" is Python's `str.lower`. Polars lowercases by a newer Unicode than Python's
    (letters such as 'Ꟛ' have a lower case in one and not the other), so it maps only statuses
    written in ASCII, where the two agree.
    """
    lowered = [v.lower() for v in values]
    mapped = pl.when(status.str.to_lowercase().is_in(lowered)).then(pl.lit("true")).otherwise(pl.lit("false"))
    unsure = status.str.contains(BLANK_PATTERN) | (status.str.len_bytes() != status.str.len_chars())
    return pl.when(unsure).then(pl.lit("")).otherwise(mapped)


def _separators(path: Path) -> tuple[int, int]:
    """(commas, lines) of the whole file. Without quotes every comma separates two fields, and
    Polars refuses a row with too many: so the total tells whether any row has too few."""
    commas = lines = 0
    last = b"\n"
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            commas += chunk.count(b",")
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return commas, lines + (last != b"\n")


def _screen(
    path: Path, header: PlainHeader, shape: InputShape, categories: Sequence[str], stage: Path
) -> tuple[int, tuple[str, ...]] | None:
    """Write the typed stage; (rows, dates) when every row is certainly valid, else None."""
    c = pl.col
    width = header.width
    raw = pl.scan_csv(
        path,
        has_header=True,
        new_columns=[f"c{i}" for i in range(width)],
        infer_schema=False,
        empty_string_is_null=False,
        encoding="utf8",
    )
    fields = tuple(header.positions)
    column = {f: c(f"c{i}").str.strip_chars(WHITESPACE) for f, i in header.positions.items()}
    constant = [pl.lit(UNKNOWN).alias("category")] if shape.catalog else []
    # Polars pads a short row with empty fields: a blank line reads as a row of them all.
    last = c(f"c{width - 1}")
    blank_line = pl.all_horizontal(*(expr == "" for expr in column.values())) & (last.str.strip_chars(WHITESPACE) == "")
    trimmed = raw.select(
        *(expr.alias(f) for f, expr in column.items()),
        *constant,
        last.alias("__last"),
        blank_line.alias("__blank"),
    )
    if shape.lines:
        # A blank order-level field on a later line takes its first line's value. Exports write
        # an order's lines together, so the fast path fills from the row above within the same
        # order; the stats below send a file whose orders are not contiguous to the exact path.
        same_order = c("order_id") == c("order_id").shift(1)
        trimmed = trimmed.with_columns(
            pl.when((c(f) == "") & same_order).then(None).otherwise(c(f)).forward_fill().alias(f)
            for f in shape.order_level()
        )
    derived = []
    extra_ok = [pl.lit(True)]
    if shape.timestamped:
        assert shape.timezone is not None
        trimmed = with_local_date(trimmed, "order_timestamp", shape.timezone, "__date")
        derived.append(c("__date").dt.to_string("%Y-%m-%d").fill_null("").alias("order_date"))
    if shape.returned_column:
        derived.append(returned_from_status(c("returned"), shape.returned_values).alias("returned"))
    if "line_id" in fields:
        extra_ok.append(~c("line_id").str.contains(BLANK_PATTERN))
    key = "line_id" if "line_id" in fields else "product_id"
    kept = ["line_id"] if key == "line_id" else []  # product_id is in the stage already
    canonical = trimmed.with_columns(*derived, pl.all_horizontal(*extra_ok).alias("__extra_ok"))
    canonical.select(*screen_columns(categories), *kept, "__extra_ok", "__blank").with_columns(
        c("__blank").alias("blank")
    ).sink_parquet(stage, compression="lz4", optimizations=pl.QueryOptFlags(projection_pushdown=False))
    staged = pl.scan_parquet(stage)
    # A line's identity as one hash (a collision can only lower the count: the exact path decides).
    identity = c("order_id").hash(seed=0) + c(key).hash(seed=1) if shape.lines else c("order_id").hash(seed=0)
    same_order = c("order_id") == c("order_id").shift(1)
    agreed = ["order_date", "customer_id", *(["returned"] if shape.returned_column else [])]
    differs = same_order & pl.any_horizontal(*(c(f) != c(f).shift(1) for f in agreed))
    stats = (
        staged.select(
            pl.len().alias("rows"),
            (~same_order).fill_null(True).sum().alias("runs"),  # one per stretch of an order's lines
            c("order_id").hash(seed=0).n_unique().alias("orders"),
            differs.fill_null(False).sum().alias("inconsistent"),
            (~(c("ok") & c("__extra_ok"))).sum().alias("bad"),
            c("__blank").sum().alias("blank"),
            identity.filter(c("ok")).n_unique().alias("distinct"),
        )
        .collect(engine="streaming")
        .row(0, named=True)
    )
    if stats["bad"] or stats["blank"] or stats["distinct"] != stats["rows"] or stats["rows"] == 0:
        return None
    # At line grain: each order's lines in one stretch (so a line's neighbour above is its
    # order's line; a hash collision can only make the counts differ), agreeing on its fields.
    if shape.lines and (stats["runs"] != stats["orders"] or stats["inconsistent"]):
        return None
    dates = tuple(staged.select(c("order_date").unique().sort().cast(pl.String)).collect().to_series().to_list())
    return stats["rows"], dates
