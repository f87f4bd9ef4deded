"""Local processes as an engine: an ordered map over a process pool that survives a worker's death.

:func:`map_on_processes` is ``multiprocessing.Pool(workers, initializer, initargs).imap(func, items)``,
except where a worker dies (a file that crashes native code, the kernel's OOM killer): a
``multiprocessing.Pool`` then waits forever for the lost item. Here the pool is replaced, the items
that were in flight go again one at a time, and an item that kills a worker on its own is handed to
``on_lost``, as :func:`pipeline.engines.ray.map_on_actors` does on Ray.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import resource_tracker
from typing import Any, Callable, Iterator, Sequence

from pipeline.engines import start_worker
from pipeline.interrupts import ctrl_c_deferred

#: Items in flight per worker: one being worked on, one waiting, so a worker never idles between items.
DEPTH = 2


def map_on_processes(func: Callable, items: Sequence, initializer: Callable | None = None, initargs: tuple = (),
                     workers: int = 2, on_lost: Callable[[Any, str], Any] | None = None) -> Iterator:
    """``func(item)`` for each item in ``workers`` spawned processes, in the items' order.

    Each process runs ``initializer(*initargs)`` once. An item whose process died under it while it ran
    alone gives ``on_lost(item, why)``; without ``on_lost`` that raises ``RuntimeError``. An exception
    ``func`` raises is raised here, as itself, and so is one the initializer raises (at the first item).
    Leaving early (an error, Ctrl-C, closing the iterator) kills the processes, so no work is left
    running. The processes ignore Ctrl-C, from their start: this one stops them.
    """
    # "spawn": MediaPipe's native threads do not survive a fork.
    start = lambda: ProcessPoolExecutor(workers, mp.get_context("spawn"), _start,  # noqa: E731
                                        (initializer, initargs))
    pool = start()
    queue: deque[int] = deque(range(len(items)))
    alone: deque[int] = deque()  # in flight when a process died: each goes again on its own
    flight: dict[int, Future] = {}
    done: dict[int, Any] = {}
    solo = None  # the item running alone, if one is
    nxt = 0
    try:
        while nxt < len(items):
            if alone:  # after a death, one item at a time
                back, sends = alone, ([alone.popleft()] if not flight else [])
                solo = sends[0] if sends else solo
            else:
                back, solo = queue, None
                sends = [queue.popleft() for _ in range(min(len(queue), workers * DEPTH - len(flight)))]
            try:
                if sends:
                    with _ctrl_c_held():  # submit starts the processes
                        for i in sends:
                            flight[i] = pool.submit(_call, func, items[i])
            except BrokenProcessPool:
                # A worker died while no item of ours was running on it (idle, or before the pool failed
                # the futures): the items not sent go back where they came from, and nothing is blamed.
                back.extendleft(reversed([i for i in sends if i not in flight]))
                _collect(pool, flight, done, alone, None, items, on_lost)
                pool, solo = start(), None
                continue
            while nxt in done:
                value = done.pop(nxt)
                if isinstance(value, _Raised):
                    raise value.error  # func's own exception, as itself, after every earlier result
                yield value
                nxt += 1
            if nxt >= len(items) or not flight:
                continue
            wait(flight.values(), return_when=FIRST_COMPLETED)
            broken = False
            for i, future in list(flight.items()):
                if future.done():
                    if _lost_with_pool(future):
                        broken = True
                        continue
                    done[i] = _outcome(future)
                    del flight[i]
            if broken:
                _collect(pool, flight, done, alone, solo, items, on_lost)
                pool, solo = start(), None
    finally:
        _kill(pool)


class _Raised:
    """An exception ``func`` raised, held until the results before it are yielded."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _lost_with_pool(future: Future) -> bool:
    """Whether a finished future went down with its pool (a worker died) rather than giving an outcome."""
    return future.cancelled() or isinstance(future.exception(), BrokenProcessPool)


def _outcome(future: Future) -> Any:
    """A finished future's result, or ``func``'s exception held as :class:`_Raised`."""
    error = future.exception()
    return future.result() if error is None else _Raised(error)


def _collect(pool: ProcessPoolExecutor, flight: dict, done: dict, alone: deque, solo: int | None,
             items: Sequence, on_lost: Callable | None) -> None:
    """A process of ``pool`` died: keep what finished, and send the rest of what was in flight again, alone.

    Which item killed it? Every item in flight fails with the pool, so only an item that ran alone
    (``solo``) is sure; it is lost: ``on_lost``.
    """
    pool.shutdown(wait=True, cancel_futures=True)
    again = []
    for i, future in sorted(flight.items()):
        if _lost_with_pool(future):
            again.append(i)
        else:
            done[i] = _outcome(future)  # finished before the end
    flight.clear()
    if solo is not None and again == [solo]:
        why = "its process ended without a word: killed, or crashed in native code"
        if on_lost is None:
            raise RuntimeError(f"a worker process died on item {solo}: {why}")
        done[solo] = on_lost(items[solo], why)
    else:
        alone.extendleft(reversed(again))


#: In a worker: what its initializer raised (:func:`pipeline.engines.start_worker`), which each call raises.
_init_error: Exception | None = None


def _start(initializer: Callable | None, initargs: tuple) -> None:
    """A worker's start: Ctrl-C is the parent's to handle (it kills the workers), then ``initializer``."""
    global _init_error
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_error = start_worker(initializer, initargs)


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold Ctrl-C back while this thread starts processes, which inherit the blocked SIGINT.

    A worker ignores Ctrl-C only once :func:`_start` runs, after it has imported what it needs (seconds,
    for MediaPipe); a Ctrl-C before that printed every worker's traceback. Held here, it reaches this
    process as soon as the processes are started.
    """
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX
        yield
        return
    resource_tracker.ensure_running()  # its first start unblocks SIGINT on its way out
    # The mask holds the signal back from this thread only: another (tqdm's monitor) may take it, and Python
    # would then raise KeyboardInterrupt in the main thread mid-start. So Python's handler waits too.
    with ctrl_c_deferred():
        before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)  # a Ctrl-C held back by the mask arrives here


def _call(func: Callable, item: Any) -> Any:
    """``func(item)`` in a worker, or the initializer's exception."""
    if _init_error is not None:
        raise _init_error
    return func(item)


def _kill(pool: ProcessPoolExecutor) -> None:
    """Stop a pool at once, its running items too (``shutdown`` alone waits for them)."""
    # The private process map, on purpose: Python 3.14's public kill_workers() shuts the pool down without
    # waiting before it kills, so the shutdown(wait=True) after it would no longer reap the workers.
    for process in list((pool._processes or {}).values()):
        with contextlib.suppress(OSError):
            process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["DEPTH", "map_on_processes"]
