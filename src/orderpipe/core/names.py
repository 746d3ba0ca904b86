"""Object names that always fit: every name orderpipe makes (archive, collision, report, upload,
temporary) stays within the 255-byte limit of a file name on common file systems.

A user's file may already be 255 bytes long, so a name with a tag or a suffix added is made by
shortening the stem (never the extension), at a character boundary of its UTF-8 bytes.
"""

from __future__ import annotations

__all__ = ["MAX_NAME_BYTES", "REPORT_SUFFIX", "fit_name", "tagged_name"]

MAX_NAME_BYTES = 255
#: Beside a quarantined file: `NAME.report.json`. Archive names leave room for it.
REPORT_SUFFIX = ".report.json"
_MAX_EXTENSION_BYTES = 32


def _clip(text: str, limit: int) -> str:
    """The longest prefix of `text` whose UTF-8 encoding has at most `limit` bytes."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: max(limit, 0)].decode("utf-8", errors="ignore")


def _split(name: str) -> tuple[str, str]:
    """(stem, extension with its dot); a long or missing extension counts as part of the stem."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension.encode("utf-8")) > _MAX_EXTENSION_BYTES:
        return name, ""
    return stem, "." + extension


def tagged_name(name: str, tag: str, reserve: int = 0) -> str:
    """`stem.TAG.ext`, the stem shortened so the result plus `reserve` bytes fits the limit."""
    stem, extension = _split(name)
    room = MAX_NAME_BYTES - reserve - len(f".{tag}{extension}".encode())
    return f"{_clip(stem, room)}.{tag}{extension}"


def fit_name(name: str, tag: str, reserve: int = 0) -> str:
    """`name` itself when it and `reserve` more bytes fit; else the tagged short form (the tag
    keeps two long names that share a beginning apart)."""
    if len(name.encode("utf-8")) + reserve <= MAX_NAME_BYTES:
        return name
    return tagged_name(name, tag, reserve)
