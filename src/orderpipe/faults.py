"""Named crash points for the kill -9 tests.

`ORDERPIPE_CRASH_AT=name` (or `name#N` for its N-th pass) makes the process SIGKILL itself
there: a real kill -9 at a known instant. Unset, a checkpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["checkpoint"]

_passes: dict[str, int] = {}


def checkpoint(name: str) -> None:
    target = os.environ.get("ORDERPIPE_CRASH_AT")
    if not target:
        return
    wanted, _, nth = target.partition("#")
    if wanted != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
