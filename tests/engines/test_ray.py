"""The Ray engine on a real local Ray (2 CPUs, one session for all Ray tests): order, dead workers, retries,
and the one line a user gets without Ray."""

from __future__ import annotations

import os
import sys

import pytest

import pipeline.collect as collect
import pipeline.evaluate as evaluate
import pipeline.study as study
from helpers import error_line, run_main, wait_for_cpus
from pipeline.engines import Engine
from pipeline.errors import UserError


def test_the_actors_keep_their_state_and_the_results_keep_the_items_order(ray_local):
    from pipeline.engines.ray import map_on_actors

    def init(offset):  # runs once per actor, as a pool's initializer does
        os.environ["TEST_OFFSET"] = str(offset)

    def work(x):
        return x * x + int(os.environ["TEST_OFFSET"]), os.getpid()

    out = list(map_on_actors(work, list(range(23)), init, (1000,), workers=2, batch=3))
    assert [v for v, _ in out] == [x * x + 1000 for x in range(23)]
    assert len({pid for _, pid in out}) == 2 and os.getpid() not in {pid for _, pid in out}
    assert wait_for_cpus(ray_local, 2) == 2  # the actors are gone


def test_an_item_that_kills_its_worker_is_handed_to_on_lost_and_the_rest_come_through(ray_local):
    from pipeline.engines.ray import map_on_actors

    def work(x):
        if x == 7:
            os._exit(3)  # what a crash in native code looks like from outside
        return -x

    out = list(map_on_actors(work, list(range(12)), workers=2, batch=4, on_lost=lambda x, why: ("lost", x)))
    assert out == [0, -1, -2, -3, -4, -5, -6, ("lost", 7), -8, -9, -10, -11]
    with pytest.raises(RuntimeError, match="died on item 1"):
        list(map_on_actors(work, [6, 7, 8], workers=1, batch=1))
    assert wait_for_cpus(ray_local, 2) == 2


def test_an_exception_in_an_actor_is_raised_as_itself(ray_local):
    from pipeline.engines.ray import map_on_actors

    def work(x):
        if x == 2:
            raise UserError(f"item {x}: bad")
        return x

    with pytest.raises(UserError, match="item 2: bad"):
        list(map_on_actors(work, list(range(5)), workers=2, batch=1))
    assert wait_for_cpus(ray_local, 2) == 2


def test_an_exception_in_the_initializer_is_raised_as_itself_not_blamed_on_the_items(ray_local):
    from pipeline.engines.ray import map_on_actors

    def init():
        raise UserError("model.task: MediaPipe could not load the hand model")

    lost = []
    with pytest.raises(UserError, match="could not load"):
        list(map_on_actors(abs, list(range(6)), init, workers=2, batch=1, on_lost=lambda x, why: lost.append(x)))
    assert lost == [] and wait_for_cpus(ray_local, 2) == 2


def test_a_task_is_retried_once_then_reported_and_runs_on_one_thread(ray_local, tmp_path):
    from pipeline.engines.ray import map_on_tasks

    def work(shared, name):
        import torch

        marker = shared / name
        tries = int(marker.read_text()) + 1 if marker.exists() else 1
        marker.write_text(str(tries))
        if name == "flaky" and tries == 1 or name == "broken":
            raise ValueError(f"{name} failed on try {tries}")
        return name, tries, torch.get_num_threads()

    out = {k: (value, error) for k, value, error in map_on_tasks(work, ["fine", "flaky", "broken"], shared=tmp_path)}
    assert out[0] == (("fine", 1, 1), None)
    assert out[1] == (("flaky", 2, 1), None)  # the retry succeeded
    value, error = out[2]
    assert value is None and isinstance(error, ValueError) and "broken failed on try 2" in str(error)
    assert (tmp_path / "broken").read_text() == "2"  # tried twice, no more


def test_without_ray_the_engine_is_one_line_saying_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as on a machine without it
    from pipeline.engines.ray import require_ray

    with pytest.raises(UserError, match=r'pip install "handcam\[ray\]"'):
        require_ray()
    for module, args in ((collect, ["--from", str(tmp_path), "--data", str(tmp_path / "d"), "--engine", "ray"]),
                         (evaluate, ["--photos", str(tmp_path), "--engine", "ray"]),
                         (study, ["--data", str(tmp_path), "--engine", "ray", "--out", str(tmp_path / "s")])):
        code, out, err = run_main(module, *args)
        assert code == 2, (module.__name__, out, err)
        assert error_line(err).startswith("error: --engine ray needs Ray, which is not installed: pip install"), err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists() and not (tmp_path / "s").exists()


def test_an_address_without_the_ray_engine_is_refused():
    with pytest.raises(UserError, match="--address names a Ray cluster; add --engine ray"):
        Engine("local", address="127.0.0.1:6379")
