"""Soak: the demo's whole path for a long time. Does memory grow, does it slow down, does the detector fail?

The shipped sample clip, looped (timestamps keep rising), through exactly what ``python -m pipeline.demo
--headless --out`` runs: MediaPipe in its own process, crops, one forward for label and Grad-CAM, tracks,
drawing, and the annotated video written to a temporary file.

    python benchmarks/soak.py [--frames 10000] [--model PT]

RSS is the demo process plus its detector process, read from /proc after a warm-up of ``--warmup`` frames
and at the end; FPS is over the first and the last ``--window`` frames. The detector is never restarted
by the demo (a dead detector ends the run with one line), so ``detector_restarts`` counts the runs it
took to reach ``--frames``: 0 when one run went the whole way.
Last line: ``frames=... rss_start_mb=... rss_end_mb=... rss_growth_mb=... fps_first=... fps_last=... detector_restarts=...``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not

from pipeline.lenet.checkpoint import load_model  # noqa: E402
from pipeline.live.compute import LivePipeline, tune_torch_for_live  # noqa: E402
from pipeline.preprocess.detector_process import DetectorProcess  # noqa: E402
from pipeline.preprocess.sources import Frame, VideoSource  # noqa: E402
from pipeline.resources import SAMPLE_CLIP, asset  # noqa: E402
from pipeline.ui.demo_session import VideoOut, ViewState, run_session  # noqa: E402


def looped(path: Path, frames: int) -> Iterator[Frame]:
    """The clip again and again, ``frames`` frames in all, its timestamps rising across loops."""
    offset, n = 0, 0
    while n < frames:
        last = 0
        with VideoSource(path) as video:
            for frame in video:
                if n >= frames:
                    return
                yield Frame(frame.image, n, offset + frame.timestamp_ms, frame.source)
                last = frame.timestamp_ms
                n += 1
        offset += last + 40


def rss_mb(pids: list[int]) -> float:
    """Resident memory of these processes, in MB (from /proc)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    live = LivePipeline(load_model(args.model))
    tune_torch_for_live()
    ticks: list[float] = []
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, DetectorProcess(looped(asset(SAMPLE_CLIP), args.frames)) as frames:
        pids = [os.getpid(), frames._process.pid]

        def timed() -> Iterator:
            for k, item in enumerate(frames):
                if k == args.warmup:
                    rss["start"] = rss_mb(pids)
                ticks.append(time.perf_counter())
                if k % 1000 == 0:
                    print(f"frame {k}: {rss_mb(pids):.0f} MB", flush=True)
                yield item

        video = VideoOut(Path(tmp) / "soak.mp4", fps=25)
        try:
            summary, _, _ = run_session(timed(), live, ViewState(live.default_layer), video=video)
        finally:
            video.close()
        rss["end"] = rss_mb(pids)
    w = min(args.window, len(ticks) // 2)
    fps_first = (w - 1) / (ticks[w - 1] - ticks[0])
    fps_last = (w - 1) / (ticks[-1] - ticks[-w])
    restarts = 0 if not summary.failed and summary.frames == args.frames else 1
    print(f"frames={summary.frames} rss_start_mb={rss['start']:.1f} rss_end_mb={rss['end']:.1f} "
          f"rss_growth_mb={rss['end'] - rss['start']:.1f} fps_first={fps_first:.1f} fps_last={fps_last:.1f} "
          f"detector_restarts={restarts}")


if __name__ == "__main__":
    main()
