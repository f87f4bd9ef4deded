"""Does training in the background stall the studio's camera view? Its frame rate idle against while training.

    python benchmarks/studio_fps.py                      # the shipped clip, data/fingers, 2 rounds
    python benchmarks/studio_fps.py --window             # shown in a real window (a screen, or Xvfb)

The studio (:class:`pipeline.ui.studio_session.Studio`) runs its own loop on a clip played again and
again as the camera, with MediaPipe in its process, in the recording view, drawing every frame, with
no pacing: its frame rate is how fast it can go, the stricter figure (a camera would cap both phases
at its own rate). Each round measures ``--idle`` seconds with nothing training, then presses ``t``:
a training run of a copy of ``--data`` (the normal recipe, in another process on idle CPU time, one
torch thread) and measures until it ends. ``--paced`` plays the clip in real time instead, as the
window does: the frame rate is then capped by the clip's, and ``train_s`` is what a user waits.
The goal is ``fps_training >= 0.8 x fps_idle``; the figures are medians over ``--rounds``. Training
takes the CPU time the view leaves, so on a 2-core machine the figures mean what they say only when
other programs leave the cores free (``others``: cores other programs kept busy). Unpaced, the view
leaves little, so training takes several times longer than paced.

Last line: ``fps_idle=... fps_training=... ratio=... train_s=...``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from import_speed import machine_busy_seconds  # noqa: E402  (this folder)

from pipeline.data.store import DatasetWriter, read_meta  # noqa: E402
from pipeline.preprocess.detector_process import DetectorProcess  # noqa: E402
from pipeline.preprocess.sources import looped, open_source  # noqa: E402
from pipeline.resources import SAMPLE_SOURCE  # noqa: E402
from pipeline.ui.studio_session import Studio  # noqa: E402
from pipeline.ui.window import Pacer, Window  # noqa: E402


def measure(frames, studio: Studio, window: Window | None, seconds: float, training: bool,
            pacer: Pacer | None = None) -> tuple[float, float]:
    """``(fps, others)`` of the studio's loop for ``seconds``, or while its training runs (``training``)."""
    count, start, busy = 0, time.perf_counter(), machine_busy_seconds()
    cpu = time.process_time()
    while True:
        frame, hands, detect_ms = next(frames)
        view = studio.step(frame, hands, detect_ms, frame.timestamp_ms / 1000)
        wait = pacer.delay_ms(frame.timestamp_ms, time.monotonic()) if pacer else 1
        if window is not None:
            window.show(view, wait)
        elif pacer is not None:
            time.sleep(wait / 1000)
        count += 1
        elapsed = time.perf_counter() - start
        job = studio.state.training
        if (training and not (job is not None and job.running)) or (not training and elapsed >= seconds):
            break
    # Cores busy with other programs: all busy time, less ours (this process; the children are estimated by
    # what the phase's own work needs: one core for MediaPipe, one for training when it runs).
    ours = (time.process_time() - cpu) + elapsed * (1 + training)
    return count / elapsed, max(0.0, (machine_busy_seconds() - busy - ours) / elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", default=SAMPLE_SOURCE, help="the clip that stands in for the camera (default: the shipped one)")
    parser.add_argument("--data", default=str(ROOT / "data" / "fingers"), help="the dataset trained on, copied first")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle", type=float, default=15.0, help="seconds measured with nothing training (default: 15)")
    parser.add_argument("--window", action="store_true", help="show the frames in a window")
    parser.add_argument("--paced", action="store_true",
                        help="play the clip in real time, as the studio's window does (a camera's pace): then the "
                             "question is whether training keeps that pace, and how long it takes")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(args.data, data, ignore=shutil.ignore_patterns(".cache", ".lock"))
        meta = read_meta(data)
        idle, training, train_s = [], [], []
        with open_source(args.video) as src, DetectorProcess(looped(src), video=True) as frames, \
                DatasetWriter(data, meta.settings) as writer:
            window = Window("studio benchmark") if args.window else None
            studio = Studio(writer, list(meta.labels), "benchmark", Path(tmp) / "runs", Path(tmp) / "shots",
                            say=lambda line: None)
            items = iter(frames)
            pacer = Pacer() if args.paced else None
            measure(items, studio, window, 3.0, False, pacer)  # warm-up: MediaPipe's first frames are slow
            for k in range(args.rounds):
                fps_idle, others_idle = measure(items, studio, window, args.idle, False, pacer)
                started = time.perf_counter()
                studio.train()
                fps_train, others_train = measure(items, studio, window, 0.0, True, pacer)
                train_s.append(time.perf_counter() - started)
                result = studio.state.training.result
                studio.key(ord("r"), 0.0, None, 0)  # back to the recording view: both phases draw the same
                idle.append(fps_idle)
                training.append(fps_train)
                print(f"round {k + 1}: idle {fps_idle:.1f} FPS (others {others_idle:.2f} cores), training "
                      f"{fps_train:.1f} FPS (others {others_train:.2f}) for {train_s[-1]:.0f} s: "
                      f"{type(result).__name__}", flush=True)
            if window is not None:
                window.close()
    fps_idle, fps_training = statistics.median(idle), statistics.median(training)
    print(f"fps_idle={fps_idle:.1f} fps_training={fps_training:.1f} ratio={fps_training / fps_idle:.3f} "
          f"train_s={statistics.median(train_s):.0f}")


if __name__ == "__main__":
    main()
