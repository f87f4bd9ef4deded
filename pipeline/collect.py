"""``python -m pipeline.collect``: record gestures live, or import labelled photos and videos.

Record from a webcam or a video, in a window::

    python -m pipeline.collect --source 0 --data data/mine --label fist --label palm

Record, train in the background and see the new model live, in one window (the studio)::

    python -m pipeline.collect --source 0 --data data/mine --label fist --label palm --studio

Import a folder whose subfolders are labels (photos or videos inside)::

    python -m pipeline.collect --from ../shared/data/fingers --data data/fingers --workers 2 \\
        --map 0=fist --map 1=one --map 2=two --map 3=three --map 4=four --map 5=five
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from pipeline.cli_options import (
    add_crop_options,
    add_engine_options,
    add_hand_options,
    add_max_frames_option,
    at_least,
    command_name,
    crop_settings_from,
    engine_from,
)
from pipeline.data.folder_import import ImportOptions, detection_rate, import_folder
from pipeline.data.review import Review
from pipeline.data.store import DatasetWriter
from pipeline.errors import UserError, run_command
from pipeline.labels import NONE_LABEL, check_label
from pipeline.preprocess.hands import check_landmarker
from pipeline.preprocess.photo_folders import GroupRule, parse_label_map, scan

KEYS_HELP = """keys in the recording window:
  1-9, 0        pick label 1..10;  [ / ]  previous / next label (any number of labels)
  space         start / stop recording (after --countdown seconds)
  u             undo the last saved sample
  q or Esc      quit (everything saved stays saved)

