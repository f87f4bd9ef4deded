"""Two Ray nodes on this one machine (``ray start --head`` and ``ray start --address``, each with its own temp
folder), and ``collect --engine ray --address`` on them: the same dataset as the process pool. Both nodes are
shut down at the end, also when the test fails."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from helpers import REPO, assert_same_hands, index_rows, link
from pipeline.data.folder_import import ImportOptions, import_folder
from pipeline.data.store import DatasetWriter
from pipeline.preprocess.crops import CropSettings


def ray_command() -> str:
    pytest.importorskip("ray", reason="Ray is not installed; pip install -e \".[ray]\" runs the Ray tests")
    found = Path(sys.executable).with_name("ray")
    return str(found) if found.is_file() else shutil.which("ray") or pytest.skip("Ray's command line (ray) is not on PATH")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ray_node(args: list[str], temp_dir: Path, env: dict, log: Path) -> Iterator[subprocess.Popen]:
    """``ray start ARGS --block`` in a process group of its own; at the end the whole group is stopped (TERM, then
    KILL), and the test fails if any of its processes is left."""
    temp_dir.mkdir(parents=True)
    with open(log, "w") as out:
        proc = subprocess.Popen([ray_command(), "start", *args, f"--temp-dir={temp_dir}", "--num-cpus=1",
                                 "--disable-usage-stats", "--block"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start {' '.join(args)} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _group_alive(proc.pid):
                proc.poll()
                time.sleep(0.2)
            if not _group_alive(proc.pid):
                break
        assert not _group_alive(proc.pid), f"processes of the Ray node {' '.join(args)} are still running"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped) still counts for killpg; only live processes matter
    return any(_state(pid) not in ("Z", "") for pid in _members(pgid))


def _members(pgid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    out.append(int(entry.name))
    return out


def _state(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A folder with a short path: Ray's sockets live under a node's temp folder, and a socket's path has at most 107 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="hc-ray-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_collect_on_two_nodes_gives_the_pool_s_dataset_and_both_nodes_stop(fingers_dir, tmp_path, short_tmp):
    if not Path("/proc").is_dir():
        pytest.skip("the node clean-up check reads /proc (Linux)")
    tree = tmp_path / "photos"
    for photo in sorted(fingers_dir.glob("*/*.jpg"))[::80]:
        link(photo, tree / photo.parent.name / photo.name)
    with DatasetWriter(tmp_path / "pool", CropSettings()) as writer:
        import_folder(tree, writer, ImportOptions(engine=2), progress=False)
    # One token for the two nodes and the driver, as on two machines (never the user's ~/.ray/auth_token).
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "GLOG_minloglevel": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("RAY_ADDRESS", None)
    address = f"127.0.0.1:{free_port()}"
    with ray_node(["--head", f"--port={address.split(':')[1]}", "--node-ip-address=127.0.0.1", "--include-dashboard=false"],
                  short_tmp / "head", env, tmp_path / "head.log"), \
         ray_node([f"--address={address}", "--node-ip-address=127.0.0.1"], short_tmp / "worker", env, tmp_path / "worker.log"):
        proc = subprocess.run([sys.executable, "-m", "pipeline.collect", "--from", str(tree), "--data", str(tmp_path / "ray"),
                               "--engine", "ray", "--address", address, "--workers", "2", "--quiet"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        # Ray names an actor's class at the top of its worker's log: the second node ran detection actors.
        actors_there = [log for log in (short_tmp / "worker").glob("session_*/logs/worker-*.out") if "_Worker" in log.read_text()]
    last = dict(kv.split("=", 1) for kv in proc.stdout.strip().splitlines()[-1].split())
    assert int(last["saved"]) == len(index_rows(tmp_path / "pool")) > 15
    assert_same_hands(tmp_path / "ray", tmp_path / "pool")
    assert actors_there, "no detection actor ran on the second node"
