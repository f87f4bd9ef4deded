"""``collect --from`` on real photos: import, re-import, label maps, bad inputs, Ctrl-C."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

import pipeline.collect as collect
from helpers import error_line, index_rows, link, run_main
from pipeline.data.store import COLUMNS, INDEX, row_problem
from pipeline.preprocess.photo_folders import session_of

REPO = Path(__file__).resolve().parents[2]


ENV = {**os.environ, "GLOG_minloglevel": "2"}


#: Three sessions per label, so the groups can be checked.
PHOTOS = {
    "0": ["0/996_pic00000.jpg", "0/3_1528499009.07_pic00027.jpg", "0/1528664299.56_pic00087.jpg"],
    "5": ["5/2_pic00004.jpg", "5/pic00011.jpg", "5/Hand_0000889.jpg"],
}


BROKEN = "5/zz_broken.jpg"  # not an image: the import counts it as unreadable


def run_collect(*args: str, timeout: float = 120):
    """``collect`` in this process (its import workers are processes of their own): exit code, stdout, stderr."""
    code, out, err = run_main(collect, *args)
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)




def parse_summary(stdout: str) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    """The printed table as {label: {column: n}} and the last line's key=value pairs."""
    lines = stdout.strip().splitlines()
    header = lines[0].split()
    assert header == ["label", "files", "found", "no_hand", "unreadable", "dropped", "saved", "skipped"], lines[0]
    table = {}
    for line in lines[1:-1]:
        name, *values = line.split()
        table[name] = dict(zip(header[1:], map(int, values)))
        if name == "total":
            break  # a line on the samples saved before may follow
    last = dict(kv.split("=", 1) for kv in lines[-1].split())
    return table, last


