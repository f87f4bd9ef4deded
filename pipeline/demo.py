"""``python -m pipeline.demo``: the live window, each hand's gesture and its Grad-CAM overlaid on the hand.

    python -m pipeline.demo                                          # webcam 0, the shipped model (pipeline/assets/fingers.pt)
    python -m pipeline.demo --source sample                          # no camera: the shipped sample clip
    python -m pipeline.demo --source clip.mp4 --headless --out annotated.mp4

At the end (also after a window run) it prints three lines: ``frames=… hand_frames=… hand_share=… fps=…``,
``ms detect=… crop=… classify=… explain=… draw=…`` and ``labels <label>=<share of frames> …``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from pipeline.cli_options import add_hand_options, add_max_frames_option, add_model_option, command_name, probability
from pipeline.errors import run_command
from pipeline.explainers.quality import CAM_METHODS, DEFAULT_EXPLAINER
from pipeline.lenet.checkpoint import load_model
from pipeline.ui.window import screen_problem

KEYS_HELP = """keys in the window:
  c  heat map on / off         n  next layer (input, conv1, act1, conv2, act2, ...)
  s  saliency in the inset     i  crop insets on / off       l  landmarks on / off
  m  mirror the view           space  pause / resume         p  save a screenshot (--screenshots)
  q or Esc  quit
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command_name("demo"),
        description="Live gesture recognition with Grad-CAM: MediaPipe finds the hands, each hand becomes the crop "
                    "the model was trained on, the model names the gesture (smoothed per hand across frames), and "
                    "the Grad-CAM heatmap of that label is drawn back onto the hand. A hand below --threshold shows "
                    "no gesture and no heatmap.",
        epilog=KEYS_HELP + "\nexamples:\n"
               "  python -m pipeline.demo\n"
               "  python -m pipeline.demo --source sample\n"
               "  python -m pipeline.demo --source clip.mp4 --headless --out runs/demo/annotated.mp4\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", metavar="0|FILE|DIR|sample",
                        help="webcam index, video file, image file, folder of images, or 'sample' (the shipped clip). "
                             "Default: webcam 0, or the sample clip when there is no camera; with no screen either, the "
                             "demo runs headless and writes its video under runs/demo/")
    add_model_option(parser)
    parser.add_argument("--layer", default=None, metavar="NAME",
                        help=f"heat-map layer: a conv or activation layer of the model (conv1, act2, ...), or input for "
                             f"hirescam-rel; the n key steps through them (default: {DEFAULT_EXPLAINER[1]} for "
                             f"{DEFAULT_EXPLAINER[0]}, chosen on validation by benchmarks/explain_quality.py; the last conv "
                             "layer for the other methods)")
    parser.add_argument("--cam", choices=CAM_METHODS, default=DEFAULT_EXPLAINER[0],
                        help=f"heat-map method (default: {DEFAULT_EXPLAINER[0]}: HiResCAM relative to a black crop; "
                             "'gradcam' is plain Grad-CAM, which lights the masked background)")
    parser.add_argument("--threshold", type=probability, default=0.5, metavar="P",
                        help="smoothed confidence below which a hand shows no gesture (default: 0.5)")
    add_hand_options(parser)
    parser.add_argument("--low-cpu", action="store_true",
                        help="wait for MediaPipe by sleeping, not polling: about one core less, and on some "
                             "machines (virtual ones) a few FPS less")
    parser.add_argument("--headless", action="store_true", help="no window: process every frame, print the summary")
    parser.add_argument("--out", metavar="FILE.mp4", help="also write the annotated frames to this video")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    add_max_frames_option(parser)
    parser.add_argument("--screenshots", default="runs/demo", metavar="DIR",
                        help="where the p key saves screenshots (default: runs/demo)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from pipeline.live.compute import LivePipeline, tune_torch_for_live
    from pipeline.preprocess.detector_process import DetectorDied
    from pipeline.ui.demo_session import run_demo

    args = build_parser().parse_args(argv)
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    live = LivePipeline(load_model(args.model), threshold=args.threshold, method=args.cam)
    headless, out = args.headless, args.out
    if args.source is None and not headless and screen_problem():  # the first command on a server or in CI
        headless = True
        out = out or f"runs/demo/demo-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
        say(f"no screen ({screen_problem()}): running without a window; the annotated video goes to {out}")
    tune_torch_for_live()
    try:
        summary, times, fps = run_demo(args.source, live, args.layer, hand_model=args.hand_model,
                                       num_hands=args.num_hands, headless=headless, out=out, max_frames=args.max_frames,
                                       screenshots=args.screenshots, spin=not args.low_cpu, force=args.force, say=say)
    except DetectorDied as e:  # before the first frame: nothing was shown or written
        say(f"error: {e}")
        return 1
    for line in summary.lines(times, fps):
        print(line)
    if out:
        print(f"wrote {out}")
    if summary.failed:
        say(f"error: {summary.failed}; stopped after {summary.frames} frames" + (f", the video so far is in {out}" if out else ""))
        return 1
    if summary.interrupted:
        say("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
