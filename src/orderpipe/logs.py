"""Structured logs on stderr: JSON lines for programs (CloudWatch reads the same lines), short
human lines for a person at a terminal.

`auto` picks human lines when stderr is a terminal and JSON lines otherwise, so a pipe or a
log collector always gets one JSON object per line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import Any, TextIO
from urllib.parse import urlsplit

__all__ = ["LOG_FORMATS", "configure_logging", "hide_secrets", "log_event", "printable"]

LOG_FORMATS = ("auto", "human", "json")
logger = logging.getLogger("orderpipe")
#: Clears a progress bar the line may hold, so a log line never runs into it.
CLEAR_LINE = "\r\033[K"
_MAX_FIELD_CHARS = 120


#: Characters a terminal acts on instead of showing: C0 controls (escape sequences, a carriage
#: return that lets the rest of a line overwrite its start, tabs), DEL, C1 controls (U+009B is
#: a CSI to some terminals), and the line separators and bidirectional overrides that reorder
#: or split what is shown.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str) -> str:
    """`text` as a person's terminal should show it: what a terminal would act on instead of
    showing (see _UNPRINTABLE) written as Python writes it in a string (`\\x1b`, `\\r`). Every
    name and message printed in a text format goes through here (a file name is the user's
    choice, and may hold anything but `/` and NUL); JSON, JSON lines and CSV keep the exact text."""
    return _UNPRINTABLE.sub(_escaped, text)


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, default=str)


class _HumanLines(logging.Formatter):
    """`orderpipe: warning: watch.failed (file=x.csv, error=…)`: the fields that say something,
    each cut to a line's worth; the traceback only when asked for (`-v`)."""

    def __init__(self, tracebacks: bool) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = dict(getattr(record, "fields", {}))
        trace = fields.pop("traceback", None)
        shown = ", ".join(f"{k}={_short(v)}" for k, v in fields.items() if v not in (None, "", [], {}, ()))
        text = f"orderpipe: {record.levelname.lower()}: {record.getMessage()}" + (f" ({shown})" if shown else "")
        text = printable(text)  # file names and errors quote the user's text
        if trace and self.tracebacks:
            text += "\n" + str(trace).rstrip("\n")
        return text


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= _MAX_FIELD_CHARS else text[: _MAX_FIELD_CHARS - 1] + "…"


class _Handler(logging.StreamHandler[TextIO]):
    """On a terminal, clears the line first: a progress bar may be on it."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return CLEAR_LINE + text if _isatty(self.stream) else text


class _HideFileEvents(logging.Filter):
    """On a terminal each file already gets its own line: its `batch.*` events would repeat it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not record.getMessage().startswith("batch.")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def configure_logging(level: str = "INFO", fmt: str = "json", verbose: bool = False) -> None:
    """(Re)binds the log to the current stderr: faces call it once at start.

    `human` lines show warnings and errors (per-file events excluded, the command prints those)
    unless `verbose`; `json` lines show everything at `level` and above.
    """
    stream = sys.stderr
    if fmt == "auto":
        fmt = "human" if _isatty(stream) else "json"
    for old in [h for h in logger.handlers if getattr(h, "_orderpipe", False)]:
        logger.removeHandler(old)
    handler = _Handler(stream)
    threshold = logging.getLevelNamesMapping()[level]
    if fmt == "human":
        handler.setFormatter(_HumanLines(tracebacks=verbose))
        if not verbose:
            handler.addFilter(_HideFileEvents())
            threshold = max(threshold, logging.WARNING)
    else:
        handler.setFormatter(_JsonLines())
    handler._orderpipe = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(threshold)
    logger.propagate = False


#: An http(s) URL in a log line: a webhook's holds its secret in the user:password, the path
#: (a hook id) or the query (?token=), so a log shows only where it points.
_HTTP_URL = re.compile(r"https?://[^\s'\"<>]+", re.IGNORECASE)


def _origin(match: re.Match[str]) -> str:
    url = match.group(0)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a URL after all (a bad port, a broken IPv6 literal)
        return "<url hidden>"
    if ":" in host:
        host = f"[{host}]"
    more = parts.path not in ("", "/") or parts.query or parts.fragment or parts.username is not None
    hidden = "/…" if more else ""
    return f"{parts.scheme}://{host}{port}{hidden}"


def hide_secrets(text: str) -> str:
    """`text` with every http(s) URL cut to its scheme, host and port: credentials, paths and
    queries never reach a log or an error message."""
    return _HTTP_URL.sub(_origin, text) if "://" in text else text


def _hidden(value: Any) -> Any:
    if isinstance(value, str):
        return hide_secrets(value)
    if isinstance(value, dict):
        return {k: _hidden(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hidden(v) for v in value]
    return value


def log_event(message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Every event goes through here, so no field can carry a secret (see `hide_secrets`)."""
    logger.log(level, hide_secrets(message), extra={"fields": {k: _hidden(v) for k, v in fields.items()}})