@pytest.fixture(scope="module")
def photo_tree(fingers_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for label, names in PHOTOS.items():
        for name in names:
            link(fingers_dir / name, root / label / Path(name).name)
    (root / BROKEN).write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    return root


@pytest.fixture(scope="module")
def first_import(photo_tree, tmp_path_factory):
    data = tmp_path_factory.mktemp("out") / "fingers"
    proc = run_collect("--from", str(photo_tree), "--data", str(data), "--quiet")
    return data, proc


def test_import_prints_the_table_and_saves_every_hand(first_import, photo_tree):
    data, proc = first_import
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    table, last = parse_summary(proc.stdout)
    assert list(table) == ["0", "5", "total"]
    assert table["0"]["files"] == 3 and table["5"]["files"] == 4
    assert table["0"]["found"] == 3 and table["5"]["found"] == 3  # a hand in every real photo
    assert table["0"]["unreadable"] == 0 and table["5"]["unreadable"] == 1
    assert table["total"]["no_hand"] == 0 and table["total"]["skipped"] == 0
    for label in ("0", "5"):
        assert table[label]["saved"] >= table[label]["found"]
    rows = index_rows(data)
    assert int(last["saved"]) == table["total"]["saved"] == len(rows)
    assert last["skipped"] == "0" and float(last["hand_rate"]) == 1.0 and last["data"] == str(data)
    # Rows: every hand of every photo, the group from the file name, both images on disk.
    assert Counter(r["label"] for r in rows) == {"0": table["0"]["saved"], "5": table["5"]["saved"]}
    sources = {r["source"] for r in rows}
    assert sources == {f"{label}/{Path(n).name}" for label, names in PHOTOS.items() for n in names}
    for row in rows:
        assert row["group"] == session_of(row["source"])
        for sub in ("crops", "large"):
            assert (data / sub / row["label"] / f"{row['id']}.png").is_file()
    assert {r["group"] for r in rows} == {"996", "3_1528499009.07", "1528664299.56", "2", "pic", "Hand_0000889"}
    assert len({(r["source"], r["frame"], r["hand"]) for r in rows}) == len(rows)
    with open(data / "files.csv", newline="") as f:
        status = dict(csv.reader(f))
    assert status[BROKEN] == "unreadable" and sum(v == "found" for v in status.values()) == 6


def test_rerun_saves_nothing_new(first_import, photo_tree):
    data, _ = first_import
    before = (data / INDEX).read_bytes()
    proc = run_collect("--from", str(photo_tree), "--data", str(data), "--quiet")
    assert proc.returncode == 0, proc.stderr
    table, last = parse_summary(proc.stdout)
    assert last["saved"] == "0" and last["skipped"] == "7"
    assert table["total"]["skipped"] == 7 and table["total"]["saved"] == 0
    assert table["5"]["unreadable"] == 1 and table["0"]["found"] == 3  # the earlier outcome is reported
    assert (data / INDEX).read_bytes() == before


def test_map_renames_labels(photo_tree, tmp_path):
    data = tmp_path / "mapped"
    proc = run_collect("--from", str(photo_tree), "--data", str(data), "--quiet", "--map", "0=fist", "--map", "5=five")
    assert proc.returncode == 0, proc.stderr
    table, last = parse_summary(proc.stdout)
    assert list(table) == ["fist", "five", "total"]
    rows = index_rows(data)
    assert {r["label"] for r in rows} == {"fist", "five"}
    assert all(r["source"].startswith({"fist": "0/", "five": "5/"}[r["label"]]) for r in rows)
    assert sorted(p.name for p in (data / "crops").iterdir()) == ["fist", "five"]
    assert int(last["saved"]) == len(rows) >= 6


def test_a_reimport_that_would_relabel_saved_samples_is_refused_in_one_line_unless_asked(photo_tree, tmp_path):
    data = tmp_path / "mapped"
    maps = ["--map", "0=fist", "--map", "5=five"]
    assert run_collect("--from", str(photo_tree), "--data", str(data), "--quiet", *maps).returncode == 0
    rows = index_rows(data)
    before = [(data / name).read_bytes() for name in (INDEX, "dataset.json")]
    proc = run_collect("--from", str(photo_tree), "--data", str(data), "--quiet")  # the first import's --map forgotten
    line = error_line(proc.stderr)
    assert proc.returncode == 2 and f"would change {len(rows)} of the samples saved before" in line
    assert "label fist -> 0" in line and "--update-saved" in line
    assert [(data / name).read_bytes() for name in (INDEX, "dataset.json")] == before  # nothing touched
    # Asked: the fives become none, files and all, and nothing is detected again.
    proc = run_collect("--from", str(photo_tree), "--data", str(data), "--quiet", "--map", "0=fist", "--map", "5=none",
                       "--update-saved")
    assert proc.returncode == 0, proc.stderr
    _, last = parse_summary(proc.stdout)
    fives = [r["id"] for r in rows if r["label"] == "five"]
    assert (last["saved"], last["changed"], last["removed"]) == ("0", str(len(fives)), "0") and len(fives) >= 3
    assert {r["id"] for r in index_rows(data) if r["label"] == "none"} == set(fives)
    assert sorted(p.stem for p in (data / "crops" / "none").iterdir()) == sorted(fives)
    assert not any((data / "crops" / "five").iterdir())


@pytest.mark.parametrize("option", [["--map", "0=fist"], ["--review", "r.tsv"], ["--group-by", "^(.)"], ["--update-saved"],
                                    ["--retry-missed"], ["--workers", "2"]])
def test_import_options_on_a_live_recording_are_refused_in_one_line(option, tmp_path):
    proc = run_collect("--source", "sample", "--data", str(tmp_path / "live"), "--label", "a", "--headless", *option)
    line = error_line(proc.stderr)
    assert proc.returncode == 2 and option[0] in line and "--from DIR" in line
    assert not (tmp_path / "live").exists()  # refused before anything is made


def _bad_cases(tmp: Path, photo_tree: Path) -> list[tuple[str, list[str], str]]:
    busy = tmp / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine\n")
    bad_tree = tmp / "badtree"
    link(photo_tree / "0" / "996_pic00000.jpg", bad_tree / "a:b" / "996_pic00000.jpg")
    not_model = tmp / "notes.task"
    not_model.write_text("not a model\n")
    fake_bundle = tmp / "fake.task"  # passes the bundle check; MediaPipe cannot load it
    with zipfile.ZipFile(fake_bundle, "w") as bundle:
        bundle.writestr("hand_detector.tflite", b"not a model")
        bundle.writestr("hand_landmarks_detector.tflite", b"not a model")
    data = str(tmp / "new")
    return [
        *[(f"a bundle MediaPipe cannot load, {w} worker(s)", ["--from", str(photo_tree), "--data", data, "--workers", w,
                                                             "--hand-model", str(fake_bundle)], "could not load")
          for w in ("1", "2")],
        ("missing --from", ["--from", str(tmp / "nowhere"), "--data", data], "nowhere"),
        ("--map without =", ["--from", str(photo_tree), "--data", data, "--map", "0"], "FOLDER=LABEL"),
        ("--map to ../x", ["--from", str(photo_tree), "--data", data, "--map", "0=../x"], "'../x'"),
        ("--map of a missing folder", ["--from", str(photo_tree), "--data", data, "--map", "7=seven"], "7"),
        ("bad label folder name", ["--from", str(bad_tree), "--data", data], "'a:b'"),
        ("--workers 0", ["--from", str(photo_tree), "--data", data, "--workers", "0"], "--workers"),
        ("not a hand model, 2 workers", ["--from", str(photo_tree), "--data", data, "--workers", "2",
                                         "--hand-model", str(not_model)], "notes.task"),
        ("--data is someone's folder", ["--from", str(photo_tree), "--data", str(busy)], "not a dataset"),
        ("live source is a missing file", ["--source", str(tmp / "missing.mp4"), "--label", "a", "--headless",
                                           "--data", data], "missing.mp4"),
    ]


def test_bad_inputs_give_one_error_line_and_exit_2(photo_tree, tmp_path):
    for what, args, needle in _bad_cases(tmp_path, photo_tree):
        proc = run_collect(*args, "--quiet", timeout=60)
        assert proc.returncode == 2, (what, proc.returncode, proc.stderr[-1500:])
        line = error_line(proc.stderr)  # argparse's refusals come after its usage lines
        assert "error: " in line and needle in line, (what, line)
        assert "Traceback" not in proc.stderr and proc.stdout == "", what
        assert not (tmp_path / "new").exists(), f"{what}: a failed command left a dataset behind"
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["notes.txt"]


@pytest.fixture(scope="module")
def forty_photos(fingers_dir, tmp_path_factory) -> Path:
    """40 real photos, 20 each of fingers/1 and fingers/2, over several sessions."""
    root = tmp_path_factory.mktemp("forty")
    for label in ("1", "2"):
        photos = sorted((fingers_dir / label).glob("*.jpg"))
        for path in photos[:: max(1, len(photos) // 20)][:20]:
            link(path, root / label / path.name)
    assert sum(1 for _ in root.glob("*/*.jpg")) == 40
    return root


def test_ctrl_c_loses_nothing_and_a_rerun_completes_the_set(forty_photos, tmp_path, detector):
    data = tmp_path / "ds"
    args = [sys.executable, "-m", "pipeline.collect", "--from", str(forty_photos), "--data", str(data),
            "--workers", "1", "--quiet"]
    # SIGINT must raise KeyboardInterrupt even if whoever started pytest ignores it (background jobs).
    proc = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            index = data / INDEX
            if index.is_file() and index.read_bytes().count(b"\n") >= 6:  # header + 5 rows
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"import ended before the interrupt: {proc.returncode} {proc.stderr.read()[-800:]}"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (proc.returncode, err[-1500:])
    assert "interrupted" in err and "Traceback" not in err and out == ""
    # Every line of the index is a whole row whose two images exist.
    raw = (data / INDEX).read_text()
    assert raw.endswith("\n")
    with open(data / INDEX, newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == COLUMNS and len(lines) >= 6
    for values in lines[1:]:
        assert row_problem(values) is None
        for sub in ("crops", "large"):
            assert (data / sub / values[1] / f"{values[0]}.png").is_file()
    with open(data / "files.csv", newline="") as f:
        done_before = len(list(csv.reader(f)))
    assert done_before < 40

    again = run_collect("--from", str(forty_photos), "--data", str(data), "--workers", "1", "--quiet")
    assert again.returncode == 0, again.stderr
    table, last = parse_summary(again.stdout)
    assert int(last["skipped"]) == done_before and table["total"]["files"] == 40
    rows = index_rows(data)
    keys = [(r["source"], int(r["frame"]), int(r["hand"])) for r in rows]
    assert len(set(keys)) == len(keys), [k for k, n in Counter(keys).items() if n > 1]
    # The set is complete: exactly the hands MediaPipe finds in each photo.
    from pipeline.preprocess.sources import read_image

    expected = set()
    for path in sorted(forty_photos.glob("*/*.jpg")):
        n = len(detector.detect(read_image(path)))
        expected |= {(f"{path.parent.name}/{path.name}", 0, i) for i in range(n)}
    assert set(keys) == expected
    assert len({r["id"] for r in rows}) == len(rows)


def detection_workers(pid: int) -> list[int]:
    """The pids of ``pid``'s spawned worker processes (not multiprocessing's resource tracker)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    workers = []
    for child in map(int, out):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                workers.append(child)
    return workers


def test_a_detection_worker_killed_mid_import_loses_no_hand(forty_photos, tmp_path, detector):
    # As the OOM killer would: SIGKILL one of the two detection processes once rows are being saved. The
    # import replaces it, sends its files again and ends as an import never interrupted would.
    data = tmp_path / "ds"
    args = [sys.executable, "-m", "pipeline.collect", "--from", str(forty_photos), "--data", str(data),
            "--workers", "2", "--quiet"]
    proc = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None and killed is None:
            index = data / INDEX
            workers = detection_workers(proc.pid)
            if index.is_file() and index.read_bytes().count(b"\n") >= 2 and workers:
                killed = workers[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.01)
        assert killed is not None, f"no worker to kill: {proc.poll()} {proc.stderr.read()[-800:] if proc.poll() is not None else ''}"
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-1500:]
    table, last = parse_summary(out)
    assert table["total"]["files"] == 40 and table["total"]["unreadable"] == 0, out
    from pipeline.preprocess.sources import read_image

    expected = set()
    for path in sorted(forty_photos.glob("*/*.jpg")):
        expected |= {(f"{path.parent.name}/{path.name}", 0, i) for i in range(len(detector.detect(read_image(path))))}
    rows = index_rows(data)
    assert sorted((r["source"], int(r["frame"]), int(r["hand"])) for r in rows) == sorted(expected)
