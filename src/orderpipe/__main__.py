"""The `orderpipe` command's entry point.

Loading the modules (Polars, click) takes a moment; a Ctrl-C then ends quietly too, with the
same exit code as later on, never a traceback. Nothing has been done yet, so it ends at once:
a KeyboardInterrupt raised in the middle of an import can land in one of the import system's
callbacks, where Python prints "Exception ignored" and goes on as if no Ctrl-C had come.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

STARTING = b"orderpipe: interrupted while starting; nothing was done\n"


def _interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    os.write(2, STARTING)
    os._exit(130)


#: The command's own Ctrl-C handling replaces this handler and, once done, puts Python's back.
_interrupted_while_starting.before_the_command = True  # type: ignore[attr-defined]


def entry() -> None:
    """The handler stays until the command's own takes over (`cli._Interrupts`): no moment is
    left between them where a Ctrl-C would be Python's (click's "Aborted!"), or ignored when
    the process was started with SIGINT ignored (a background job of a script)."""
    signal.signal(signal.SIGINT, _interrupted_while_starting)
    try:
        from orderpipe.cli import main
    except KeyboardInterrupt:  # a Ctrl-C before the handler above was set
        sys.stderr.write(STARTING.decode())
        sys.exit(130)
    main()


if __name__ == "__main__":
    entry()
