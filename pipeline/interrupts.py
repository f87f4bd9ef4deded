"""Ctrl-C held back while native code works on memory that Python owns, then delivered.

MediaPipe's Tasks API runs each native call on a worker thread and waits for it in the main thread. A
Ctrl-C there raised KeyboardInterrupt out of the wait while the call went on, writing into a result and
reading an image that Python then freed: the process could end in a segmentation fault instead of
exit code 130. Held back for the length of the call, the Ctrl-C is raised a few milliseconds later, once
the call has returned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator


@contextlib.contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Run the block with Ctrl-C (SIGINT) held back, then do what the handler in place would have done.

    Python's own handler raises KeyboardInterrupt when the block ends, a handler of the caller's is
    called then, and the default action (set by a parent, say) ends the process then. Only the main
    thread may change handlers, so elsewhere, and where SIGINT is ignored or handled outside Python,
    the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.getsignal(signal.SIGINT)
    if handler is None or handler == signal.SIG_IGN:
        yield
        return
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        # signal.signal runs the handlers of signals already received first, so none is lost in between.
        signal.signal(signal.SIGINT, handler)
        if held and callable(handler):
            handler(signal.SIGINT, None)  # Python's own raises KeyboardInterrupt
        elif held:  # SIG_DFL
            os.kill(os.getpid(), signal.SIGINT)


__all__ = ["ctrl_c_deferred"]
