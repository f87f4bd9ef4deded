"""Training in a process of its own: its events, a real run folder, the validation mistakes, and its crashes."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace

import numpy as np

from helpers import REPO, fill_dataset
from pipeline.lenet.checkpoint import load_model
from pipeline.training.background import BackgroundTraining, Epoch, Failed, Finished, Started, confusions, died
from pipeline.training.loop import TrainConfig

FINGERS = REPO / "data" / "fingers"


def follow(job: BackgroundTraining, seconds: float = 180.0, until=None) -> list:
    """Poll ``job`` until it ends (or ``until(events)``); the events in order."""
    events, deadline = [], time.monotonic() + seconds
    while job.running and time.monotonic() < deadline and not (until and until(events)):
        events += job.poll()
        time.sleep(0.05)
    assert time.monotonic() < deadline, f"no end within {seconds} s: {events}"
    return events


def digest(root) -> str:
    """One hash of a dataset's index and every crop and large render, names included."""
    h = hashlib.sha256((root / "index.csv").read_bytes())
    for png in sorted(root.glob("*/*/*.png")):
        h.update(str(png.relative_to(root)).encode() + png.read_bytes())
    return h.hexdigest()


def test_a_background_run_reports_each_epoch_and_its_validation_mistakes(tmp_path, fingers):
    job = BackgroundTraining(FINGERS, tmp_path / "run", config=replace(TrainConfig(), epochs=3))
    events = follow(job)
    assert isinstance(events[0], Started) and events[0].samples == len(fingers)
    assert events[0].split.startswith("validation by session (")
    assert [(e.epoch, e.epochs) for e in events if isinstance(e, Epoch)] == [(1, 3), (2, 3), (3, 3)]
    done = events[-1]
    assert isinstance(done, Finished) and job.result is done and not job.running
    model = load_model(done.out / "model.pt")
    assert model.labels == fingers.label_names and 0 < done.val_accuracy <= 1
    assert (done.out / "log.txt").read_text().strip().endswith(f"test_accuracy={done.test_accuracy:.4f}")
    # The mistakes are validation samples of the true class, answered the other class by the saved model.
    ids = fingers.index["id"].to_numpy()
    assert done.confusions, "three epochs leave mistakes on validation"
    for c in done.confusions:
        assert 0 < c.count <= c.total and 0 < len(c.ids) <= min(4, c.count)
        for sample_id in c.ids:
            at = int(np.flatnonzero(ids == sample_id)[0])
            assert fingers.label_names[int(fingers.labels[at])] == c.true
            logits = model.network(fingers.images[at:at + 1].float() / 255.0)
            assert model.labels[int(logits.argmax())] == c.predicted


def test_confusions_rank_by_share_of_the_true_class():
    truth = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    predicted = np.array([1, 1, 0, 0, 0, 1, 0, 2, 2, 2])
    got = confusions(truth, predicted, ["a", "b", "c"], np.array([f"{i:06d}" for i in range(10)]))
    assert [(c.true, c.predicted, c.count, c.total, c.ids) for c in got] == [
        ("a", "b", 2, 4, ("000000", "000001")), ("b", "a", 1, 2, ("000004",)), ("c", "a", 1, 4, ("000006",))]


def test_a_killed_training_process_is_one_line_and_the_data_is_intact(tmp_path):
    before = digest(FINGERS)
    job = BackgroundTraining(FINGERS, tmp_path / "run")
    follow(job, until=lambda events: any(isinstance(e, Started) for e in events))
    job.process.kill()
    events = follow(job)
    assert events[-1] == Failed("the training process died (killed by signal 9 (SIGKILL)); the recorded data is intact")
    assert digest(FINGERS) == before
    assert died(1) == "exit code 1"


def test_a_refused_run_is_its_one_line(tmp_path, samples):
    with fill_dataset(tmp_path / "one", samples) as writer:  # two labels; drop one so a single class is left
        for row in writer.rows():
            if row["label"] == "palm":
                writer.remove(row["id"])
    job = BackgroundTraining(tmp_path / "one", tmp_path / "run")
    events = follow(job)
    assert len(events) == 1 and isinstance(events[0], Failed) and "\n" not in events[0].message
    assert events[0].message.startswith("training failed: ") and "only one class (five)" in events[0].message


def test_a_sample_deleted_while_the_run_reads_makes_it_read_again(tmp_path, samples, monkeypatch):
    from pipeline.data import load
    from pipeline.training.background import load_recording

    writer = fill_dataset(tmp_path / "ds", samples)
    read = load._render
    calls = []

    def delete_then_read(root, rows, *args, **kwargs):  # the window deletes a sample after the index was read
        if not calls:
            writer.remove(rows[3]["id"])
        calls.append(len(rows))
        return read(root, rows, *args, **kwargs)

    monkeypatch.setattr(load, "_render", delete_then_read)
    try:
        data, spec = load_recording(tmp_path / "ds")
    finally:
        writer.close()
    assert calls == [12, 11] and len(data) == 11 and spec.paths == (str(tmp_path / "ds"),)


def test_a_killed_run_leaves_nothing_for_the_resource_tracker_to_warn_about(tmp_path):
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import time
        from pipeline.training.background import BackgroundTraining, Started
        job = BackgroundTraining({str(FINGERS)!r}, {str(tmp_path / "run")!r})
        seen = []
        while not any(isinstance(e, Started) for e in seen):
            seen += job.poll()
            time.sleep(0.05)
        time.sleep(1.0)  # into the first epoch: tqdm and torch are up
        job.process.kill()
        while job.running:
            job.poll()
            time.sleep(0.05)
        print(job.result.message)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "the training process died (killed by signal 9 (SIGKILL)); the recorded data is intact"
    assert "leaked" not in done.stderr and "resource_tracker" not in done.stderr, done.stderr
