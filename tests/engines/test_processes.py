"""The local process engine: results in order, a worker that dies (killed, crashed) costs one item, never a hang."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import REPO, init_then_poison
from pipeline.engines.processes import map_on_processes


def init(offset: int) -> None:  # runs once per process, as a pool's initializer does
    os.environ["TEST_OFFSET"] = str(offset)


def square(x: int) -> tuple[int, int]:
    time.sleep(0.05)  # long enough that the second process, slower to start, gets items too
    return x * x + int(os.environ["TEST_OFFSET"]), os.getpid()


def crash_on_7(x: int) -> int:
    if x == 7:
        os._exit(3)  # what a crash in native code looks like from outside
    time.sleep(0.02)
    return -x


def oom_kill_once(path: str) -> int:
    """The first item to run kills its own process with SIGKILL (as the OOM killer would), once."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return os.getpid()
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def raise_on_2(x: int) -> int:
    if x == 2:
        raise ValueError("bad item 2")
    return x


def square_after_init(x: int) -> tuple[int, int]:
    return x * x + int(os.environ["TEST_OFFSET"]), os.getpid()


def slow_ok_raise_on_2(x: int) -> int:
    if x == 2:
        raise ValueError("bad item 2")
    time.sleep(1.0 if x < 2 else 0)
    return x


def slow_after_0(x: int) -> int:
    if x:
        time.sleep(30)
    return x


def children() -> list:
    """This process's live child processes (the pools' workers)."""
    return mp.active_children()


def test_results_come_in_order_from_the_initialised_processes():
    out = list(map_on_processes(square, list(range(23)), init, (1000,), workers=2))
    assert [v for v, _ in out] == [x * x + 1000 for x in range(23)]
    assert len({pid for _, pid in out}) == 2 and os.getpid() not in {pid for _, pid in out}
    assert children() == []


def test_an_item_that_kills_its_worker_is_handed_to_on_lost_and_the_rest_come_through():
    out = list(map_on_processes(crash_on_7, list(range(12)), workers=2, on_lost=lambda x, why: ("lost", x, why)))
    assert out[:7] == [0, -1, -2, -3, -4, -5, -6] and out[8:] == [-8, -9, -10, -11]
    assert out[7][:2] == ("lost", 7) and "killed, or crashed" in out[7][2]
    with pytest.raises(RuntimeError, match="died on item 1"):
        list(map_on_processes(crash_on_7, [6, 7, 8], workers=1))


def test_a_worker_killed_once_loses_nothing(tmp_path):
    # A SIGKILL that is not the item's fault (memory pressure): the items in flight go again and succeed.
    out = list(map_on_processes(oom_kill_once, [str(tmp_path / "killed")] * 6, workers=2))
    assert len(out) == 6 and all(isinstance(pid, int) for pid in out)


def test_an_error_in_func_is_raised_as_itself_and_the_processes_are_stopped():
    with pytest.raises(ValueError, match="bad item 2"):
        list(map_on_processes(raise_on_2, list(range(6)), workers=2))
    assert children() == []


def fail_to_start() -> None:
    raise OSError("model.task: cannot load")


class NeedsTwo(Exception):
    def __init__(self, what: str, why: str) -> None:  # pickled as NeedsTwo(message): it cannot be unpickled
        super().__init__(f"{what}: {why}")


def fail_unpicklably() -> None:
    raise NeedsTwo("model.task", "cannot load")


def test_an_exception_in_the_initializer_is_raised_as_itself_not_blamed_on_the_items():
    # A pool whose initializer raises is broken: without care every item looks like one that killed its worker.
    lost = []
    with pytest.raises(OSError, match="model.task: cannot load"):
        list(map_on_processes(abs, list(range(8)), fail_to_start, workers=2, on_lost=lambda x, why: lost.append(x)))
    with pytest.raises(RuntimeError, match="could not start: NeedsTwo: model.task: cannot load"):
        list(map_on_processes(abs, list(range(8)), fail_unpicklably, workers=2, on_lost=lambda x, why: lost.append(x)))
    assert lost == [] and children() == []


