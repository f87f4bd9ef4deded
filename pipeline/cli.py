"""``handcam``: one command with a subcommand per stage command (``handcam demo``, ``handcam train`` ...).

Each subcommand is the same program as ``python -m pipeline.NAME``; this only dispatches to it.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

from pipeline import __version__
from pipeline.cli_options import name_commands
from pipeline.errors import run_command

#: Subcommand -> what it does, in the order a user meets them.
COMMANDS = {
    "demo": "the live window: each hand's gesture and its Grad-CAM on the hand",
    "collect": "record gestures live, or import labelled photos and videos, into a dataset",
    "train": "train a LeNet-5 variant on one or more datasets, split by session or person",
    "evaluate": "test a model on labelled photos, through MediaPipe and the crop stage",
    "explain": "saliency and Grad-CAM figures of what a model looks at",
    "study": "every LeNet-5 variant x several seeds on one dataset",
    "export": "a model as an ONNX file, labels and crop settings inside",
}


def usage(program: str = "handcam") -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {program} COMMAND [options]   (handcam {__version__}; '{program} COMMAND --help' for a command's options)",
             "", "Hand-gesture recognition with explainable CNNs.", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, program: str = "handcam") -> int:
    """Run ``handcam COMMAND ...``: the command's own ``main`` with the rest of the arguments. ``program`` is what
    the user typed before COMMAND, which usage lines and hints repeat (``python -m pipeline`` runs the same)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(program))
        return 0
    if args[0] == "--version":
        print(f"handcam {__version__}")
        return 0
    name = args[0]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; choose one of {', '.join(COMMANDS)} ({program} --help)", file=sys.stderr)
        return 2
    name_commands(program + " {}")  # usage lines say what the user typed
    command = importlib.import_module(f"pipeline.{name}")  # a dispatcher: the only module that loads commands
    return run_command(command.main, args[1:])


def entry(program: str = "handcam") -> None:
    """The ``handcam`` console script (and ``python -m pipeline``, as ``program``)."""
    sys.exit(main(program=program))


if __name__ == "__main__":
    entry()
