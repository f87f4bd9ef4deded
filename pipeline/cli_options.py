"""Argparse options shared by several commands (data, models, crop settings, hand model), so each is defined once."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from pipeline.data.spec import DataSpec
from pipeline.engines import ENGINES, Engine
from pipeline.errors import UserError
from pipeline.preprocess.crops import FILLS, MASKS, MIRRORS, CropSettings
from pipeline.preprocess.hands import HAND_MODEL_ENV

#: How usage lines name a command: as ``python -m pipeline.NAME`` runs it, or as the ``handcam`` dispatcher does
#: (:func:`name_commands`).
_COMMAND_NAME = ["python -m pipeline.{}"]


def command_name(name: str) -> str:
    """What a command's usage line calls it (argparse's ``prog``), e.g. ``python -m pipeline.demo``."""
    return _COMMAND_NAME[0].format(name)


def name_commands(pattern: str) -> None:
    """Make :func:`command_name` give ``pattern.format(NAME)``, e.g. ``"handcam {}"`` for the dispatcher."""
    _COMMAND_NAME[0] = pattern


def at_least(low: float, kind: type = int):
    """An argparse ``type``: a number of ``kind`` that is at least ``low`` (``--epochs 0`` is refused by argparse).

    ``nan`` and ``inf`` are refused too: no setting of ours means anything with them (a NaN learning rate trains
    NaN weights).
    """
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low:g}, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def positive(text: str) -> float:
    """An argparse ``type``: a number above 0 (a learning rate, a noise level)."""
    value = at_least(0.0, float)(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def probability(text: str) -> float:
    """An argparse ``type``: a number from 0 to 1 (a threshold)."""
    value = at_least(0.0, float)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def augment_item(text: str) -> tuple[str, float]:
    """An argparse ``type`` for ``--augment KEY=VALUE``: one AugmentConfig setting
    (:func:`~pipeline.training.augment.augment_setting`)."""
    from pipeline.training.augment import augment_setting  # torch: only when the option is given

    try:
        return augment_setting(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


#: Where ``--dataset NAME`` looks (relative to the working folder): the shared data beside a checkout.
PUBLIC_PLACES = {"mnist": "../shared/data/mnist", "signmnist": "../shared/data/signmnist/sign_mnist_test.csv.gz"}


def add_data_options(parser: argparse.ArgumentParser, default_data: str | None = None) -> None:
    """``--data DIR`` (repeatable), ``--mnist DIR`` or ``--signmnist CSV``: what to train or study on."""
    g = parser.add_argument_group("data (one kind)")
    default = f" (default: {default_data})" if default_data else ""
    g.add_argument("--data", action="append", metavar="DIR",
                   help=f"a dataset folder made by collect; repeat for several at once{default}")
    g.add_argument("--mnist", metavar="DIR", help="MNIST: the folder holding its idx files")
    g.add_argument("--signmnist", metavar="CSV", help="Sign Language MNIST: its Kaggle CSV (label,pixel1..pixel784)")
    g.add_argument("--dataset", choices=PUBLIC_PLACES, metavar="NAME",
                   help="a public set where this project's shared data keeps it, relative to the working folder: "
                        + ", ".join(f"{k} ({v})" for k, v in PUBLIC_PLACES.items()) + "; elsewhere, --mnist DIR or --signmnist CSV")
    parser.set_defaults(default_data=default_data)


def data_spec_from(args: argparse.Namespace) -> DataSpec:
    """The :class:`DataSpec` of :func:`add_data_options`; a missing path is one line naming it."""
    chosen = [(kind, paths) for kind, paths in (("hands", args.data), ("mnist", args.mnist and [args.mnist]),
                                                ("signmnist", args.signmnist and [args.signmnist])) if paths]
    if getattr(args, "dataset", None):
        place = PUBLIC_PLACES[args.dataset]
        if not Path(place).exists():
            option = "--mnist DIR" if args.dataset == "mnist" else "--signmnist CSV"
            raise UserError(f"--dataset {args.dataset}: not found at {place}; pass its path with {option}")
        chosen.append((args.dataset, [place]))
    if len(chosen) > 1:
        raise UserError("give one kind of data: --data DIR (one or more), --mnist DIR, --signmnist CSV or --dataset NAME")
    if not chosen:
        if not args.default_data:
            raise UserError("no data given: pass --data DIR (a dataset made by collect), --mnist DIR, --signmnist CSV "
                            "or --dataset mnist|signmnist")
        chosen = [("hands", [args.default_data])]
    kind, paths = chosen[0]
    for path in paths:
        if not Path(path).exists():
            option = {"hands": "--data", "mnist": "--mnist", "signmnist": "--signmnist"}[kind]
            raise UserError(f"{path}: no such {'file' if kind == 'signmnist' else 'folder'} ({option}); check the path")
    return DataSpec(kind, tuple(paths))


def add_model_option(parser: argparse.ArgumentParser, digits: bool = False) -> None:
    """``--model``: the gesture model (a checkpoint written by train); ``digits``: MNIST defaults to the digit model."""
    default = "the shipped model, fist one two three four five none" + ("; for MNIST the shipped digit model" if digits else "")
    parser.add_argument("--model", metavar="PT", help=f"model checkpoint written by train (default: {default})")


def add_hand_options(parser: argparse.ArgumentParser) -> None:
    """``--hand-model`` and ``--num-hands``."""
    parser.add_argument("--hand-model", metavar="TASK",
                        help=f"MediaPipe hand landmarker bundle, a .task file (default: ${HAND_MODEL_ENV}, else the shipped one)")
    parser.add_argument("--num-hands", type=at_least(1), default=2, metavar="N", help="most hands per frame (default: 2)")


def add_crop_options(parser: argparse.ArgumentParser) -> None:
    """The crop settings, defaulting to :class:`CropSettings`' defaults."""
    d = CropSettings()
    g = parser.add_argument_group("crop settings (recorded in the dataset; every crop of a dataset uses the same)")
    g.add_argument("--crop-size", type=int, default=d.size, metavar="PX", help=f"crop side in pixels (default: {d.size})")
    g.add_argument("--margin", type=float, default=d.margin, help=f"room around the hand, fraction of its size per side (default: {d.margin})")
    g.add_argument("--no-rotate", action="store_true", help="do not turn hands upright (wrist -> middle finger up)")
    g.add_argument("--mirror", choices=MIRRORS, default=d.mirror,
                   help="which hands to mirror so the thumb is always on one side: chirality (by the landmarks' turn: "
                        "backs and palms alike), handedness (MediaPipe's left hands), none "
                        f"(default: {d.mirror})")
    g.add_argument("--mask", choices=MASKS, default=d.mask,
                   help=f"background mask: none, hull (convex hull) or bones (finger bones + palm; default: {d.mask})")
    add_fill_option(g, d.fill)


