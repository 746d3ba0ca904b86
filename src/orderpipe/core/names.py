"""Object names that always fit: every name orderpipe makes (archive, collision, report, upload,
temporary) stays within the 255-byte limit of a file name on common file systems.

A user's file may already be 255 bytes long, so a name with a tag or a suffix added is made by
shortening the stem (never the extension), at a character boundary of its UTF-8 bytes.
"""

from __future__ import annotations

__all__ = [
    "MAX_NAME_BYTES",
    "REPORT_SUFFIX",
    "display_name",
    "fit_name",
    "is_upload_of",
    "tagged_name",
    "upload_family",
]

MAX_NAME_BYTES = 255
#: Beside a quarantined file: `NAME.report.json`. Archive names leave room for it.
REPORT_SUFFIX = ".report.json"
_MAX_EXTENSION_BYTES = 32


def _size(text: str) -> int:
    """Bytes on disk; a name that is not UTF-8 keeps its raw bytes (surrogate escapes)."""
    return len(text.encode("utf-8", "surrogateescape"))


def _clip(text: str, limit: int) -> str:
    """The longest prefix of `text` whose encoding has at most `limit` bytes."""
    used = 0
    for n, char in enumerate(text):
        used += _size(char)
        if used > limit:
            return text[:n]
    return text


def display_name(name: str) -> str:
    """The name as text for people, logs and databases: bytes that are not UTF-8 (possible in
    a file name) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _split(name: str) -> tuple[str, str]:
    """(stem, extension with its dot); a long or missing extension counts as part of the stem."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or _size(extension) > _MAX_EXTENSION_BYTES:
        return name, ""
    return stem, "." + extension


def tagged_name(name: str, tag: str, reserve: int = 0) -> str:
    """`stem.TAG.ext`, the stem shortened so the result plus `reserve` bytes fits the limit."""
    stem, extension = _split(name)
    room = MAX_NAME_BYTES - reserve - _size(f".{tag}{extension}")
    return f"{_clip(stem, room)}.{tag}{extension}"


def fit_name(name: str, tag: str, reserve: int = 0) -> str:
    """`name` itself when it and `reserve` more bytes fit; else the tagged short form (the tag
    keeps two long names that share a beginning apart)."""
    if _size(name) + reserve <= MAX_NAME_BYTES:
        return name
    return tagged_name(name, tag, reserve)


def upload_family(key: str) -> str:
    """The name a waiting upload was given by its user: `x.csv` for `input/x.csv`,
    `input/x.2.csv`, `input/x.3.csv`… (the names `tagged_name` gives the same name's later
    uploads). Uploads of one family are counted in the order they landed."""
    name = key.rpartition("/")[2]
    stem, extension = _split(name)
    base, tag = _upload_tag(stem)
    return base + extension if base and tag else name


def is_upload_of(candidate: str, name: str, digest: str) -> bool:
    """Whether `candidate` is a name an upload of the user's file `name` (bytes hashing to
    `digest`) can wait under in input/: `name` itself (a too long one shortened and tagged with
    the digest), or `NAME.N.ext` (N from 2) when a different file already waited under it. The
    ledger keeps the user's name; this finds the upload again."""
    first = name if fit_name(name, "") == name else fit_name(name, digest[:12])
    if candidate == first:
        return True
    _, extension = _split(name)
    stem = candidate.removesuffix(extension) if extension and candidate.endswith(extension) else candidate
    tag = _upload_tag(stem)[1]
    return bool(tag) and tagged_name(name, tag) == candidate


def _upload_tag(stem: str) -> tuple[str, str]:
    """(base, N) for a stem `base.N` that names a later upload (N a number from 2, written
    without leading zeros); ("", "") for any other stem."""
    base, dot, tag = stem.rpartition(".")
    if dot and tag.isascii() and tag.isdigit() and tag[0] != "0" and int(tag) >= 2:
        return base, tag
    return "", ""
