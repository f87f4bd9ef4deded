"""Explainer speed: ours vs captum vs pytorch-grad-cam, interleaved in one run, medians of many calls.

Cases: Grad-CAM on conv2 and conv1, and saliency, at batch 1 and 256, on real crops from
``data/fingers`` and a LeNet-5 trained on them for a few epochs (so the maps have real values).
Every library gets the same explicit targets (the predicted classes), so no one pays for an
extra forward. Plus the live demo's per-hand cost: Grad-CAM at batch 1, upsampled, normalised
and overlaid on a 640x480 frame through a real crop's affine, with torch set up as the demo sets it.

pytorch-grad-cam needs torchvision, which does not import beside the project's CPU torch 2.13.
So it runs in a second Python (``--gradcam-python``, default ``/tmp/gcvenv/bin/python`` or
``$GRADCAM_PYTHON``; make it with ``python -m venv /tmp/gcvenv && /tmp/gcvenv/bin/pip install
torch torchvision grad-cam captum numpy``): this script starts itself there as a worker and, in
every round, asks it for timed calls of pytorch-grad-cam and of ours on that same torch (after an
untimed warm call of each, as the worker sat idle while this process ran). ``speedup_vs_gradcam``
is pytorch-grad-cam over our raw Grad-CAM, both timed in the worker; the table also gives it
against our call that returns what pytorch-grad-cam returns (maps min-max normalised per image,
resized to 28x28 and normalised again), which is the stricter comparison.
Without that Python, the pytorch-grad-cam column says why it was not run.

    python benchmarks/explain_speed.py [--threads 1] [--reps 300] [--reps-large 100]

Last line (conv2, batch 256): ``gradcam_ms=... captum_ms=... pytorch_grad_cam_ms=...
speedup_vs_captum=... speedup_vs_gradcam=... max_diff=...`` (max_diff: ours vs captum, raw maps).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.explainers import GradCAM, Saliency, normalize, upsample  # noqa: E402
from pipeline.lenet.model import LeNet, LeNetConfig  # noqa: E402

CASES = [("gradcam", "conv2", 1), ("gradcam", "conv1", 1), ("saliency", "", 1),
         ("gradcam", "conv2", 256), ("gradcam", "conv1", 256), ("saliency", "", 256)]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def ours_same_output(model: LeNet, layer: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Our Grad-CAM returning what pytorch-grad-cam returns: min-max, stretched to 28x28, min-max again."""
    cam = GradCAM(model, layer)
    return lambda x, t: normalize(upsample(normalize(cam(x, t)), x.shape[-1]))


# ---------------------------------------------------------------------------------------------
# The worker: runs under the Python that has pytorch-grad-cam


def worker(path: str, threads: int) -> None:
    import numpy as np
    from pytorch_grad_cam import GradCAM as LibGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.set_num_threads(threads)
    saved = torch.load(path, weights_only=True)
    ours_model, lib_model = (LeNet(LeNetConfig.from_dict(saved["config"])) for _ in range(2))
    ours_model.load_state_dict(saved["state"])
    lib_model.load_state_dict(saved["state"])  # its own copy: the library writes into .grad
    x, targets = saved["x"], saved["targets"]
    calls = {}
    for method, layer, batch in CASES:
        if method != "gradcam":
            continue
        xb, tb = x[:batch], targets[:batch]
        lib = LibGradCAM(model=lib_model.eval(), target_layers=[lib_model.layer(layer)])  # built once, reused
        lib_targets = [ClassifierOutputTarget(int(t)) for t in tb]
        raw, same = GradCAM(ours_model.eval(), layer), ours_same_output(ours_model.eval(), layer)
        diff = float(np.abs(lib(input_tensor=xb, targets=lib_targets) - same(xb, tb)[:, 0].numpy()).max())
        calls[f"{method} {layer} {batch}"] = ({
            "lib": lambda xb=xb, lib=lib, lt=lib_targets: lib(input_tensor=xb, targets=lt),
            "ours": lambda xb=xb, tb=tb, f=raw: f(xb, tb),
            "ours_same": lambda xb=xb, tb=tb, f=same: f(xb, tb)}, diff)
    print(json.dumps({"ready": torch.__version__}), flush=True)
    for line in sys.stdin:
        key, round_ = line.rsplit(" ", 1)
        fns, diff = calls[key]
        order = list(fns.items())
        order = order[int(round_) % 3:] + order[:int(round_) % 3]  # rotate who goes first
        for _, fn in order:
            fn()  # warm: this process was idle while the other one ran
        answer = {name: timed(fn) for name, fn in order}
        print(json.dumps({**answer, "diff": diff}), flush=True)


