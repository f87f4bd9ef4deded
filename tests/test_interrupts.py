"""Ctrl-C held back for the length of a block, then delivered as the handler in place would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from pipeline.interrupts import ctrl_c_deferred

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_keyboard_interrupt_comes_after_the_whole_block():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_deferred():
            ctrl_c()
            steps.append("after the signal")
            ctrl_c()  # two Ctrl-C in one call: one KeyboardInterrupt
            steps.append("end of block")
        steps.append("not reached")
    assert steps == ["after the signal", "end of block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_ctrl_c_no_interrupt_and_the_handler_is_back():
    with ctrl_c_deferred():
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # held while inside
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_callers_handler_is_called_once_after_the_block():
    calls = []
    mine = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        handler = signal.getsignal(signal.SIGINT)
        with ctrl_c_deferred():
            ctrl_c()
            assert calls == []
        assert calls == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, mine)


def test_an_ignored_ctrl_c_stays_ignored():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ctrl_c_deferred():
            ctrl_c()
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_another_thread_runs_the_block_as_it_is():
    errors, ran = [], []

    def work() -> None:
        try:
            with ctrl_c_deferred():  # signal.signal would raise ValueError off the main thread
                ran.append(True)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert ran == [True] and errors == []


def test_the_default_action_ends_the_process_after_the_block():
    code = ("import os, signal, sys\nfrom pipeline.interrupts import ctrl_c_deferred\n"
            "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
            "with ctrl_c_deferred():\n    os.kill(os.getpid(), signal.SIGINT)\n    print('block ended', flush=True)\n"
            "print('after the block', flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGINT, proc.stderr
    assert proc.stdout.splitlines() == ["block ended"]
