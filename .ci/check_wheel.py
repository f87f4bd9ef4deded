"""Run from an empty folder with an installed wheel: every module imports, ``handcam --help`` works, and the
demo runs headless on the shipped sample clip. Exits non-zero, saying what failed, otherwise."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pipeline

where = Path(pipeline.__file__).resolve()
if "site-packages" not in where.parts:
    sys.exit(f"pipeline was imported from {where}, not from an installed wheel")
modules = [m.name for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.") if m.name != "pipeline.__main__"]
for name in modules:
    importlib.import_module(name)
print(f"imported {len(modules)} modules from {where.parent}")

handcam = shutil.which("handcam")
if handcam is None:
    sys.exit("the handcam command was not installed")
help_text = subprocess.run([handcam, "--help"], capture_output=True, text=True, check=True).stdout
for command in ("demo", "collect", "train", "evaluate", "explain", "study", "export"):
    if command not in help_text:
        sys.exit(f"handcam --help does not list {command}")
demo = subprocess.run([handcam, "demo", "--source", "sample", "--headless", "--out", "demo.mp4", "--max-frames", "40"],
                      capture_output=True, text=True)
print(demo.stdout.strip())
if demo.returncode != 0 or not Path("demo.mp4").is_file() or "frames=40" not in demo.stdout:
    sys.exit(f"the headless demo failed (exit {demo.returncode}): {demo.stderr[-2000:]}")
print("wheel ok")