def add_max_frames_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--max-frames N``: stop a live command (demo, collect) after N frames of its source; a camera has no end."""
    parser.add_argument("--max-frames", type=at_least(1), default=None, metavar="N",
                        help="stop after N frames of the source (default: at its end; a camera: when you quit)")


def add_fill_option(group, default: str | None) -> None:
    """``--fill image|mask|depth|outlined``: what a crop shows inside its mask (re-rendered from a dataset's large renders)."""
    then = f"default: {default}" if default else "default: as the first dataset was made"
    group.add_argument("--fill", choices=FILLS, default=default,
                       help="what a crop shows inside the mask: image (the photo's gray levels), mask (the hand's "
                            "silhouette alone), depth (the palm and finger bones drawn from the landmarks, brighter "
                            "the nearer the camera; needs the bones mask, collect's default) or outlined (depth with "
                            "each finger outlined in black, so fingers held together stay apart); mask, depth "
                            f"and outlined keep nothing of skin, light or camera ({then})")


def crop_settings_from(args: argparse.Namespace) -> CropSettings:
    """Build :class:`CropSettings` from the options of :func:`add_crop_options`."""
    return CropSettings(size=args.crop_size, margin=args.margin, rotate=not args.no_rotate,
                        mirror=args.mirror, mask=args.mask, fill=args.fill)


def add_engine_options(parser: argparse.ArgumentParser, work: str, workers: bool = True) -> None:
    """``--engine local|ray``, ``--address HOST:PORT`` and (with ``workers``) ``--workers N``: where ``work`` runs."""
    g = parser.add_argument_group(f"where {work} runs")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help=f"local: processes on this machine; ray: a Ray cluster, {work} spread over its nodes "
                        "(pip install \"handcam[ray]\"; default: local)")
    g.add_argument("--address", metavar="HOST:PORT",
                   help="with --engine ray: a running Ray cluster (ray start --head --port=6379 on one machine, "
                        "ray start --address=HEAD:6379 on the others); default: a Ray of this machine's cores, "
                        "stopped at the end")
    if workers:
        g.add_argument("--workers", type=at_least(1), default=None, metavar="N",
                       help=f"{work} processes (default: 1), or with --engine ray, Ray actors (default: every CPU of the cluster)")


def engine_from(args: argparse.Namespace) -> Engine:
    """The :class:`Engine` of :func:`add_engine_options`; ``--engine ray`` without Ray installed is one line saying how."""
    engine = Engine(args.engine, getattr(args, "workers", None), args.address)
    if engine.ray:
        from pipeline.engines.ray import require_ray

        require_ray()
    return engine
