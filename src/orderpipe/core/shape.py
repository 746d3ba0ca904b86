"""The configured shape of input files: which column feeds which field, and at what grain.

With nothing configured the shape is the seed's (`SEED_SHAPE`: 8 columns, one order per row),
the default of one input path: every shape is read by the same screen and the same exact
validator. A configured shape adds renamed columns, an order date taken from a timestamp,
`returned` read from a status column, and — at line grain — orders that span rows; with the
catalog on, products files are catalog batches, read through the same machinery by their own
two columns. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass, replace

from orderpipe.core.rules import COLUMNS, shown
from orderpipe.core.window import DEFAULT_EARLIEST, TOMORROW, DateWindow, evaluate, window_problems

__all__ = ["CATALOG_FILES", "FIELDS", "GRAINS", "HEADER_FILES", "LINE_FILES", "SEED_SHAPE", "UNKNOWN", "InputShape"]

#: The category of a product no catalog names (yet): allowed whatever the category list says.
UNKNOWN = "Unknown"
#: Files dropped into input/ that are catalog batches, when the catalog is on.
CATALOG_FILES = "products*.csv"
#: Relational grain: the files that hold order headers, and those that hold their lines.
HEADER_FILES = "orders*.csv"
LINE_FILES = "order_items*.csv"

GRAINS = ("order", "line", "relational")
#: Our names a `[input.columns]` entry may rename: the 8 columns, a line id (line grain), a
#: timestamp that replaces `order_date`, and the number of lines a header announces (relational).
FIELDS: tuple[str, ...] = (*COLUMNS, "line_id", "order_timestamp", "items_expected")
#: Relational grain: what a header file holds (`items_expected` only when the header has it) …
HEADER_FIELDS = ("order_id", "customer_id", "order_date", "returned")
#: … and what a line file holds: one unit of a product at a price.
LINE_FIELDS = ("line_id", "order_id", "product_id", "unit_price")


@dataclass(frozen=True, slots=True)
class InputShape:
    """How a file's columns become the canonical order rows."""

    grain: str = "order"
    columns: tuple[tuple[str, str], ...] = ()  # (our field, the file's header name), sorted
    timezone: str | None = None
    returned_column: str | None = None
    returned_values: tuple[str, ...] = ()
    catalog: bool = False  # categories come from products*.csv catalog batches, not the order files
    catalog_files: str = CATALOG_FILES
    catalog_product_id: str = "product_id"  # the catalog file's header for each of our two fields
    catalog_category: str = "category"
    dates: str = "window"  # order dates are checked against the window (`core.window`), or "any"
    earliest_date: str = DEFAULT_EARLIEST
    latest_date: str = TOMORROW
    header_files: str = HEADER_FILES  # relational grain: which files hold headers, which lines
    line_files: str = LINE_FILES

    @property
    def is_seed(self) -> bool:
        """Nothing configured about how files are read: the seed's format (its reports explain no
        shape). The window of plausible dates is not part of it: it decides only what passes."""
        return replace(self, dates="window", earliest_date=DEFAULT_EARLIEST, latest_date=TOMORROW) == SEED_SHAPE

    @property
    def lines(self) -> bool:
        return self.grain == "line"

    @property
    def relational(self) -> bool:
        """Headers, lines and the catalog come in files of their own (told apart by name)."""
        return self.grain == "relational"

    def kind_of(self, name: str) -> str | None:
        """What a file holds, by its name: "catalog", "headers", "lines" or "orders"; None for a
        file the relational grain cannot place."""
        if self.is_catalog_file(name):
            return "catalog"
        if not self.relational:
            return "orders"
        if fnmatch.fnmatchcase(name, self.line_files):
            return "lines"
        if fnmatch.fnmatchcase(name, self.header_files):
            return "headers"
        return None

    @property
    def timestamped(self) -> bool:
        return "order_timestamp" in dict(self.columns)

    @property
    def date_field(self) -> str:
        """The field the order date is read from."""
        return "order_timestamp" if self.timestamped else "order_date"

    def source(self, field: str) -> str:
        """The header name that feeds `field`."""
        if field == "returned" and self.returned_column:
            return self.returned_column
        return dict(self.columns).get(field, field)

    def required(self, kind: str = "orders") -> tuple[str, ...]:
        """The fields every file of `kind` must have a column for, in canonical order (no
        category when the catalog gives it)."""
        every = {"headers": HEADER_FIELDS, "lines": LINE_FIELDS}.get(kind, COLUMNS)
        fields = (self.date_field if f == "order_date" else f for f in every)
        return tuple(f for f in fields if not (self.catalog and f == "category"))

    def is_catalog_file(self, name: str) -> bool:
        """A file whose name makes it a catalog batch (only when the catalog is on)."""
        return self.catalog and fnmatch.fnmatchcase(name, self.catalog_files)

    def order_level(self) -> tuple[str, ...]:
        """Fields that belong to the order, not the line: at line grain, blank on an order's later
        lines means "as on its first line", and every line must agree on them."""
        fields = ("customer_id", self.date_field)
        return (*fields, "returned") if self.returned_column else fields

    def date_window(self, now: dt.datetime | None = None) -> DateWindow | None:
        """The order dates a file may hold, evaluated on the clock's `now` (the current time when
        None): once per file, when it is read. None when dates are not checked."""
        return evaluate(self.dates, self.earliest_date, self.latest_date, self.timezone, now)

    def problems(self) -> list[str]:
        """What makes this shape unusable, one sentence each (empty when it is fine)."""
        found = window_problems(self.dates, self.earliest_date, self.latest_date)
        ours = dict(self.columns)
        if self.grain not in GRAINS:
            found.append(f"input.grain must be 'order', 'line' or 'relational', not {self.grain!r}")
        found.extend(self._relational_problems())
        if "order_date" in ours and "order_timestamp" in ours:
            found.append("set input.columns.order_date or input.columns.order_timestamp, not both")
        if self.timestamped and not self.timezone:
            found.append(
                "input.columns.order_timestamp needs input.timezone: the IANA zone whose local date is the "
                "order date, such as 'Europe/Berlin' (or 'UTC')"
            )
        if self.timezone and not self.timestamped:
            found.append("input.timezone is set but no input.columns.order_timestamp: set both or neither")
        if self.catalog and "category" in ours:
            found.append(
                "input.columns.category is not read with input.catalog = true: categories come from the"
                " catalog (rename the catalog's column with input.catalog_columns.category)"
            )
        custom = (self.catalog_files, self.catalog_product_id, self.catalog_category)
        if not self.catalog and custom != (CATALOG_FILES, "product_id", "category"):
            found.append("input.catalog_files and input.catalog_columns are read only with input.catalog = true")
        if self.catalog and self.catalog_product_id == self.catalog_category:
            found.append(f"catalog column {shown(self.catalog_category)} is configured to feed two fields")
        if self.catalog and not fnmatch.fnmatchcase(self.catalog_files, "*.csv"):
            found.append(f"input.catalog_files must end in '.csv' (only input/*.csv is read): {self.catalog_files!r}")
        if "line_id" in ours and not (self.lines or self.relational):
            found.append("input.columns.line_id is read only with input.grain = 'line' or 'relational'")
        if self.returned_column and "returned" in ours:
            found.append("set input.columns.returned or input.returned.column, not both")
        if bool(self.returned_column) != bool(self.returned_values):
            found.append("set both input.returned.column and input.returned.values (the statuses meaning returned)")
        kinds = ("headers", "lines") if self.relational else ("orders",)
        for kind in kinds:
            fields = (*self.required(kind), *(self.optional(kind)))
            sources = [self.source(f) for f in fields]
            twice = sorted({s for s in sources if sources.count(s) > 1})
            if twice:
                found.append(f"column {shown(twice[0])} is configured to feed two fields; each column feeds one")
                break
        return found

    def optional(self, kind: str = "orders") -> tuple[str, ...]:
        """The fields a file of `kind` is read with when its header has them."""
        if kind == "headers":
            return ("items_expected",)
        return ("line_id",) if kind == "orders" and "line_id" in dict(self.columns) else ()

    def _relational_problems(self) -> list[str]:
        """What the relational grain needs, and what only it reads."""
        found = []
        ours = dict(self.columns)
        if self.relational:
            if not self.catalog:
                found.append("input.grain = 'relational' takes categories from the catalog: set input.catalog = true")
            patterns = {"input.header_files": self.header_files, "input.line_files": self.line_files}
            for setting, pattern in patterns.items():
                if not fnmatch.fnmatchcase(pattern, "*.csv"):
                    found.append(f"{setting} must end in '.csv' (only input/*.csv is read): {pattern!r}")
            names = (self.header_files, self.line_files, self.catalog_files)
            if len(set(names)) < len(names):
                found.append("input.header_files, input.line_files and input.catalog_files must differ")
        else:
            if (self.header_files, self.line_files) != (HEADER_FILES, LINE_FILES):
                found.append("input.header_files and input.line_files are read only with input.grain = 'relational'")
            if "items_expected" in ours:
                found.append("input.columns.items_expected is read only with input.grain = 'relational'")
        return found

    def is_returned(self, status: str) -> bool:
        """A status column's value means returned (case-insensitive)."""
        return status.lower() in {v.lower() for v in self.returned_values}

    def explain(self) -> tuple[str, ...]:
        """Which column feeds what, for `orderpipe validate` and the report."""
        if self.is_seed:
            return ()
        if self.lines:
            key = f"{self.source('line_id')} if the file has it, else {self.source('product_id')}"
            grain = f"line items: an order spans rows; a line is (order, {key}); a later file replaces whole orders"
        else:
            grain = "orders: one order per row"
        lines = [f"grain: {grain}"]
        inherited = set(self.order_level()) if self.lines else set()
        for field in self.required():
            source = repr(self.source(field))
            if field == "order_timestamp":
                text = f"order_date <- local date in {self.timezone} of the timestamp in {source}"
            elif field == "returned" and self.returned_column:
                values = ", ".join(repr(v) for v in self.returned_values)
                text = f"returned <- {source} is one of {values} (any case)"
            else:
                text = f"{field} <- {source}"
            if field in inherited:
                text += "; blank on an order's later lines = as on its first line"
            lines.append(text)
        if self.catalog:
            lines.append(
                f"category <- the product's category in the latest catalog ({self.catalog_files} files);"
                f" {UNKNOWN!r} until a catalog names the product"
            )
        return tuple(lines)

    def explain_part(self, kind: str) -> tuple[str, ...]:
        """How a relational file of `kind` ("headers" or "lines") is read, for the report."""
        if kind == "headers":
            lines = [
                f"headers: a {self.header_files} file, one row per order; a header sent again replaces"
                " its order's (dates, customer, status)",
                *self._fed("headers"),
                f"items_expected <- {self.source('items_expected')!r} if the file has it (fewer lines: incomplete)",
            ]
        else:
            lines = [
                f"lines: a {self.line_files} file, one row per item (quantity 1); a line sent again"
                " (same line id) replaces it; it counts once its order's header is in",
                *self._fed("lines"),
            ]
        return tuple(lines)

    def _fed(self, kind: str) -> list[str]:
        found = []
        for field in self.required(kind):
            source = repr(self.source(field))
            if field == "order_timestamp":
                found.append(f"order_date <- local date in {self.timezone} of the timestamp in {source}")
            elif field == "returned" and self.returned_column:
                values = ", ".join(repr(v) for v in self.returned_values)
                found.append(f"returned <- {source} is one of {values} (any case)")
            else:
                found.append(f"{field} <- {source}")
        return found

    def explain_catalog(self) -> tuple[str, ...]:
        """How a catalog file is read, for `orderpipe validate` and the report."""
        return (
            f"catalog: a {self.catalog_files} file; each row sets one product's category (products it"
            " does not name keep theirs)",
            f"product_id <- {self.catalog_product_id!r}",
            f"category <- {self.catalog_category!r}",
        )


SEED_SHAPE = InputShape()
