"""A training run in a process of its own, reporting as it goes: what the studio's ``t`` key starts.

The window keeps showing the camera while a LeNet trains on what has been recorded so far::

    job = BackgroundTraining("data/mine", "runs/studio-1")
    while job.running:
        for event in job.poll():      # Started, Epoch, then Finished or Failed
            ...

The run is an ordinary one (:func:`pipeline.training.run.train_run`: the normal recipe, a run folder
under ``runs/``). The process runs on idle CPU time only (:func:`be_idle`) with one torch thread, so the camera keeps its pace. A
crash of the process, however it dies, becomes one :class:`Failed` line. The run reads the dataset
(and packs its crops into its ``.cache/``); a sample deleted while it reads makes it read again.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.files import atomic_write_text
from pipeline.training.loop import TrainConfig

#: Fewer groups (sessions) than this: validation and test are later blocks of each class's recording.
MIN_GROUPS = 3
#: How many confused pairs a finished run reports.
TOP_CONFUSIONS = 3


@dataclass(frozen=True)
class Started:
    """The data is loaded and split; training begins."""

    out: Path
    samples: int
    split: str  # how validation was chosen, for the screen


@dataclass(frozen=True)
class Epoch:
    """One epoch of one member is done."""

    member: int
    epoch: int
    epochs: int
    val_acc: float


@dataclass(frozen=True)
class Confusion:
    """Validation samples of class ``true`` answered ``predicted``: how many of the class's, and some of their ids."""

    true: str
    predicted: str
    count: int
    total: int
    ids: tuple[str, ...]


@dataclass(frozen=True)
class Finished:
    """The run is saved: ``out/model.pt`` and the usual reports."""

    out: Path
    val_accuracy: float
    test_accuracy: float
    seconds: float
    confusions: tuple[Confusion, ...] = ()


@dataclass(frozen=True)
class Failed:
    """The run did not finish; ``message`` is one line for the screen."""

    message: str


Event = Started | Epoch | Finished | Failed


def split_recording(data, seed: int = 0):
    """The split of a recording: by group (session) when there are :data:`MIN_GROUPS`, else by blocks in time
    (:func:`~pipeline.data.splits.split_by_blocks`).

    Returns the :class:`~pipeline.training.run.Split` and a few words saying which.
    """
    from pipeline.data.splits import split_by_blocks
    from pipeline.training.run import Split, check_trainable, make_split

    check_trainable(data)
    groups = len(set(data.groups.tolist()))
    if groups >= MIN_GROUPS:
        return make_split(data, seed=seed), f"validation by session ({groups} sessions)"
    order = data.index["id"].astype(int).to_numpy()
    split = Split(*split_by_blocks(data.labels.numpy(), order))
    if not len(split.val) or not len(split.test):
        raise UserError(f"too few samples to validate: record at least 3 of each gesture (have {len(data)})")
    return split, f"{groups} session{'s' if groups > 1 else ''}: validation on runs of frames between (optimistic)"


def load_recording(root: str | Path, tries: int = 3):
    """The dataset at ``root`` as :func:`~pipeline.data.spec.load_data` reads it, read again when its index was
    rewritten meanwhile (a sample deleted or undone by the window while this read it: its files are gone).

    Returns the dataset and its :class:`~pipeline.data.spec.DataSpec`.
    """
    from pipeline.data.spec import DataSpec, load_data
    from pipeline.data.store import INDEX

    spec = DataSpec("hands", (str(root),))
    index = Path(root) / INDEX
    for attempt in range(tries):
        before = _stamp(index)
        try:
            return load_data(spec), spec
        except UserError:
            if attempt == tries - 1 or _stamp(index) == before:
                raise
    raise AssertionError("unreachable")


def _stamp(path: Path) -> tuple[int, int, int]:
    """What changes when a file is replaced or appended to."""
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def confusions(truth: np.ndarray, predicted: np.ndarray, names: list[str], ids: np.ndarray,
               top: int = TOP_CONFUSIONS) -> tuple[Confusion, ...]:
    """The ``top`` most frequent (true, predicted) mistakes, largest share of the true class first."""
    totals = Counter(truth.tolist())
    pairs = Counter((int(t), int(p)) for t, p in zip(truth, predicted) if t != p)
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1] / totals[kv[0][0]], -kv[1], kv[0]))[:top]
    return tuple(Confusion(names[t], names[p], n, totals[t],
                           tuple(ids[(truth == t) & (predicted == p)][:4].tolist())) for (t, p), n in ranked)