more keys in the studio (--studio):
  t             train on what is recorded, in the background; the window goes live with the new model
  r / l         the recording view / the live view (labels and heat maps of the newest model)
  v             review the current label's crops, newest first: a d w s select, x or a click deletes
                (to trash/), z undoes, [ ] another label, v back (r: to the recording view)
  c             heat map on / off (live view)
  p             save a screenshot (--screenshots)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command_name("collect"),
        description="Record hand gestures into a dataset (live, from a webcam or video), or import labelled "
                    "photos and videos (--from DIR). Every hand becomes a crop made by the same crop code "
                    "that train, evaluate and demo use; the dataset keeps one row per crop in index.csv.",
        epilog=KEYS_HELP + "\nexamples:\n"
               "  python -m pipeline.collect --source 0 --data data/mine --label fist --label palm\n"
               "  python -m pipeline.collect --source 0 --data data/mine --label fist --label palm --studio\n"
               "  python -m pipeline.collect --source clip.mp4 --data data/mine --label five --label fist --studio \\\n"
               "      --headless --countdown 0 --keys 'space@0.5,space@6,2@6.5,space@7,space@9,t,wait-train,p@2,q'\n"
               "  python -m pipeline.collect --from photos/ --data data/mine --workers 2\n"
               "  python -m pipeline.collect --from photos/ --data data/mine --engine ray --address HEAD:6379\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, metavar="DIR", help="dataset folder (created if new; appended to if it exists)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--source", metavar="0|FILE|DIR|sample",
                      help="live: webcam index, video file, image file, folder of images, or 'sample' (the shipped "
                           "clip) (default: 0)")
    mode.add_argument("--from", dest="from_dir", metavar="DIR",
                      help="import: DIR/LABEL/ holds photos or videos of each label")
    live = parser.add_argument_group("live recording")
    live.add_argument("--label", action="append", default=[], metavar="NAME",
                      help="a label to record, in key order; repeat for more (no limit)")
    parser.add_argument("--group", metavar="NAME",
                        help="the group (session or person) every sample of this run is split by "
                             "(default: live-DATE-TIME live; for an import, see --group-by)")
    live.add_argument("--stride", type=at_least(1), default=None, metavar="N",
                      help="save every N-th frame while recording, so near-duplicates are not all kept "
                           "(default: 3 live, 5 for imported videos)")
    add_max_frames_option(live)
    live.add_argument("--countdown", type=at_least(0, float), default=3.0, metavar="S", help="seconds before recording starts (default: 3)")
    live.add_argument("--headless", action="store_true",
                      help="no window: record every stride-th frame of the source under the first --label "
                           "(with --studio: run the --keys script without a window)")
    studio = parser.add_argument_group("studio (record, train and see it live in one window)")
    studio.add_argument("--studio", action="store_true",
                        help="the studio: t trains on what is recorded while the camera goes on, then the window shows "
                             f"the new model live; '{NONE_LABEL}' joins the labels. A video file plays again and again")
    studio.add_argument("--keys", metavar="SCRIPT",
                        help="press keys from a script instead of by hand, e.g. 'space@1.0,space@4.0,t,wait-train,q': "
                             "KEY or KEY@SECONDS of the source's clock (from the start, or from the last wait-train), "
                             "wait-train; keys are characters or space, esc, enter, tab, backspace")
    studio.add_argument("--runs", default="runs", metavar="DIR",
                        help="where the studio's training runs go, as runs/studio-DATE-TIME (default: runs)")
    studio.add_argument("--screenshots", default="runs/studio", metavar="DIR",
                        help="where the p key saves screenshots (default: runs/studio)")
    imp = parser.add_argument_group("import")
    imp.add_argument("--map", action="append", default=[], metavar="FOLDER=LABEL",
                     help="name a folder's label, e.g. 0=fist (default: the folder name)")
    imp.add_argument("--review", metavar="TSV", help="a label review to apply: FILE<TAB>LABEL lines that relabel or "
                     "drop files or video frames (see data/README.md)")
    imp.add_argument("--group-by", metavar="REGEX",
                     help="a file's group is what the (capture groups) of REGEX match in its name, e.g. '^(Set\\d)_' "
                          "(default: the session, the name's prefix before _pic, as in 996_pic00012.jpg)")
    imp.add_argument("--update-saved", action="store_true",
                     help="give the samples an earlier import of this dataset saved the label and group this import "
                          "gives them (after a change to --review, --map or --group-by), move the ones the review "
                          "drops to DATA/trash, and bring back from there the ones an earlier review dropped that this "
                          "one keeps; without it such a change is refused")
    imp.add_argument("--retry-missed", action="store_true",
                     help="search again the photos an earlier import of this dataset found no hand in, and add the "
                          "hands found (a photo without a hand is now searched again inside a black border, which "
                          "finds most close-ups; earlier imports did not)")
    add_engine_options(parser, "import detection")
    add_hand_options(parser)
    add_crop_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run_import(args: argparse.Namespace) -> int:
    settings = crop_settings_from(args)
    if args.group and args.group_by:
        raise UserError("give --group NAME (one group for every file) or --group-by REGEX, not both")
    grouping = (GroupRule("constant", args.group) if args.group else
                GroupRule("regex", args.group_by) if args.group_by else GroupRule())
    options = ImportOptions(parse_label_map(args.map), Review.read(args.review) if args.review else Review(), grouping,
                            engine_from(args), args.hand_model, args.num_hands, args.stride or 5,
                            args.retry_missed, args.update_saved)
    # A bad --from, --map, --review, --group-by or --hand-model fails before --data is created.
    options.review.check_files({t.relative for t in scan(args.from_dir, options.label_map, grouping)})
    check_landmarker(args.hand_model)
    start = time.perf_counter()
    with DatasetWriter(args.data, settings) as writer:
        try:
            summary = import_folder(args.from_dir, writer, options, progress=not args.quiet)
        except KeyboardInterrupt:
            print(f"interrupted: every sample saved so far is in {args.data}; run the same command again to continue",
                  file=sys.stderr)
            return 130
    seconds = time.perf_counter() - start
    for warning in summary.warnings:
        print(warning, file=sys.stderr)
    print(summary.table())
    if summary.changed or summary.removed or summary.restored:
        print(f"samples saved before: {summary.changed} given the label or group this import gives them, "
              f"{summary.removed} dropped by the review (moved to {args.data}/trash), {summary.restored} that an "
              f"earlier review dropped back from the trash (and given this import's label and group)")
    print(f"saved={summary.total('saved')} skipped={summary.total('skipped')} changed={summary.changed} "
          f"removed={summary.removed} restored={summary.restored} hand_rate={detection_rate(summary):.3f} seconds={seconds:.1f} data={args.data}")
    return 0