CTRL_C_EARLY = """
import os, signal, sys, threading, time
from pipeline.engines.processes import map_on_processes

if __name__ == "__mp_main__":  # a worker, importing what it needs (MediaPipe takes seconds)
    mark = os.path.join(sys.argv[1], f"worker-{os.getpid()}")
    with open(mark + ".part", "w") as out:  # can Ctrl-C reach it now?
        out.write(str(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
                      or signal.getsignal(signal.SIGINT) == signal.SIG_IGN))
    os.replace(mark + ".part", mark)
    time.sleep(4)


def same(x):
    return x


def ctrl_c_once_both_workers_import():
    while len([n for n in os.listdir(sys.argv[1]) if n.startswith("worker-") and not n.endswith(".part")]) < 2:
        time.sleep(0.05)
    os.killpg(os.getpgrp(), signal.SIGINT)  # Ctrl-C: the whole process group


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal: CI may start us with Ctrl-C ignored
    threading.Thread(target=ctrl_c_once_both_workers_import, daemon=True).start()  # also a thread it may land on
    try:
        list(map_on_processes(same, list(range(8)), workers=2))
    except KeyboardInterrupt:
        print("stopped", flush=True)
"""


def test_ctrl_c_while_the_workers_start_stops_this_process_and_never_reaches_them(tmp_path):
    # Workers ignore Ctrl-C once set up. Before that, while they import, each one could print a traceback.
    script = tmp_path / "ctrl_c_early.py"
    script.write_text(CTRL_C_EARLY)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)
    assert proc.stdout == "stopped\n" and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    held = [p.read_text() for p in tmp_path.glob("worker-*")]
    assert held == ["True", "True"]  # both workers started with Ctrl-C held back, from their first line on
    assert proc.stderr == ""


def test_leaving_early_kills_running_items():
    results = map_on_processes(slow_after_0, list(range(5)), workers=2)
    assert next(results) == 0
    assert len(children()) == 2  # both busy with 30 s items
    start = time.monotonic()
    results.close()  # as a loop left by an error or Ctrl-C: the processes are stopped now, not in 30 s
    assert time.monotonic() - start < 10 and children() == []


def test_a_photo_that_kills_its_detection_process_is_reported_unreadable_and_the_others_are_detected(fingers_dir):
    import pipeline.preprocess.photo_folders as photo_folders
    from pipeline.preprocess.crops import CropSettings

    tasks = photo_folders.scan(fingers_dir)[::150][:9]
    poison = tasks[4].path.name
    results = list(map_on_processes(photo_folders._process, tasks, init_then_poison,
                                    (poison, None, 2, CropSettings(), 25), workers=2, on_lost=photo_folders._lost))
    assert [r.task.relative for r in results] == [t.relative for t in tasks]
    assert [r.status for r in results].count("unreadable") == 1 and results[4].status == "unreadable"
    assert results[4].error.startswith(f"{tasks[4].path}: the detection worker died on this file and it was skipped")
    assert sum(r.status == "found" for r in results) >= 7
    assert children() == []


def test_a_worker_killed_while_idle_loses_nothing():
    # The OOM killer may pick a worker that has nothing of ours running: the next item sent finds the pool
    # broken, and goes to a new one.
    results = map_on_processes(square_after_init, list(range(6)), init, (0,), workers=1)
    first = next(results)
    os.kill(first[1], signal.SIGKILL)
    time.sleep(0.5)  # the pool sees its worker gone
    rest = list(results)
    assert [v for v, _ in [first, *rest]] == [x * x for x in range(6)]


def test_an_error_comes_after_every_earlier_result():
    out = []
    with pytest.raises(ValueError, match="bad item 2"):
        for value in map_on_processes(slow_ok_raise_on_2, list(range(6)), workers=2):
            out.append(value)
    assert out == [0, 1]  # item 2 failed at once; 0 and 1, slower, still came first
