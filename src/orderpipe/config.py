"""Settings: `orderpipe.toml` in the home, overridden by ORDERPIPE_* environment variables.

Read only when a face asks (never at import), validated once, frozen afterwards. Every bad
value is reported with its key and where it came from (the file or the variable), so a typo
never silently falls back to a default.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from orderpipe.core.meaning import MEANING_FILE
from orderpipe.core.rules import DEFAULT_CATEGORIES
from orderpipe.core.shape import FIELDS, GRAINS, SEED_SHAPE, InputShape
from orderpipe.core.window import DATES, TOMORROW, parse_bound
from orderpipe.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "ENV_PREFIX",
    "OTHER_VARIABLES",
    "Settings",
    "home_path",
    "load_settings",
    "settings_in_force",
    "variable",
]

CONFIG_FILE = "orderpipe.toml"
ENV_PREFIX = "ORDERPIPE_"
_KNOWN = {
    "categories": "categories",
    "facts.rows_per_part": "rows_per_part",
    "log_level": "log_level",
    "notify.webhook_url": "webhook_url",
    "watch.poll_interval": "poll_interval",
    "watch.settle_time": "settle_time",
    "backend": "backend",
    "prefixes.input": "input_prefix",
    "prefixes.processed": "processed_prefix",
    "prefixes.rejected": "rejected_prefix",
    "prefixes.warehouse": "warehouse_prefix",
    "prefixes.dismissed": "dismissed_prefix",
    "aws.bucket": "bucket",
    "aws.ledger_table": "ledger_table",
    "aws.category_table": "category_table",
    "aws.order_table": "order_table",
    "aws.success_topic_arn": "success_topic_arn",
    "aws.failure_topic_arn": "failure_topic_arn",
    # The input shape: gathered into one `InputShape` (see `_shape`).
    "input.grain": "input:grain",
    "input.timezone": "input:timezone",
    "input.returned.column": "input:returned_column",
    "input.returned.values": "input:returned_values",
    "input.catalog": "input:catalog",
    "input.catalog_files": "input:catalog_files",
    "input.header_files": "input:header_files",
    "input.line_files": "input:line_files",
    "input.catalog_columns.product_id": "input:catalog_product_id",
    "input.catalog_columns.category": "input:catalog_category",
    "input.dates": "input:dates",
    "input.earliest_date": "input:earliest_date",
    "input.latest_date": "input:latest_date",
    **{f"input.columns.{field}": f"column:{field}" for field in FIELDS},
}
#: ORDERPIPE_* variables read outside the settings: the home, the container task's object
#: (set by the state machine), the token of `orderpipe serve` and the crash points of the
#: kill -9 tests.
OTHER_VARIABLES = (
    "ORDERPIPE_HOME",
    "ORDERPIPE_SERVE_TOKEN",
    "ORDERPIPE_TASK_KEY",
    "ORDERPIPE_TASK_RESULT_KEY",
    "ORDERPIPE_TASK_VERSION",
    "ORDERPIPE_CRASH_AT",
    "ORDERPIPE_INPUT",
    "ORDERPIPE_EPHEMERAL_PREFIX",  # the sweeper's: what its stack's per-execution ECS names start with
)
#: The whole [input] table as one JSON object (how the AWS stack passes it to the containers);
#: ORDERPIPE_INPUT_* variables still override single keys of it.
INPUT_VARIABLE = "ORDERPIPE_INPUT"
POLL_RANGE = (0.01, 3600.0)
SETTLE_RANGE = (0.0, 3600.0)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DATABASE_FILE = "orderpipe.db"
#: Every name orderpipe keeps for itself at the top of the home: its settings, the record of what
#: its facts mean, its database with SQLite's companion files, its scratch space. No folder
#: setting may take one (the first run would make a folder of that name, and the home could not
#: be opened again).
RESERVED_TOP = (
    CONFIG_FILE,
    MEANING_FILE,
    DATABASE_FILE,
    *(DATABASE_FILE + suffix for suffix in ("-wal", "-shm", "-journal")),
    ".work",
    ".tmp",
)
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DYNAMO_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_SNS_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}")


def variable(key: str) -> str:
    """The environment variable that overrides a setting: `watch.poll_interval` → ORDERPIPE_WATCH_POLL_INTERVAL."""
    return ENV_PREFIX + key.replace(".", "_").upper()


_BY_VARIABLE = {variable(key): key for key in _KNOWN}


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    webhook_url: str | None = None
    log_level: str = "INFO"
    poll_interval: float = 0.5
    settle_time: float = 2.0  # watch: how long a file with no close event must hold still
    rows_per_part: int = 1_000_000  # ingest.ROWS_PER_PART (not imported: config loads without Polars)
    backend: str = "local"  # local: folder + SQLite; aws: S3 + DynamoDB (+ SNS)
    input_prefix: str = "input/"
    processed_prefix: str = "processed/"
    rejected_prefix: str = "rejected/"
    warehouse_prefix: str = "warehouse/orders/"
    dismissed_prefix: str = "dismissed/"
    bucket: str | None = None
    ledger_table: str = "orderpipe-ledger"
    category_table: str = "CategoryKPIs"
    order_table: str = "OrderKPIs"
    success_topic_arn: str | None = None
    failure_topic_arn: str | None = None
    shape: InputShape = SEED_SHAPE  # [input]: how files are read (the seed's format by default)
    sources: tuple[tuple[str, str], ...] = ()  # (setting, where it was given) for those not defaulted


@dataclass(frozen=True, slots=True)
class _Value:
    """A raw setting and where it came from; `from_env` values are always strings."""

    value: object
    source: str
    from_env: bool


#: The deepest setting is three names deep (`input.columns.order_id`): a table nested deeper
#: holds no setting, and one nested thousands deep must not exhaust Python's stack.
MAX_DEPTH = 3
_MAX_SHOWN = 80


def _shown(text: str) -> str:
    """A name from the user's file or variable, quoted, at most _MAX_SHOWN characters of it."""
    return repr(text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…")


def _clipped(message: str, limit: int = 400) -> str:
    """A message that quotes a value (which may be megabytes long, or a list nested hundreds
    deep) stays a line's worth."""
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _too_deep(where: str, name: str | None = None) -> ConfigError:
    what = f"{_shown(name)} is a table nested too deeply" if name else "tables or arrays nested too deeply to read"
    like = '{"columns": {"order_id": "Name"}}' if where == INPUT_VARIABLE else '[input.columns] order_id = "Name"'
    return ConfigError(
        f"{where}: {what}; orderpipe's settings are at most {MAX_DEPTH} names deep (like {like}):"
        " remove the deeper nesting"
    )


def _flatten(table: Mapping[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` as `{"a.b": 1}`; a table deeper than any setting is refused, naming
    `where` (the file or the variable), so the recursion never goes past MAX_DEPTH."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if not isinstance(value, dict):
            flat[name] = value
        elif name.count(".") + 1 >= MAX_DEPTH:
            raise _too_deep(where, name)
        else:
            flat.update(_flatten(value, where, f"{name}."))
    return flat


def home_path(home: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The home folder: `home`, else $ORDERPIPE_HOME, else ~/.orderpipe."""
    env = os.environ if environ is None else environ
    return Path(home or env.get("ORDERPIPE_HOME") or Path.home() / ".orderpipe").expanduser()


def check_reserved_names(home: Path) -> None:
    """A folder where the home keeps a file of its own (left by an older version that let a
    folder setting take the name) would be read as no settings, or fail every command."""
    for name in RESERVED_TOP:
        if not name.startswith(".") and (home / name).is_dir():
            kept = "settings" if name == CONFIG_FILE else "database"
            raise ConfigError(
                f"{home / name} is a folder, but orderpipe keeps its {kept} under that name: move it aside"
                f" (e.g. `mv '{home / name}' '{home / name}.folder'`; what is in it is yours) and run the"
                " command again"
            )


def load_settings(home: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    _check_variables(env)
    root = home_path(home, env)
    raw: dict[str, _Value] = {}
    check_reserved_names(root)
    config = root / CONFIG_FILE
    if config.is_file():
        try:
            table = tomllib.loads(config.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config}: not valid TOML: {exc}") from None
        except RecursionError:  # the parser recurses once per level of nesting
            raise _too_deep(str(config)) from None
        except OSError as exc:
            raise ConfigError(f"{config}: cannot be read: {exc.strerror}") from None
        for key, value in _flatten(table, str(config)).items():
            if key not in _KNOWN:
                hint = _did_you_mean(key, _KNOWN)
                raise ConfigError(f"{config}: unknown setting {_shown(key)}{hint}; known: {', '.join(sorted(_KNOWN))}")
            raw[key] = _Value(value, f"{key} in {config}", False)
    for key, value in _input_table(env).items():
        raw[key] = _Value(value, f"{key} from {INPUT_VARIABLE}", False)
    for name, key in _BY_VARIABLE.items():
        if name in env:
            raw[key] = _Value(env[name], f"{key} from {name}", True)
    return _validated(root, raw)


def _input_table(env: Mapping[str, str]) -> dict[str, Any]:
    """The input.* settings in $ORDERPIPE_INPUT (empty or `{}`: none)."""
    text = env.get(INPUT_VARIABLE, "").strip()
    if not text:
        return {}
    try:
        table = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{INPUT_VARIABLE}: not a JSON object: {exc}") from None
    except RecursionError:  # the parser recurses once per level of nesting
        raise _too_deep(INPUT_VARIABLE) from None
    if not isinstance(table, dict):
        raise ConfigError(f'{INPUT_VARIABLE}: must be a JSON object like {{"grain": "line"}}, not {text[:80]!r}')
    flat = _flatten(table, INPUT_VARIABLE, "input.")
    unknown = sorted(set(flat) - set(_KNOWN))
    if unknown:
        hint = _did_you_mean(unknown[0], _KNOWN)
        raise ConfigError(f"{INPUT_VARIABLE}: unknown setting {_shown(unknown[0])}{hint}")
    return flat


def _did_you_mean(word: str, known: Mapping[str, object] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_variables(env: Mapping[str, str]) -> None:
    """An ORDERPIPE_* variable nobody reads is a typo: refuse it rather than ignore it."""
    known = (*_BY_VARIABLE, *OTHER_VARIABLES)
    unknown = sorted(name for name in env if name.startswith(ENV_PREFIX) and name not in known)
    if unknown:
        lines = [f"unknown environment variable {name}{_did_you_mean(name, known)}" for name in unknown]
        lines[-1] += f"; known: {', '.join(sorted(known))}"
        raise ConfigError("\norderpipe: ".join(lines))


# -- one checker per kind of value: each returns the clean value or raises ValueError(why) --------
def _text(v: _Value) -> str:
    if not isinstance(v.value, str):
        raise ValueError(f"must be a string, not {v.value!r}")
    if not v.value or v.value.strip() != v.value:
        raise ValueError(f"must be a non-empty string without surrounding spaces, not {v.value!r}")
    return v.value


def _optional_text(v: _Value) -> str | None:
    """An empty string means "not set" (how a variable is cleared in a container definition)."""
    return None if v.value == "" else _text(v)


def _categories(v: _Value) -> tuple[str, ...]:
    names = v.value.split(",") if v.from_env and isinstance(v.value, str) else v.value
    if not isinstance(names, list) or not names or not all(isinstance(c, str) for c in names):
        raise ValueError(f"must be a non-empty list of category names, not {v.value!r}")
    bad = [c for c in names if not c or c.strip() != c]
    if bad:
        comma = " (comma-separated, no spaces after the commas)" if v.from_env else ""
        raise ValueError(f"names must be non-empty without surrounding spaces{comma}, not {bad[0]!r}")
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise ValueError(f"lists {twice[0]!r} more than once")
    return tuple(names)


def _grain(v: _Value) -> str:
    if v.value not in GRAINS:
        raise ValueError(f"must be 'order' (one order per row) or 'line' (one line item per row), not {v.value!r}")
    return str(v.value)


def _timezone(v: _Value) -> str:
    zone = _text(v)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        hint = _did_you_mean(zone, tuple(sorted(available_timezones())))
        raise ValueError(f"must be an IANA time zone such as 'Europe/Berlin' or 'UTC', not {zone!r}{hint}") from None
    return zone


def _header_name(v: _Value) -> str:
    """A column name as the file's header writes it (trimmed, as the validators trim it)."""
    if not isinstance(v.value, str) or not v.value.strip() or v.value.strip() != v.value or "," in v.value:
        raise ValueError(f"must be a column name of the file's header, without surrounding spaces, not {v.value!r}")
    return v.value


def _flag(v: _Value) -> bool:
    if isinstance(v.value, bool):
        return v.value
    if v.from_env and isinstance(v.value, str) and v.value.strip().lower() in ("true", "false"):
        return v.value.strip().lower() == "true"
    raise ValueError(f"must be true or false, not {v.value!r}")


def _file_pattern(v: _Value) -> str:
    text = _text(v).strip()
    if not text or "/" in text:
        raise ValueError(f"must be a file name pattern like 'orders*.csv', not {v.value!r}")
    return text


def _statuses(v: _Value) -> tuple[str, ...]:
    names = v.value.split(",") if v.from_env and isinstance(v.value, str) else v.value
    if not isinstance(names, list) or not names or not all(isinstance(c, str) and c.strip() == c and c for c in names):
        raise ValueError(f"must be a non-empty list of status values without surrounding spaces, not {v.value!r}")
    return tuple(names)


def _dates(v: _Value) -> str:
    if v.value not in DATES:
        raise ValueError(f"must be 'window' (order dates are checked) or 'any' (they are not), not {v.value!r}")
    return str(v.value)


def _date(v: _Value, also: str = "") -> str:
    """A date, as TOML writes it (2000-01-01) or as a string; `also` a word allowed besides."""
    text = v.value.isoformat() if isinstance(v.value, dt.date) and not isinstance(v.value, dt.datetime) else v.value
    if not isinstance(text, str) or (text != also and parse_bound(text) is None):
        words = f"{also!r} or " if also else ""
        raise ValueError(f"must be {words}a date like '2000-01-01' (YYYY-MM-DD, a real day), not {v.value!r}")
    return text


def _settle_time(v: _Value) -> float:
    return _seconds(v, SETTLE_RANGE)


def _poll_interval(v: _Value) -> float:
    return _seconds(v, POLL_RANGE)


def _seconds(v: _Value, bounds: tuple[float, float]) -> float:
    low, high = bounds
    why = f"must be a finite number of seconds from {low:g} to {high:g}, not {v.value!r}"
    if (
        isinstance(v.value, bool)
        or not isinstance(v.value, (int, float, str))
        or (isinstance(v.value, str) != v.from_env)
    ):
        raise ValueError(why)
    try:
        seconds = float(v.value)
    except ValueError:
        raise ValueError(why) from None
    if not math.isfinite(seconds) or not low <= seconds <= high:
        raise ValueError(why)
    return seconds


def _rows_per_part(v: _Value) -> int:
    why = f"must be a whole number of rows, at least 1, not {v.value!r}"
    if v.from_env:
        assert isinstance(v.value, str)
        if not v.value.isascii() or not v.value.isdigit():
            raise ValueError(why)
        rows = int(v.value)
    elif isinstance(v.value, int) and not isinstance(v.value, bool):
        rows = v.value
    else:
        raise ValueError(why)
    if rows < 1:
        raise ValueError(why)
    return rows


def _log_level(v: _Value) -> str:
    level = v.value.upper() if isinstance(v.value, str) else None
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, not {v.value!r}")
    return level


def _webhook(v: _Value) -> str | None:
    url = _optional_text(v)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        # Not the value itself: a webhook URL may hold a password or a token.
        shown = f"a {parts.scheme}: address" if parts.scheme else "a value without http:// or https://"
        if parts.scheme in ("http", "https"):
            shown = "an address without a host" if not parts.hostname else "an address with spaces in it"
        raise ValueError(f"must be an http(s) URL such as https://example.com/hook, not {shown}")
    return url


def _backend(v: _Value) -> str:
    if v.value not in ("local", "aws"):
        raise ValueError(f"must be 'local' or 'aws', not {v.value!r}")
    return str(v.value)


def _prefix(v: _Value) -> str:
    """A folder inside the home (or bucket): relative, normalised, ending in '/'."""
    why = "must be a relative folder path ending in '/' (like 'input/' or 'data/input/')"
    if not isinstance(v.value, str):
        raise ValueError(f"{why}, not {v.value!r}")
    value = v.value
    if not value.endswith("/") or value.startswith("/"):
        raise ValueError(f"{why}, not {value!r}")
    if "\\" in value or any(ord(c) < 32 or c == "\x7f" for c in value):
        raise ValueError(f"{why}, without backslashes or control characters, not {value!r}")
    segments = value[:-1].split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise ValueError(f"{why}, without empty, '.' or '..' parts, not {value!r}")
    if segments[0].casefold() in {name.casefold() for name in RESERVED_TOP}:  # some disks ignore case
        raise ValueError(
            f"{why}, not {value!r}: orderpipe keeps {segments[0]!r} for itself at the top of the home "
            f"(the names it keeps: {', '.join(RESERVED_TOP)})"
        )
    return value


def _pattern(pattern: re.Pattern[str], what: str) -> Callable[[_Value], str]:
    def check(v: _Value) -> str:
        text = _text(v)
        if not pattern.fullmatch(text):
            raise ValueError(f"must be {what}, not {text!r}")
        return text

    return check


def _optional_pattern(pattern: re.Pattern[str], what: str) -> Callable[[_Value], str | None]:
    check = _pattern(pattern, what)
    return lambda v: None if v.value == "" else check(v)


_CHECKS: dict[str, Callable[[_Value], object]] = {
    "categories": _categories,
    "facts.rows_per_part": _rows_per_part,
    "log_level": _log_level,
    "notify.webhook_url": _webhook,
    "watch.poll_interval": _poll_interval,
    "watch.settle_time": _settle_time,
    "backend": _backend,
    "prefixes.input": _prefix,
    "prefixes.processed": _prefix,
    "prefixes.rejected": _prefix,
    "prefixes.warehouse": _prefix,
    "prefixes.dismissed": _prefix,
    "aws.bucket": _optional_pattern(_S3_BUCKET, "an S3 bucket name (3-63 of a-z, 0-9, '.', '-')"),
    "aws.ledger_table": _pattern(_DYNAMO_TABLE, "a DynamoDB table name (3-255 of A-Z, a-z, 0-9, '_', '.', '-')"),
    "aws.category_table": _pattern(_DYNAMO_TABLE, "a DynamoDB table name (3-255 of A-Z, a-z, 0-9, '_', '.', '-')"),
    "aws.order_table": _pattern(_DYNAMO_TABLE, "a DynamoDB table name (3-255 of A-Z, a-z, 0-9, '_', '.', '-')"),
    "aws.success_topic_arn": _optional_pattern(_SNS_ARN, "an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
    "aws.failure_topic_arn": _optional_pattern(_SNS_ARN, "an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
    "input.grain": _grain,
    "input.timezone": _timezone,
    "input.returned.column": _header_name,
    "input.returned.values": _statuses,
    "input.catalog": _flag,
    "input.catalog_files": _file_pattern,
    "input.header_files": _file_pattern,
    "input.line_files": _file_pattern,
    "input.catalog_columns.product_id": _header_name,
    "input.catalog_columns.category": _header_name,
    "input.dates": _dates,
    "input.earliest_date": _date,
    "input.latest_date": lambda v: _date(v, TOMORROW),
    **{f"input.columns.{field}": _header_name for field in FIELDS},
}
assert set(_CHECKS) == set(_KNOWN)


def _shape(fields: dict[str, Any], raw: Mapping[str, _Value]) -> InputShape:
    """Gather the [input] settings (taken out of `fields`) into one shape, checked as a whole."""
    columns = tuple(sorted((k.removeprefix("column:"), fields.pop(k)) for k in list(fields) if k.startswith("column:")))
    options = {k.removeprefix("input:"): fields.pop(k) for k in list(fields) if k.startswith("input:")}
    shape = InputShape(columns=columns, **options)
    problems = shape.problems()
    if problems:
        sources = sorted({v.source.split(" ", 1)[1] for k, v in raw.items() if k.startswith("input.")})
        where = f" ({'; '.join(sources)})" if sources else ""
        raise ConfigError("\norderpipe: ".join(f"{p}{where}" for p in problems))
    return shape


def _validated(home: Path, raw: Mapping[str, _Value]) -> Settings:
    """Check every value and report every bad one (one line each), not just the first."""
    fields: dict[str, Any] = {}
    errors: list[str] = []
    for key, value in raw.items():
        try:
            fields[_KNOWN[key]] = _CHECKS[key](value)
        except ValueError as exc:
            errors.append(_clipped(f"{value.source}: {exc}"))
    if errors:
        raise ConfigError("\norderpipe: ".join(errors))
    shape = _shape(fields, raw)
    given = tuple(sorted((key, value.source.removeprefix(f"{key} ")) for key, value in raw.items()))
    settings = Settings(home, shape=shape, sources=given, **{k: v for k, v in fields.items() if v is not None})

    def where(key: str) -> str:
        return f" ({raw[key].source})" if key in raw else ""

    prefixes = {
        f"prefixes.{name}": str(getattr(settings, f"{name}_prefix"))
        for name in ("input", "processed", "rejected", "warehouse", "dismissed")
    }
    for key, path in prefixes.items():
        for other, other_path in prefixes.items():
            if key < other and path == other_path:
                raise ConfigError(f"{key}{where(key)} and {other}{where(other)} are both {path!r}: they must differ")
            if key != other and other_path.startswith(path) and path != other_path:
                raise ConfigError(
                    f"{other} {other_path!r}{where(other)} is inside {key} {path!r}{where(key)}: "
                    "the input, processed, rejected, warehouse and dismissed folders must not contain one another"
                )
    if settings.backend == "aws" and not settings.bucket:
        raise ConfigError(f"backend 'aws'{where('backend')} needs aws.bucket (ORDERPIPE_AWS_BUCKET)")
    if bool(settings.success_topic_arn) != bool(settings.failure_topic_arn):
        raise ConfigError(
            "set both aws.success_topic_arn and aws.failure_topic_arn (ORDERPIPE_AWS_SUCCESS_TOPIC_ARN, "
            "ORDERPIPE_AWS_FAILURE_TOPIC_ARN), or neither"
        )
    return settings


def settings_in_force(settings: Settings) -> list[tuple[str, object, str]]:
    """Every setting: (name, value, where it was given: `in FILE`, `from VARIABLE` or
    `default`), for `orderpipe status`."""
    given = dict(settings.sources)
    rows = []
    for key, field in sorted(_KNOWN.items()):
        if field.startswith("column:"):
            value: object = dict(settings.shape.columns).get(field.removeprefix("column:"))
        elif field.startswith("input:"):
            value = getattr(settings.shape, field.removeprefix("input:"))
        else:
            value = getattr(settings, field)
        rows.append((key, value, given.get(key, "default")))
    return rows
