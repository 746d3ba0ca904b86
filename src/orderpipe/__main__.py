"""The `orderpipe` command's entry point.

Loading the modules (Polars, click) takes a moment; a Ctrl-C then ends quietly too, with the
same exit code as later on, never a traceback.
"""

from __future__ import annotations

import sys


def entry() -> None:
    try:
        from orderpipe.cli import main
    except KeyboardInterrupt:
        sys.stderr.write("orderpipe: interrupted while starting; nothing was done\n")
        sys.exit(130)
    main()


if __name__ == "__main__":
    entry()
