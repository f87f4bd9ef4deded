"""Where parallel work runs: processes on this machine (``local``), or a Ray cluster (``ray``).

An :class:`Engine` is what ``--engine``, ``--address`` and ``--workers`` name on the command line.
The stages take one and hand it the work that can run apart (detection of a file, one study
cell); the results come back to the calling process, which alone writes them.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Callable

from pipeline.errors import UserError

#: ``local``: a pool of processes on this machine; ``ray``: Ray actors or tasks (``pip install "handcam[ray]"``).
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Engine:
    """``kind`` (one of :data:`ENGINES`), how many ``workers`` (``None``: the default, one local process or
    every CPU of the Ray cluster), and the ``address`` of a running Ray cluster (``None``: start one here)."""

    kind: str = "local"
    workers: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise UserError(f"unknown engine {self.kind!r}; choose one of {', '.join(ENGINES)}")
        if self.address and self.kind != "ray":
            raise UserError("--address names a Ray cluster; add --engine ray")
        if self.workers is not None and self.workers < 1:
            raise UserError(f"--workers {self.workers}: must be at least 1")

    @property
    def ray(self) -> bool:
        return self.kind == "ray"


def as_engine(engine: "Engine | int") -> Engine:
    """An :class:`Engine`; a plain number is that many local processes (what ``--workers N`` meant before engines)."""
    return engine if isinstance(engine, Engine) else Engine("local", int(engine))


def start_worker(initializer: Callable | None, initargs: tuple) -> Exception | None:
    """Run a worker's ``initializer(*initargs)``; return what it raised (None if nothing), for each call to raise.

    A worker whose set-up raises would otherwise look like one that died, and every item would be blamed in
    turn. The error goes back to the caller pickled, so one that does not survive pickling is replaced by a
    ``RuntimeError`` that names it.
    """
    if initializer is None:
        return None
    try:
        initializer(*initargs)
    except Exception as error:  # noqa: BLE001 (raised by each call instead, so it reaches the caller as itself)
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:  # noqa: BLE001
            return RuntimeError(f"the workers could not start: {type(error).__name__}: {error}")
        return error
    return None
