"""Settings: `orderpipe.toml` in the home, overridden by ORDERPIPE_* environment variables.

Read only when a face asks (never at import), validated once, frozen afterwards.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orderpipe.core.rules import DEFAULT_CATEGORIES
from orderpipe.errors import ConfigError

__all__ = ["CONFIG_FILE", "Settings", "load_settings"]

CONFIG_FILE = "orderpipe.toml"
_KNOWN = {
    "categories": "categories",
    "facts.rows_per_part": "rows_per_part",
    "log_level": "log_level",
    "notify.webhook_url": "webhook_url",
    "watch.poll_interval": "poll_interval",
    "backend": "backend",
    "prefixes.input": "input_prefix",
    "prefixes.processed": "processed_prefix",
    "prefixes.rejected": "rejected_prefix",
    "prefixes.warehouse": "warehouse_prefix",
    "aws.bucket": "bucket",
    "aws.ledger_table": "ledger_table",
    "aws.category_table": "category_table",
    "aws.order_table": "order_table",
    "aws.success_topic_arn": "success_topic_arn",
    "aws.failure_topic_arn": "failure_topic_arn",
}


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    webhook_url: str | None = None
    log_level: str = "INFO"
    poll_interval: float = 0.5
    rows_per_part: int = 2_000_000
    backend: str = "local"  # local: folder + SQLite; aws: S3 + DynamoDB (+ SNS)
    input_prefix: str = "input/"
    processed_prefix: str = "processed/"
    rejected_prefix: str = "rejected/"
    warehouse_prefix: str = "warehouse/orders/"
    bucket: str | None = None
    ledger_table: str = "orderpipe-ledger"
    category_table: str = "CategoryKPIs"
    order_table: str = "OrderKPIs"
    success_topic_arn: str | None = None
    failure_topic_arn: str | None = None


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_settings(home: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    root = Path(home or env.get("ORDERPIPE_HOME") or Path.home() / ".orderpipe").expanduser()
    values: dict[str, Any] = {}
    config = root / CONFIG_FILE
    if config.exists():
        try:
            table = tomllib.loads(config.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config}: not valid TOML: {exc}") from None
        for key, value in _flatten(table).items():
            if key not in _KNOWN:
                raise ConfigError(f"{config}: unknown setting {key!r}; known: {', '.join(sorted(_KNOWN))}")
            values[_KNOWN[key]] = value
    for key, field in _KNOWN.items():
        name = "ORDERPIPE_" + key.replace(".", "_").upper()
        if name in env:
            raw = env[name]
            values[field] = [c for c in raw.split(",")] if field == "categories" else raw
    return _validated(root, values, config)


def _validated(home: Path, values: dict[str, Any], source: Path) -> Settings:
    categories = values.get("categories", DEFAULT_CATEGORIES)
    if (
        not isinstance(categories, (list, tuple))
        or not categories
        or not all(isinstance(c, str) and c.strip() == c and c for c in categories)
    ):
        raise ConfigError(
            f"categories must be a non-empty list of names without surrounding spaces (from {source} or "
            "ORDERPIPE_CATEGORIES, comma-separated)"
        )
    try:
        poll = float(values.get("poll_interval", 0.5))
    except (TypeError, ValueError):
        raise ConfigError("watch.poll_interval must be a number of seconds") from None
    if poll <= 0:
        raise ConfigError("watch.poll_interval must be greater than 0")
    try:
        rows_per_part = int(values.get("rows_per_part", 2_000_000))
    except (TypeError, ValueError):
        raise ConfigError("facts.rows_per_part must be a whole number") from None
    if rows_per_part < 1:
        raise ConfigError("facts.rows_per_part must be at least 1")
    level = str(values.get("log_level", "INFO")).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"log_level must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
    webhook = values.get("webhook_url") or None
    if webhook is not None and not str(webhook).startswith(("http://", "https://")):
        raise ConfigError(f"notify.webhook_url must be an http(s) URL, not {webhook!r}")
    backend = str(values.get("backend", "local"))
    if backend not in ("local", "aws"):
        raise ConfigError(f"backend must be 'local' or 'aws', not {backend!r}")
    prefixes = {}
    for name in ("input", "processed", "rejected", "warehouse"):
        field = f"{name}_prefix"
        value = str(values.get(field, Settings.__dataclass_fields__[field].default))
        if not value.endswith("/") or value.startswith("/"):
            raise ConfigError(f"prefixes.{name} must be relative and end with '/', not {value!r}")
        prefixes[field] = value
    if len(set(prefixes.values())) != len(prefixes):
        raise ConfigError("the input, processed, rejected and warehouse prefixes must differ")
    aws = {
        k: values[k]
        for k in ("bucket", "ledger_table", "category_table", "order_table", "success_topic_arn", "failure_topic_arn")
        if values.get(k)
    }
    if backend == "aws" and not aws.get("bucket"):
        raise ConfigError("backend 'aws' needs aws.bucket (ORDERPIPE_AWS_BUCKET)")
    if bool(aws.get("success_topic_arn")) != bool(aws.get("failure_topic_arn")):
        raise ConfigError("set both aws.success_topic_arn and aws.failure_topic_arn, or neither")
    return Settings(home, tuple(categories), webhook, level, poll, rows_per_part, backend, **prefixes, **aws)
