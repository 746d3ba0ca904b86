"""Errors orderpipe raises on purpose; anything else is a bug.

`TransientError` marks failures worth a retry (infrastructure); everything else is terminal.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatabaseDamaged",
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


class DatabaseDamaged(InfrastructureError):
    """The local database is damaged or not a database: its message says what to do, since
    running the command again cannot help. Still transient for the workflow: a file waiting in
    input/ stays there rather than being quarantined for a fault that is not its own."""


class KpiVersionConflict(OrderpipeError):
    """A newer KPI version for the date is already stored; the stale write was dropped."""