class Worker:
    """The pytorch-grad-cam worker process, or the reason it could not start."""

    def __init__(self, python: str, data_path: str, threads: int):
        self.proc, self.why, self.version = None, "", ""
        if not Path(python).is_file():
            self.why = f"no Python with pytorch-grad-cam at {python} (see the module docstring)"
            return
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
        self.proc = subprocess.Popen([python, __file__, "--worker", data_path, "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        first = self.proc.stdout.readline()
        if not first:
            self.why = "worker failed: " + (self.proc.stderr.read().strip().splitlines() or ["no output"])[-1]
            self.proc = None
            return
        self.version = json.loads(first)["ready"]

    def time(self, key: str, round_: int) -> dict:
        self.proc.stdin.write(f"{key} {round_}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


# ---------------------------------------------------------------------------------------------


def trained_model_and_crops(threads: int) -> tuple[LeNet, torch.Tensor, object]:
    from pipeline.data.load import load_dataset
    from pipeline.lenet.model import build_model
    from pipeline.training.loop import NO_AUGMENT, TrainConfig, to_float, train_model

    ds = load_dataset(ROOT / "data" / "fingers")
    torch.manual_seed(0)
    model = build_model("lenet5", len(ds.label_names))
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
    train, val = idx[:1200], idx[1200:]
    train_model(model, (ds.images[train], ds.labels[train]), (ds.images[val], ds.labels[val]),
                TrainConfig(epochs=4, augment=NO_AUGMENT))
    return model.eval(), to_float(ds.images[val[:256]]), ds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in both processes (default: 1)")
    parser.add_argument("--reps", type=int, default=300, help="timed calls per case at batch 1 (default: 300)")
    parser.add_argument("--reps-large", type=int, default=100, help="timed calls per case at batch 256 (default: 100)")
    parser.add_argument("--gradcam-python", default=os.environ.get("GRADCAM_PYTHON", "/tmp/gcvenv/bin/python"),
                        help="a Python with pytorch-grad-cam (default: $GRADCAM_PYTHON or /tmp/gcvenv/bin/python)")
    parser.add_argument("--worker", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.threads)

    import numpy as np

    try:
        from captum.attr import LayerGradCam
        from captum.attr import Saliency as CaptumSaliency
        no_captum = ""
    except ImportError as e:  # an optional extra: pip install -e ".[dev]"
        no_captum = f"NOT RUN: {e}"

    from pipeline.data.load import affines_of
    from pipeline.draw.heatmaps import overlay_on_frame

    warnings.filterwarnings("ignore")  # captum's "input did not require grad"
    torch.set_num_threads(args.threads)
    model, x, ds = trained_model_and_crops(args.threads)
    with torch.no_grad():
        targets = model(x).argmax(1)
    with tempfile.TemporaryDirectory() as tmp:
        data_path = str(Path(tmp) / "bench.pt")
        torch.save({"config": model.config.to_dict(), "state": model.state_dict(), "x": x, "targets": targets}, data_path)
        lib = Worker(args.gradcam_python, data_path, args.threads)

        calls: dict[str, dict[str, Callable[[], object]]] = {}
        diffs: dict[str, float] = {}
        for method, layer, batch in CASES:
            xb, tb = x[:batch], targets[:batch]
            key = f"{method} {layer} {batch}"
            if method == "gradcam":
                ours = GradCAM(model, layer)
                calls[key] = {"ours": lambda o=ours, xb=xb, tb=tb: o(xb, tb)}
                if not no_captum:
                    theirs = LayerGradCam(model, model.layer(layer))
                    calls[key]["captum"] = lambda c=theirs, xb=xb, tb=tb: c.attribute(xb, tb, relu_attributions=True)
            else:
                ours = Saliency(model)
                calls[key] = {"ours": lambda o=ours, xb=xb, tb=tb: o(xb, tb)}
                if not no_captum:
                    theirs = CaptumSaliency(model)
                    calls[key]["captum"] = lambda c=theirs, xb=xb, tb=tb: c.attribute(xb.clone(), tb)
            if not no_captum:
                diffs[key] = float((calls[key]["ours"]() - calls[key]["captum"]()).abs().max())
        # The live demo's cost per hand: Grad-CAM, upsample, normalise, overlay on a 640x480 frame,
        # with torch set up as the demo sets it (pipeline.live.tune_torch_for_live: no oneDNN for
        # batches of a few crops; one thread, as here by default).
        frame = np.full((480, 640, 3), 90, np.uint8)
        affine = affines_of(ds.index)[0]
        cam = GradCAM(model, "conv2")

        def overlay() -> None:
            with torch.backends.mkldnn.flags(enabled=False):
                heat = normalize(upsample(cam(x[:1]), 28, cam.grid))[0, 0].numpy()
            overlay_on_frame(frame, heat, affine)

        times: dict[str, dict[str, list[float]]] = {
            k: {"ours": [], "captum": [], "lib": [], "lib_ours": [], "lib_ours_same": []} for k in calls}
        overlay_ms: list[float] = []
        for fn in [f for c in calls.values() for f in c.values()] + [overlay]:
            fn()  # warm up
        rounds = max(args.reps, args.reps_large)
        for r in range(rounds):
            for key, fns in calls.items():
                if r >= (args.reps if key.endswith(" 1") else args.reps_large):
                    continue
                order = list(fns.items())
                for name, fn in order[r % 2:] + order[:r % 2]:  # alternate who goes first
                    times[key][name].append(timed(fn))
                if lib.proc and key.startswith("gradcam"):
                    answer = lib.time(key, r)
                    times[key]["lib"].append(answer["lib"])
                    times[key]["lib_ours"].append(answer["ours"])
                    times[key]["lib_ours_same"].append(answer["ours_same"])
                    diffs[key + " lib"] = answer["diff"]
            if r < args.reps:
                overlay_ms.append(timed(overlay))
        lib.close()
        # And back to back, frame after frame as in the demo, with nothing else evicting the caches.
        overlay_warm_ms = [timed(overlay) for _ in range(args.reps)]

    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    print(f"torch {torch.__version__}, {args.threads} thread(s); captum: {no_captum or 'run here'}; pytorch-grad-cam: "
          + (f"run in {args.gradcam_python} (torch {lib.version})" if lib.version else f"NOT RUN: {lib.why}"))
    header = (f"{'case':<19}{'ours':>8}{'captum':>8}{'x capt':>7}{'| pgc':>8}{'ours':>8}{'ours*':>8}{'x pgc':>7}"
              f"{'x pgc*':>7}{'| diff capt':>12}{'diff pgc':>9}")
    print(header)
    for key in calls:
        t = times[key]
        ours_ms, cap_ms = med(t["ours"]), med(t["captum"])
        lib_ms, lib_ours, lib_same = med(t["lib"]), med(t["lib_ours"]), med(t["lib_ours_same"])
        print(f"{key:<19}{ours_ms:>8.3f}{cap_ms:>8.3f}{cap_ms / ours_ms:>7.2f}{lib_ms:>8.2f}{lib_ours:>8.3f}"
              f"{lib_same:>8.3f}{lib_ms / lib_ours:>7.2f}{lib_ms / lib_same:>7.2f}{diffs.get(key, float('nan')):>12.1e}"
              f"{diffs.get(key + ' lib', float('nan')):>9.1e}")
    print("ms, medians. Left: this process; ours and captum return raw maps at the layer (saliency: at the input). "
          "Right: the pytorch-grad-cam process (pgc), which also times ours (same torch): raw maps, and ours* = "
          "what pgc returns (min-max per image, resized to 28x28, min-max again); x pgc = pgc / ours, "
          "x pgc* = pgc / ours*. diff pgc: ours* vs pgc. pgc has no plain saliency.")
    print(f"live demo, one hand: Grad-CAM conv2 + upsample + normalise + overlay on 640x480 = {med(overlay_ms):.3f} ms "
          f"between the batch-256 calls (cold caches), {med(overlay_warm_ms):.3f} ms back to back (goal <= 2 ms)")
    key = "gradcam conv2 256"
    t = times[key]
    gradcam_ms, captum_ms, pgc_ms = med(t["ours"]), med(t["captum"]), med(t["lib"])
    print(f"gradcam_ms={gradcam_ms:.3f} captum_ms={captum_ms:.3f} pytorch_grad_cam_ms={pgc_ms:.3f} "
          f"speedup_vs_captum={captum_ms / gradcam_ms:.2f} speedup_vs_gradcam={pgc_ms / med(t['lib_ours']):.2f} "
          f"max_diff={diffs.get(key, float('nan')):.2e}")


if __name__ == "__main__":
    main()