def live_group() -> str:
    """The group of a live session when --group names none: ``live-DATE-TIME``."""
    return time.strftime("live-%Y%m%d-%H%M%S")


def run_live(args: argparse.Namespace) -> int:
    from pipeline.ui.collect_session import check_display, record_live

    labels = [check_label(name) for name in args.label]
    if not labels:
        raise UserError("name at least one gesture to record with --label NAME (repeat for more)")
    # Check what can be checked before the dataset folder is created (and the source opened).
    source = args.source or "0"
    check_landmarker(args.hand_model)
    if not args.headless:
        check_display()
    group = args.group or live_group()
    result = record_live(source, args.data, crop_settings_from(args), labels, group, hand_model=args.hand_model,
                         num_hands=args.num_hands, stride=args.stride or 3, countdown=args.countdown,
                         headless=args.headless, max_frames=args.max_frames)
    if result.ended_early:
        print(result.ended_early, file=sys.stderr)
    if result.interrupted:
        print(f"interrupted: every sample saved so far is in {args.data}", file=sys.stderr)
    print(" ".join(f"{label}={n}" for label, n in result.counts.items()) + f" group={group} data={args.data}")
    return 130 if result.interrupted else 0


def run_studio(args: argparse.Namespace) -> int:
    from pipeline.ui.keyscript import KeyScript, parse_keys
    from pipeline.ui.studio_session import open_studio

    labels = [check_label(name) for name in args.label]
    if not [la for la in labels if la != NONE_LABEL]:
        raise UserError("name the gestures to record with --label NAME (repeat for more; none is added by itself)")
    if args.headless and not args.keys:
        raise UserError("--studio --headless needs a --keys script (with no window, nobody presses keys)")
    script = KeyScript(parse_keys(args.keys)) if args.keys else None
    source = args.source or "0"
    check_landmarker(args.hand_model)  # the screen is checked next, before the source opens
    group = args.group or live_group()
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    result = open_studio(source, args.data, crop_settings_from(args), labels, group, hand_model=args.hand_model,
                         num_hands=args.num_hands, stride=args.stride or 3, countdown=args.countdown,
                         headless=args.headless, keys=script, runs=args.runs, screenshots=args.screenshots, say=say)
    if result.failed:
        say(f"error: {result.failed}")
    for line in result.refused:
        say(f"t started no run: {line}")
    if result.stopped:
        say(result.stopped)
    if result.interrupted:
        say(f"interrupted: every sample saved so far is in {args.data}")
    print(" ".join(f"{label}={n}" for label, n in result.counts.items()) + f" group={group} data={args.data}")
    if result.live is not None and result.live.frames:
        print(f"live frames={result.live.frames} " + " ".join(f"{k}={v:.3f}" for k, v in result.live.shares().items()))
    print(f"runs={len(result.runs)} failed={len(result.failures)}" +
          (f" model={result.runs[-1].out / 'model.pt'} val_accuracy={result.runs[-1].val_accuracy:.4f}" if result.runs else ""))
    # A script that did not get what it asked for (a run that failed, a t that started none) fails.
    scripted_miss = bool(args.keys) and bool(result.failures or result.refused)
    return 130 if result.interrupted else 1 if result.failed or scripted_miss else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.studio and args.from_dir:
        raise UserError("--studio records live (--source); import with --from DIR without it")
    if args.keys and not args.studio:
        raise UserError("--keys scripts the studio; add --studio")
    if args.max_frames and (args.studio or args.from_dir):
        raise UserError("--max-frames stops a live recording; an import ends with its folder, the studio with its "
                        "q key (or the --keys script's)")
    if args.from_dir:
        return run_import(args)
    import_only = (("--engine", args.engine != "local"), ("--address", args.address), ("--workers", args.workers),
                   ("--map", args.map), ("--review", args.review), ("--group-by", args.group_by),
                   ("--update-saved", args.update_saved), ("--retry-missed", args.retry_missed))
    given = [name for name, value in import_only if value]
    if given:
        raise UserError(f"{', '.join(given)}: for imports (--from DIR); a live recording runs here and takes --label "
                        "and --group")
    return run_studio(args) if args.studio else run_live(args)


if __name__ == "__main__":
    sys.exit(run_command(main))
