"""Ray as an engine: a session (a local Ray, or a running cluster), an ordered map over stateful actors, and tasks.

:func:`ray_session` connects for the length of a ``with`` block: to ``address`` when given (a
cluster started with ``ray start --head``), else to a local Ray started with this machine's
cores and stopped at the end. A session already open in this process (a test's, a notebook's) is
used as it is and left open.

:func:`map_on_actors` is ``multiprocessing.Pool(workers, initializer, initargs).imap(func, items)``
on Ray: each actor runs ``initializer`` once (a detector per worker), is fed batches, and the
results come back in the items' order. An actor that dies (a file that crashes native code, a
node that leaves) is replaced; its batch is retried item by item, and an item that kills a worker
on its own is handed to ``on_lost``, which makes its result. :func:`map_on_tasks` runs one task
per item, retried once, and yields the results as they finish.

Ray is imported only here, and only when used: without it, :func:`require_ray` is one line
saying how to install it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from typing import Any, Callable, Iterable, Iterator, Sequence

from pipeline.engines import start_worker
from pipeline.errors import UserError

INSTALL = 'pip install "handcam[ray]" (in a checkout: pip install -e ".[ray]")'
#: Batches in flight per actor: one being worked on, one waiting, so an actor never idles between batches.
DEPTH = 2


def require_ray():
    """The ``ray`` module; without it, a :class:`UserError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--engine ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, cpus: int | None = None) -> Iterator[Any]:
    """Connected to Ray inside the block (yields the ``ray`` module).

    ``address`` (``HOST:PORT``): a running cluster, left running at the end. ``None``: a local Ray
    with ``cpus`` CPUs (default: this machine's cores), stopped at the end. Worker output reaches this terminal only with
    ``HANDCAM_VERBOSE=1`` (MediaPipe's log lines would bury the progress bar).
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = {"logging_level": logging.ERROR, "log_to_driver": bool(os.environ.get("HANDCAM_VERBOSE")),
             "runtime_env": {"env_vars": {"GLOG_minloglevel": os.environ.get("GLOG_minloglevel", "2")}}}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(address="local", num_cpus=cpus or os.cpu_count() or 1, include_dashboard=False, **quiet)
    except ConnectionError as e:
        if "Authentication" in type(e.__cause__).__name__:
            raise UserError(f"--address {address}: the cluster wants its token; set RAY_AUTH_MODE=token and "
                            "RAY_AUTH_TOKEN (what 'ray get-auth-token' prints on the head) here and on every node") from None
        raise UserError(f"--address {address}: no Ray cluster answers there ({' '.join(str(e).split())[:200]}); "
                        "start one with 'ray start --head --port=6379', then pass --address HEAD:6379") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_cpus(ray) -> int:
    """The CPUs of the connected cluster, all nodes together (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class _Worker:
    """The actor of :func:`map_on_actors`: ``initializer(*initargs)`` once, then ``func`` over each batch."""

    def __init__(self, func: Callable, initializer: Callable | None, initargs: tuple):
        self.func = func
        self.error = start_worker(initializer, initargs)  # what the initializer raised: each batch raises it

    def run(self, batch: list) -> list:
        if self.error is not None:
            raise self.error
        return [self.func(item) for item in batch]

    def node(self) -> str:
        """The id of the Ray node (machine) this actor runs on."""
        import ray

        return ray.get_runtime_context().get_node_id()


def map_on_actors(func: Callable, items: Sequence, initializer: Callable | None = None, initargs: tuple = (),
                  workers: int | None = None, batch: int = 4, prepare: Callable[[Any, bool], Any] | None = None,
                  on_lost: Callable[[Any, str], Any] | None = None) -> Iterator:
    """``func(prepare(item))`` for each item on Ray actors (call inside :func:`ray_session`), in the items' order.

    ``workers`` actors (default: every CPU of the cluster), one CPU each, run ``initializer(*initargs)``
    once, then take ``batch`` items at a time. ``prepare(item, here)`` runs here, just before an item is
    sent, ``here`` telling whether the actor runs on this machine (elsewhere, read the file's bytes to
    send them, so the cluster's nodes need not share this machine's files). An item whose worker died
    under it on its own gives ``on_lost(item, why)``; without ``on_lost`` that raises ``RuntimeError``.
    An exception ``func`` or the initializer raises is raised here, as itself. Leaving early (an error,
    Ctrl-C, closing the iterator) kills the actors, so no work is left running on the cluster.
    """
    ray = require_ray()
    from ray.exceptions import RayActorError, RayTaskError

    prepare = prepare or (lambda item, here: item)
    workers = workers or cluster_cpus(ray)
    this_node = ray.get_runtime_context().get_node_id()
    here: dict[int, bool] = {}  # actor key -> on this machine (asked once, before its first batch)
    remote = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_Worker)
    spawn = lambda: remote.remote(func, initializer, initargs)  # noqa: E731
    actors = {k: spawn() for k in range(min(workers, max(1, -(-len(items) // batch))))}
    lanes: dict[int, deque] = {k: deque() for k in actors}  # each actor's refs in flight, oldest (running) first
    # (indices, alone): a batch, or after a death one item of the dead batch, sent alone to an idle actor
    queue: deque = deque((list(range(i, min(i + batch, len(items)))), False) for i in range(0, len(items), batch))
    window = len(actors) * DEPTH * batch * 4  # results held here, waiting for an earlier one, stay bounded
    flight: dict = {}  # ref -> (actor key, indices, alone)
    done: dict[int, Any] = {}
    nxt = 0
    try:
        while nxt < len(items):
            for k, actor in actors.items():
                while queue and queue[0][0][0] < nxt + window and _room(lanes[k], flight, queue[0][1]):
                    indices, alone = queue.popleft()
                    if k not in here:
                        here[k] = ray.get(actor.node.remote()) == this_node
                    ref = actor.run.remote([prepare(items[i], here[k]) for i in indices])
                    flight[ref] = (k, indices, alone)
                    lanes[k].append(ref)
            while nxt in done:
                yield done.pop(nxt)
                nxt += 1
            if nxt >= len(items) or not flight:
                continue
            (ref,), _ = ray.wait(list(flight), num_returns=1)
            k, indices, _ = flight[ref]
            try:
                result = ray.get(ref)
            except RayTaskError as e:
                raise _cause(e) from None
            except RayActorError as e:
                why = " ".join(str(e).split())[:300]
                if e.actor_init_failed:
                    raise RuntimeError(f"the Ray workers could not start: {why}") from None
                _actor_died(ray, k, actors, lanes, flight, queue, done, spawn, items, on_lost, why)
                here.pop(k, None)
                continue
            del flight[ref]
            lanes[k].remove(ref)
            done.update(zip(indices, result))
    finally:
        for ref in flight:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        for actor in actors.values():
            with contextlib.suppress(Exception):
                ray.kill(actor)


def _room(lane: deque, flight: dict, alone: bool) -> bool:
    """Whether an actor takes another batch: fewer than :data:`DEPTH` in flight, and none beside a lone item."""
    if alone:
        return not lane
    return len(lane) < DEPTH and not any(flight[ref][2] for ref in lane)


def _actor_died(ray, k: int, actors: dict, lanes: dict, flight: dict, queue: deque, done: dict, spawn: Callable,
                items: Sequence, on_lost: Callable | None, why: str) -> None:
    """Actor ``k`` died: keep what it finished, send the rest again, replace it.

    An actor runs its batches in order, so the oldest unfinished one was running when it died. Its
    items go again, each alone on an idle actor (which one killed it? a reply still in the dying
    process is lost too, so only an item that was alone is sure); a lone item that was running
    alone is lost: ``on_lost``.
    """
    from ray.exceptions import RayActorError

    culprit, again = None, []
    ray.wait(list(lanes[k]), num_returns=len(lanes[k]), timeout=30)  # each comes back: a result, or the death
    for ref in list(lanes[k]):
        _, indices, alone = flight.pop(ref)
        try:
            done.update(zip(indices, ray.get(ref, timeout=0)))  # finished before the end
            continue
        except RayActorError:
            pass
        except Exception:  # noqa: BLE001 (no answer at all: sent again, as if never started)
            pass
        if culprit is None:
            culprit = (indices, alone)
        else:
            again.append((indices, alone))
    lanes[k].clear()
    ray.kill(actors[k])
    actors[k] = spawn()
    if culprit is not None and culprit[1]:
        if on_lost is None:
            raise RuntimeError(f"a Ray worker died on item {culprit[0][0]}: {why}")
        done[culprit[0][0]] = on_lost(items[culprit[0][0]], why)
    elif culprit is not None:
        again = [([i], True) for i in culprit[0]] + again
    queue.extendleft(reversed(again))


def map_on_tasks(func: Callable, items: Iterable, shared: Any = None, threads: int = 1,
                 retries: int = 1) -> Iterator[tuple[int, Any, BaseException | None]]:
    """``func(shared, item)`` for each item as a Ray task of one CPU (call inside :func:`ray_session`); yields
    ``(position, result, None)`` as each finishes, or ``(position, None, error)`` for one that failed
    ``retries + 1`` times (an exception, or its worker died). ``shared`` (a dataset, say) is sent to
    the cluster once, not with every task. ``threads`` caps torch's threads in each task (Ray sets
    ``OMP_NUM_THREADS`` to a task's CPUs too). Leaving early cancels what is still running.
    """
    ray = require_ray()
    from ray.exceptions import RayError, RayTaskError

    remote = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=True)(_call_with_threads)
    shared_ref = ray.put(shared)
    flight = {remote.remote(func, shared_ref, item, threads): k for k, item in enumerate(items)}
    try:
        while flight:
            (ref,), _ = ray.wait(list(flight), num_returns=1)
            k = flight.pop(ref)
            try:
                result = ray.get(ref)
            except RayTaskError as e:
                yield k, None, _cause(e)
            except RayError as e:
                yield k, None, e
            else:
                yield k, result, None
    finally:
        for ref in flight:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)


def _cause(error) -> BaseException:
    """The exception a Ray task raised, as itself (its message, not Ray's traceback around it)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error.as_instanceof_cause()


def _call_with_threads(func: Callable, shared: Any, item: Any, threads: int) -> Any:
    """Run ``func(shared, item)`` with torch held to ``threads`` threads (a Ray worker may have run other tasks before)."""
    import torch

    torch.set_num_threads(threads)
    return func(shared, item)
