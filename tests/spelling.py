"""The spellings of one CSV file the input contract accepts, drawn for the agreement tests.

The same rows may be written with no field quoted that need not be, every field quoted (database
and BI exports), or some (a shop export quotes what holds a comma); doubled quotes inside quoted
fields, LF or CRLF line ends, a BOM, a final line end or none. Whatever the spelling, both
readings must see the same values, and a valid file must be decided by the fast path alone.
"""

from __future__ import annotations

from hypothesis import strategies as st

#: A value holding one of these must be quoted (a CR is never written: it is a csv-error).
MUST_QUOTE = (",", '"', "\n")


class Raw(str):
    """A field written as it is: a quote inside an unquoted field, text after a closing quote,
    a quote left open — what Python's `csv` reads literally or refuses."""


#: Such fields, each in a row of its own.
STRAY = [Raw('P"4'), Raw('"P1"x'), Raw(' "P1"'), Raw('"P1" '), Raw('"P1'), Raw('P1"'), Raw('"P\r\n1"')]
#: Their names in test ids: plain words, since an id holding quotes is not always found again
#: when pytest runs a second time in one process (as mutation testing does).
STRAY_IDS = [
    "quote-inside",
    "text-after-the-closing-quote",
    "space-before-the-opening-quote",
    "space-after-the-closing-quote",
    "quote-left-open",
    "quote-at-the-end",
    "crlf-inside-quotes",
]


def needs_quotes(value: str) -> bool:
    return any(ch in value for ch in MUST_QUOTE)


def quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@st.composite
def spelled(draw: st.DrawFn, lines: list[list[str]], ends: tuple[str, ...] = ("\n", "\r\n")) -> bytes:
    """`lines` (the header first) as a file, in a drawn spelling."""
    how = draw(st.sampled_from(["needed", "all", "some"]))

    def field(value: str) -> str:
        if isinstance(value, Raw):
            return value
        if needs_quotes(value) or how == "all" or (how == "some" and draw(st.booleans())):
            return quoted(value)
        return value

    end = draw(st.sampled_from(ends))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    text = end.join(",".join(field(v) for v in line) for line in lines)
    return (bom + text + draw(st.sampled_from([end, ""]))).encode()
