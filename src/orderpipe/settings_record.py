"""The home's record of the settings its facts were cut with (`core/meaning.py` says which).

Written once, by the first batch that commits facts (first writer wins: a conditional put), at
the top of the home or bucket; read by every command that would count, which is refused when
its settings would change what the stored facts mean. A home whose facts predate the record
gets one from the first batch that commits after it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from orderpipe.core.meaning import MEANING_FILE, input_meaning, meaning_changes, refusal
from orderpipe.core.shape import InputShape
from orderpipe.errors import ConfigError, InfrastructureError
from orderpipe.ports import ObjectStore

__all__ = ["SettingsRecord"]


class SettingsRecord:
    """The record of one home, against the settings this process reads files with."""

    def __init__(self, store: ObjectStore, shape: InputShape, warehouse_prefix: str, workdir: Path) -> None:
        self.store = store
        self.now = input_meaning(shape, warehouse_prefix)
        self.workdir = workdir
        self._written = False

    def recorded(self) -> dict[str, object] | None:
        """The recorded settings; None before the first batch."""
        if not self.store.exists(MEANING_FILE):
            return None
        try:
            record = json.loads(self.store.get_bytes(MEANING_FILE))
            settings = record["settings"]
            if not isinstance(settings, dict):
                raise TypeError("settings is not a table")
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{MEANING_FILE} in the home is damaged ({exc}): it records the settings the stored facts"
                " were counted with; restore it from a backup"
            ) from None
        return settings

    def check(self, home: str) -> None:
        """Refuse (ConfigError, exit 2) settings that would change what the stored facts mean."""
        recorded = self.recorded()
        changes = meaning_changes(recorded, self.now) if recorded is not None else []
        if changes:
            raise ConfigError(refusal(changes, home))

    def ensure(self) -> None:
        """Before a batch commits facts: record the settings, unless the home has a record (a
        process that lost the race to another with other settings stops before committing)."""
        if self._written:
            return
        recorded = self.recorded()
        if recorded is None and not self._write():  # another process recorded first
            recorded = self.recorded()
        changes = meaning_changes(recorded, self.now) if recorded is not None else []
        if changes:  # transient for this file: it waits, and the next command is refused up front
            raise InfrastructureError(refusal(changes, "this home"))
        self._written = True

    def _write(self) -> bool:
        """Record this process's settings unless a record exists (then False)."""
        body = {
            "why": "the [input] settings the facts in the warehouse were cut with; orderpipe refuses to"
            " count with settings that would change what they mean",
            "settings": self.now,
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.workdir, suffix=".json", delete=False) as out:
            json.dump(body, out, indent=2)
        try:
            return self.store.put_new(Path(out.name), MEANING_FILE)
        finally:
            Path(out.name).unlink(missing_ok=True)
