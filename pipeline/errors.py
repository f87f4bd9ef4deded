"""One exception type for mistakes a user can fix, and the wrapper that prints it as one line."""

from __future__ import annotations

import sys
from typing import Callable, Sequence


class UserError(Exception):
    """A problem with the user's input: the message says which file, what is wrong, and what to do.

    Commands print it as a single ``error: ...`` line and exit with code 2, never a traceback.
    """


def run_command(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a command's ``main``; turn a :class:`UserError` into one line on stderr and exit code 2.

    Ctrl-C ends with exit code 130 and a short line (whatever was saved stays saved).
    """
    try:
        return int(main(argv) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
