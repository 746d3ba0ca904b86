"""Errors orderpipe raises on purpose; anything else is a bug.

`TransientError` marks failures worth a retry (infrastructure); everything else is terminal.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InfrastructureError",
    "KpiVersionConflict",
    "OrderpipeError",
    "TransientError",
    "UsageError",
]


class OrderpipeError(Exception):
    """Base class of every error orderpipe raises on purpose."""


class TransientError(OrderpipeError):
    """A failure outside the data (disk, network, a busy database); retrying may succeed."""


class ConfigError(OrderpipeError):
    """The configuration (orderpipe.toml, ORDERPIPE_* variables) is invalid."""


class UsageError(OrderpipeError):
    """The command was called wrongly (a missing file, a bad option value)."""


class InfrastructureError(TransientError):
    """A storage, ledger or notifier operation failed."""


class KpiVersionConflict(OrderpipeError):
    """A newer KPI version for the date is already stored; the stale write was dropped."""
