"""Where a file's quotes are, checked as its bytes stream past: whether Polars reads it as Python's
`csv` does.

Both read RFC 4180 quoting alike: a field that starts with a quote ends at the quote before a
comma or a line end, and two quotes inside it are one. They part on every other place a quote can
stand — inside an unquoted field (`ab"c`: Python keeps it, Polars takes it as the start of a
quoted run and joins lines), after a closing quote (`"a"b`, `"a" ,`: Python refuses it), or open
at the end of the file — and on a CRLF inside a quoted field, which Python reads line by line
(as LF) and Polars keeps as it is. `QuoteScan` finds each of these, chunk by chunk, with array
operations over the quotes' positions: the bytes between quotes are never looked at one by one.

numpy is imported only when a chunk holds a quote: a plain file never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orderpipe.core.header import BOM

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LF", "QuoteScan"]

QUOTE, COMMA, CR, LF = 0x22, 0x2C, 0x0D, 0x0A


class QuoteScan:
    """Follows a file's quotes over its chunks, in order; `agree` says whether Polars reads the
    file as Python's `csv` does, as far as quotes go (bare CRs and NULs are the caller's).

    With `count=True` it also counts the commas and line ends outside quotes, the file's
    separators: the fields of a file whose rows Polars may have padded (`shaped._fields_counted`).
    """

    def __init__(self, count: bool = False) -> None:
        self.count = count
        self.quoted = False  # a quote was seen
        self.agree = True
        self.commas = 0  # outside quotes (only with count=True)
        self.line_ends = 0  # LFs outside quotes (only with count=True)
        self._inside = False  # the next byte is inside a quoted field
        self._previous = LF  # the byte before the next chunk: the file starts as a line does
        self._closing = False  # the last chunk ended on a closing quote: the next byte must fit
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
        if self._closing and chunk[0] not in (COMMA, CR, LF, QUOTE):
            self.agree = False
        self._closing = False
        if QUOTE in chunk:
            self.quoted = True
            self._quotes(chunk)
        else:
            if self._inside and CR in chunk:  # a whole chunk inside one quoted field
                self.agree = False
            if self.count and not self._inside:
                self.commas += chunk.count(b",")
                self.line_ends += chunk.count(b"\n")
        self._previous = chunk[-1]

    def finish(self) -> bool:
        """Whether the whole file agrees: no quoted field is left open at its end."""
        if self._inside:
            self.agree = False
        return self.agree

    def _quotes(self, chunk: bytes) -> None:
        import numpy as np  # only for a file with quotes

        data = np.frombuffer(chunk, np.uint8)
        at = np.flatnonzero(data == QUOTE)
        first_closes = int(self._inside)
        opening, closing = at[first_closes::2], at[1 - first_closes :: 2]
        # An opening quote follows a comma, a line end or a closing quote (then it is the
        # second of two quotes inside a field); a closing one precedes the same or a CR.
        before = data[np.maximum(opening - 1, 0)]
        if opening.size and opening[0] == 0:
            before[0] = self._previous
        ok = _among(before, (COMMA, LF, QUOTE))
        last = len(chunk) - 1
        self._closing = bool(closing.size) and int(closing[-1]) == last
        after = data[np.minimum(closing + 1, last)]
        if self._closing:
            after[-1] = COMMA  # the next chunk's first byte decides
        self.agree = self.agree and ok and _among(after, (COMMA, CR, LF, QUOTE))
        if CR in chunk:  # a CR inside quotes: a CRLF in a value, which the two read differently
            self.agree = self.agree and not _inside(np.flatnonzero(data == CR), at, first_closes).any()
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