def be_idle() -> None:
    """Let this process run only on CPU time nothing else wants (Linux ``SCHED_IDLE``; elsewhere the lowest
    nice it can take): the camera view, MediaPipe and the window come first."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):
        pass
    try:
        os.nice(19)
    except (AttributeError, OSError):
        pass


def _train(events, data_root: str, out: str, model_name: str, config: TrainConfig) -> None:
    """The body of the training process: load, split, train, then send the validation mistakes."""
    import torch

    from pipeline.lenet.checkpoint import load_model
    from pipeline.training.loop import predict_logits
    from pipeline.training.run import train_run

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the window's; it stops us
    be_idle()
    # tqdm's default lock is a multiprocessing semaphore: a process killed while holding it registered would
    # have the window's resource tracker warn about a leak at exit. A thread lock is all one process needs.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    torch.set_num_threads(1)
    lines: list[str] = []
    out_path = Path(out)
    last: Event
    try:
        data, spec = load_recording(data_root)
        split, how = split_recording(data, config.seed)
        events.send(Started(out_path, len(data), how))
        run = train_run(data, model_name, out_path, config, split=split, progress=False, log=lines.append,
                        data_spec=spec, on_epoch=lambda k, r: events.send(Epoch(k, r.epoch, config.epochs, r.val_acc)))
        model = load_model(out_path / "model.pt")
        predicted = predict_logits(model.network, data.images[split.val]).argmax(1).numpy()
        mistakes = confusions(data.labels[split.val].numpy(), predicted, data.label_names,
                              data.index["id"].to_numpy()[split.val])
        last = Finished(out_path, run.val_accuracy, run.test_accuracy, run.seconds, mistakes)
    except UserError as e:
        last = Failed(f"training failed: {e}")
    except BaseException as e:  # noqa: BLE001 (the window shows one line; the traceback goes to the log)
        lines.append(traceback.format_exc())
        last = Failed(f"training failed: {type(e).__name__}: {e} (details in {out_path / 'log.txt'})")
    if out_path.is_dir():  # before the last word: once it is sent, the window may show the folder
        atomic_write_text(out_path / "log.txt", "\n".join(lines) + "\n")
    events.send(last)


@dataclass
class BackgroundTraining:
    """A training run of ``data`` into ``out`` in another process (see the module's docstring).

    ``poll()`` returns the events since the last call; after a :class:`Finished` or :class:`Failed`
    (also one made up for a process that died without saying why) :attr:`running` is False.
    """

    data: str | Path
    out: str | Path
    model_name: str = "lenet5"
    config: TrainConfig = field(default_factory=TrainConfig)
    result: Finished | Failed | None = None

    def __post_init__(self) -> None:
        context = mp.get_context("spawn")  # no fork: this process holds a window, MediaPipe and threads
        # A one-way pipe, not a Queue: no semaphore for a killed process to leak, and its end is an EOF here.
        self._events, sender = context.Pipe(duplex=False)
        self.process = context.Process(target=_train, args=(sender, str(self.data), str(self.out),
                                                            self.model_name, self.config), daemon=True)
        self.process.start()
        sender.close()  # the process holds the only sending end now

    @property
    def running(self) -> bool:
        return self.result is None

    def poll(self) -> list[Event]:
        """Events that arrived since the last call; never blocks while the process lives (the window calls it
        every frame)."""
        got: list[Event] = []
        while self.result is None:
            try:
                if not self._events.poll():
                    break
                event = self._events.recv()
            except (EOFError, OSError, pickle.UnpicklingError):  # it ended without its last word
                self.process.join(timeout=2)
                event = Failed(f"the training process died ({died(self.process.exitcode)}); "
                               "the recorded data is intact")
            got.append(event)
            if isinstance(event, (Finished, Failed)):
                self.result = event
                self._events.close()
                self.process.join(timeout=0)  # reaped if it has exited; it exits by itself, and stop() waits for it
        return got

    def stop(self) -> None:
        """End the process (quitting while it trains); what it wrote stays in its run folder."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=5)
        self._events.close()


def died(code: int | None) -> str:
    """How a process ended, in words: ``exit code 1`` or ``killed by signal 9 (SIGKILL)``."""
    if code is None:
        return "its pipe closed, and it has not exited yet"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        return f"killed by signal {-code} ({name})"
    return f"exit code {code}"


__all__ = ["BackgroundTraining", "Confusion", "Epoch", "Event", "Failed", "Finished", "Started", "confusions",
           "died", "load_recording", "split_recording"]
