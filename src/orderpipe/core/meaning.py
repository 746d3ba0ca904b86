"""What the stored facts mean: the settings a home's facts were cut with.

A facts row is an order (or a line) as the `[input]` settings read it: which column fed its id
and its date, in which time zone a timestamp became a date, which statuses meant returned,
whether a row was an order or a line, whether categories came from a catalog. Read the same
facts with other settings and the KPIs change meaning without a single new file (a home of
line items read at order grain counts every line as an order). So a home records these
settings with its first batch, and a command that would count with others is refused.

Settings that only decide what is accepted from now on (the allowed categories, which files are
catalog batches, the window of plausible order dates), where new files arrive or go, and how the
program logs or notifies are not part of the meaning: changing them is safe. (The date window
changes no stored row: a file is accepted whole or not at all, and an accepted order's date is
read the same way whatever the window.) Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from orderpipe.core.shape import FIELDS, HEADER_FILES, LINE_FILES, InputShape
from orderpipe.core.window import DateWindow, moving_bound

__all__ = ["MEANING_FILE", "Verdicts", "checked_with", "input_meaning", "meaning_changes", "refusal"]

#: At the top of the home (the bucket's root on AWS), beside the folders it describes.
MEANING_FILE = "input-settings.json"


def input_meaning(shape: InputShape, warehouse_prefix: str) -> dict[str, str]:
    """The settings, by their names in orderpipe.toml, that decide what a stored row says."""
    columns = dict(shape.columns)
    meaning = {
        "input.grain": shape.grain,
        **{f"input.columns.{field}": columns.get(field, field) for field in FIELDS},
        "input.timezone": shape.timezone or "",
        "input.returned.column": shape.returned_column or "",
        "input.returned.values": ", ".join(sorted({v.lower() for v in shape.returned_values})),
        "input.catalog": "true" if shape.catalog else "false",
        "input.catalog_columns.product_id": shape.catalog_product_id,
        "input.catalog_columns.category": shape.catalog_category,
        # Not a meaning but a place: the facts counted so far are there and nowhere else.
        "prefixes.warehouse": warehouse_prefix,
    }
    return meaning


def meaning_changes(recorded: Mapping[str, object], now: Mapping[str, str]) -> list[str]:
    """One line per setting whose value differs from the recorded one (a setting the record
    does not name, from an older orderpipe, counts as unchanged)."""
    changed = []
    for name, value in now.items():
        before = recorded.get(name, value)
        if before != value:
            changed.append(f"{name}: {_shown(before)} when the stored facts were counted, {_shown(value)} now")
    return changed


def refusal(changes: list[str], home: str) -> str:
    """The message of a refused command: what changed, and the two ways forward."""
    return (
        f"the settings would change what the facts stored in {home} mean ({'; '.join(changes)}). Nothing"
        " was read or changed. Either set these back to their values when the facts were counted (the"
        f" record is {MEANING_FILE} in the home), or start a new home with the new settings and count the"
        " archived files of processed/ again there, in their commit order (`orderpipe batches --wide`)"
    )


#: Shape settings added after digests were first kept in reports, with their defaults: left out
#: of a digest while at the default, so a report kept before they existed is still current.
_LATER_SETTINGS = {"header_files": HEADER_FILES, "line_files": LINE_FILES}


def checked_with(categories: Sequence[str], shape: InputShape, latest: str = "") -> str:
    """A digest of every setting a file's verdict depends on (the allowed categories and the
    whole input shape, the date window's settings among them) and, when the verdict depends on
    the clock, of the latest date as evaluated (`window.moving_bound`): a rejected file whose
    bytes and these are unchanged would be rejected again, so a replay leaves it alone."""
    given = dataclasses.asdict(shape)
    for name, default in _LATER_SETTINGS.items():  # at its default: a digest as before it existed
        if given[name] == default:
            del given[name]
    settings: dict[str, object] = {"categories": sorted(categories), "input": given}
    if latest:
        settings["latest_date_evaluated"] = latest
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Verdicts:
    """What a rejected file's verdict was reached with, besides its bytes (`checked_with`)."""

    categories: tuple[str, ...]
    shape: InputShape

    def checked_with(self, codes: Collection[str] = (), window: DateWindow | None = None) -> str:
        """The digest of a file whose report has these error codes, checked against `window`
        (as evaluated when it was read)."""
        return checked_with(self.categories, self.shape, moving_bound(codes, window))

    def checked_now(self, codes: Collection[str], now: dt.datetime | None = None) -> str:
        """The digest the same file would be given if it were read now (on the clock's `now`)."""
        return self.checked_with(codes, self.shape.date_window(now))


def _shown(value: object) -> str:
    return repr(value) if value not in ("", None) else "(not set)"
