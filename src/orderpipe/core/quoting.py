"""What a file's bytes hold that Polars would read otherwise than Python's `csv`, found as they
stream past: NULs, bare CRs and quotes where the two part.

Both read RFC 4180 quoting alike: a field that starts with a quote ends at the quote before a
comma or a line end, and two quotes inside it are one. They part on every other place a quote can
stand — inside an unquoted field (`ab"c`: Python keeps it, Polars takes it as the start of a
quoted run and joins lines), after a closing quote (`"a"b`, `"a" ,`: Python refuses it), or open
at the end of the file — and on a CRLF inside a quoted field, which Python reads line by line
(as LF) and Polars keeps as it is. Only LF and CRLF end lines: a CR anywhere else, and a NUL, is
the exact validator's to report. `ByteScan` finds each of these chunk by chunk, with array
operations over the positions of quotes and CRs: the bytes between are never looked at one by one.

numpy is imported only when a chunk holds a quote: a plain file never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orderpipe.core.header import BOM

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LF", "ByteScan"]

QUOTE, COMMA, CR, LF = 0x22, 0x2C, 0x0D, 0x0A


class ByteScan:
    """Follows a file's bytes over its chunks, in order; `agree` says whether Polars reads the
    file as Python's `csv` does (no NUL, no bare CR, every quote where both read it alike).

    With `count=True` it also counts the commas and line ends outside quotes, the file's
    separators: the fields of a file whose rows Polars may have padded (`shaped._fields_counted`).
    """

    def __init__(self, count: bool = False) -> None:
        self.count = count
        self.agree = True
        self.commas = 0  # outside quotes (only with count=True)
        self.line_ends = 0  # LFs outside quotes (only with count=True)
        self._inside = False  # the next byte is inside a quoted field
        self._previous = LF  # the byte before the next chunk: the file starts as a line does
        self._head: bytes | None = b""  # until the first bytes are past a BOM

    def feed(self, chunk: bytes) -> None:
        """The file's next bytes."""
        if self._head is not None:  # the file's first bytes: a BOM is not part of the text
            self._head += chunk
            if len(self._head) < len(BOM) and BOM.startswith(self._head):
                return
            chunk, self._head = self._head.removeprefix(BOM), None
        if not chunk:
            return
        # The last chunk's last byte waited for this one: a CR for its LF, a closing quote for
        # a separator (or a quote: then it was the first of two inside a field).
        waited = (self._previous == CR and chunk[0] != LF) or (
            self._previous == QUOTE and not self._inside and chunk[0] not in (COMMA, CR, LF, QUOTE)
        )
        if waited or b"\x00" in chunk:
            self.agree = False
        elif QUOTE in chunk:
            self._quotes(chunk)
        else:
            if CR in chunk:  # most files have none: the two counts are the slow part
                lone = chunk.count(b"\r") - chunk.endswith(b"\r") != chunk.count(b"\r\n")
                self.agree = self.agree and not lone and not self._inside
            if self.count and not self._inside:
                self.commas += chunk.count(b",")
                self.line_ends += chunk.count(b"\n")
        self._previous = chunk[-1]

    def finish(self) -> bool:
        """Whether the whole file agrees: no quoted field left open, no CR as its last byte."""
        if self._inside or self._previous == CR:
            self.agree = False
        return self.agree

    def _quotes(self, chunk: bytes) -> None:
        import numpy as np  # only for a file with quotes

        data = np.frombuffer(chunk, np.uint8)
        last = len(chunk) - 1
        at = np.flatnonzero(data == QUOTE)
        first_closes = int(self._inside)
        opening, closing = at[first_closes::2], at[1 - first_closes :: 2]
        # An opening quote follows a comma, a line end or a closing quote (then it is the
        # second of two quotes inside a field); a closing one precedes the same or a CR.
        before = data[opening - 1]  # the first byte's is the last chunk's
        if opening.size and opening[0] == 0:
            before[0] = self._previous
        if closing.size and closing[-1] == last:  # the next chunk's first byte decides
            closing = closing[:-1]
        ok = _among(before, (COMMA, LF, QUOTE)) and _among(data[closing + 1], (COMMA, CR, LF, QUOTE))
        if ok and CR in chunk:  # a CR ends a line: an LF follows it, and no quote is open
            crs = np.flatnonzero(data == CR)
            ends = crs[:-1] if crs[-1] == last else crs
            ok = _among(data[ends + 1], (LF,)) and not _inside(crs, at, first_closes).any()
        self.agree = self.agree and ok
        if self.count:
            for byte in (COMMA, LF):
                positions = np.flatnonzero(data == byte)
                outside = int((~_inside(positions, at, first_closes)).sum())
                if byte == COMMA:
                    self.commas += outside
                else:
                    self.line_ends += outside
        self._inside = (first_closes + at.size) % 2 == 1


def _among(values: np.ndarray[Any, Any], allowed: tuple[int, ...]) -> bool:
    """Whether every value is one of `allowed` (faster than `np.isin` for a few)."""
    hit = values == allowed[0]
    for byte in allowed[1:]:
        hit |= values == byte
    return bool(hit.all())


def _inside(positions: np.ndarray[Any, Any], quotes: np.ndarray[Any, Any], first_closes: int) -> Any:
    """Which of `positions` lie inside a quoted field: an odd number of quotes before them, with
    the chunk's start inside one when `first_closes`."""
    import numpy as np

    return (np.searchsorted(quotes, positions) + first_closes) % 2 == 1
