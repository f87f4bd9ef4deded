"""Are the explanations faithful? Deletion, insertion, pointing and background share on held-out sessions.

For every method and layer (:mod:`pipeline.explainers.quality`), on the crops of the sessions the
model never trained on (its checkpoint records the split by group): deletion and insertion areas
under three fills (zero, blur, mean), the pointing game against the fingers, and the share of
heat outside the hand (dilated by 2 px). Every method is compared with a random order and the
brightest-pixels-first order. The default method and layer are chosen on the validation
sessions (:func:`pipeline.explainers.quality.choose_default`) and reported on the test sessions,
with 95 % intervals from a two-stage bootstrap over sessions and crops; the demo's default must
be that choice. With ``--sanity``: cascading model randomisation and the data-randomisation test
(a twin trained on permuted labels), with rank, absolute rank, SSIM and HOG similarity. With
``--twins DIR``: the model's recipe trained again as it is and with ``zero_background`` (the fix in the
model rather than in the method), each scored for accuracy and its maps. With
``--mnist DIR --model M``: the same scores on MNIST's test digits for a digit model (the digit's
strokes take the hand's place; nothing is chosen on digits).

    python benchmarks/explain_quality.py [--model PT] [--limit N] [--layers A,B] [--sanity] [--twins DIR] [--json OUT]
    python benchmarks/explain_quality.py --mnist ../shared/data/mnist --limit 1000   # the shipped digit model

Last line, for the demo's default explainer and layer on the test sessions: ``method=... deletion=...
insertion=... deletion_random=... insertion_random=... deletion_intensity=... insertion_intensity=...
background_share=... accuracy=... chosen=...`` (deletion and insertion with the blur fill; the table gives
all three; ``chosen``: the validation choice). It exits 1 when the validation choice is not the demo's default.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not

from pipeline.data.load import load_datasets, qualified_groups  # noqa: E402
from pipeline.data.public import load_mnist  # noqa: E402
from pipeline.explainers.quality import (  # noqa: E402
    BASELINES,
    CURVES,
    DEFAULT_EXPLAINER,
    MAX_BACKGROUND,
    METHODS,
    candidates,
    choose_default,
    crop_scores,
    margin,
    method_maps,
    method_name,
    session_means,
)
from pipeline.explainers.scores import (  # noqa: E402
    cascading_randomisation,
    compare_maps,
    crop_landmarks,
    dilate_masks,
    hand_masks,
)
from pipeline.files import display_path  # noqa: E402
from pipeline.lenet.checkpoint import load_model  # noqa: E402
from pipeline.lenet.model import to_float  # noqa: E402
from pipeline.resources import DIGIT_MODEL, asset  # noqa: E402
from pipeline.stats import hierarchical_bootstrap  # noqa: E402

HEADLINE_FILL = "blur"
SCORES = (*CURVES, "pointing", "background_share")


def parse(name: str) -> tuple[str, str | None]:
    """``"gradcam conv2"`` -> ``("gradcam", "conv2")``; ``"saliency"`` -> ``("saliency", None)``."""
    method, _, layer = name.partition(" ")
    return method, layer or None


def model_data(loaded, data: list[str] | None):
    """The model's own datasets (as its checkpoint records them, or ``data``) and its split groups."""
    roots = [Path(p) for p in data] if data else loaded.data_paths(ROOT)
    return load_datasets(roots, loaded.crop_settings), loaded.split_groups()


def split_crops(loaded, part: str, limit: int | None, seed: int, data: list[str] | None = None):
    """(x float, labels, groups, finger masks, dilated hand masks) of one split of the model's own data."""
    ds, groups = model_data(loaded, data)
    idx = np.flatnonzero(np.isin(qualified_groups(ds), groups.get(part, [])))
    if not len(idx):
        raise SystemExit(f"error: no crop of the model's {part} groups in {ds.root}; pass its datasets with --data")
    if limit and len(idx) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    points = crop_landmarks(ds.index.iloc[idx])
    size, width = loaded.crop_settings.size, loaded.crop_settings.bone_width
    return (to_float(ds.images[idx]), ds.labels[idx], qualified_groups(ds)[idx],
            hand_masks(points, size, "fingers", width, dilate=1), hand_masks(points, size, "bones", width, dilate=2))


def digit_crops(root: str, limit: int | None, seed: int):
    """MNIST test digits: the strokes (lit pixels) stand for the hand, dilated as the hand is."""
    ds = load_mnist(root)
    idx = np.flatnonzero(ds.groups == "test")
    if limit and len(idx) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    lit = ds.images[idx, 0].numpy() > 0
    return to_float(ds.images[idx]), ds.labels[idx], np.arange(len(idx)).astype(str), lit, dilate_masks(lit, 2)


def score_all(model, x, targets, names, fingers, hand, desc: str) -> dict[str, dict[str, np.ndarray]]:
    """Per method name (and baseline), every per-crop score of :func:`pipeline.explainers.quality.crop_scores`."""
    from tqdm import tqdm

    out = {}
    for name in tqdm(names, desc=desc, unit="method", leave=False):
        method, layer = parse(name)
        maps = method_maps(model, x, targets, method, layer)
        out[name] = crop_scores(model, x, targets, maps, fingers, hand)
    return out


def means(scores: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    """Per method, each score's mean over crops."""
    return {name: {k: float(np.nanmean(v)) for k, v in s.items()} for name, s in scores.items()}


def sanity(loaded, x, targets, name: str, draws: int, data: list[str] | None) -> dict:
    """Cascading randomisation and the data-randomisation test for one method.

    The data-randomisation twin has the model's architecture and split, and is trained on the training
    sessions with their labels permuted, without augmentation, for 40 epochs (augmentation would keep it
    from fitting random labels, which is what the test asks of it).
    """
    from pipeline.explainers.scores import weighted_layers
    from pipeline.training.augment import NO_AUGMENT
    from pipeline.training.loop import TrainConfig
    from pipeline.training.run import make_split, train_run

    model = loaded.explained.eval()
    method, layer = parse(name)
    build = METHODS[method]
    reference = build(model, layer)(x, targets)
    weighted = list(weighted_layers(model))
    lit = (x[:, 0] > 0).numpy() if reference.shape[-1] == x.shape[-1] else None  # the hand's pixels, for a pixel-level map
    cascade = cascading_randomisation(model, lambda m: build(m, layer), x, targets, weighted, draws=draws, masks=lit)
    ds, groups = model_data(loaded, data)
    split = make_split(ds, val_groups=list(groups["val"]), test_groups=list(groups["test"]))
    permuted = ds.labels.clone()
    permuted[torch.from_numpy(split.train)] = ds.labels[torch.from_numpy(np.random.default_rng(0).permutation(split.train))]
    ds.labels = permuted
    with tempfile.TemporaryDirectory() as tmp:
        run = train_run(ds, loaded.checkpoint["model_name"], Path(tmp) / "permuted",
                        TrainConfig(epochs=40, patience=40, augment=NO_AUGMENT), split=split, progress=False, log=lambda _s: None)
        twin = load_model(Path(tmp) / "permuted" / "model.pt").explained
    twin_maps = build(twin, layer)(x, targets)
    data_random = {k: float(v.mean()) for k, v in compare_maps(reference, twin_maps, lit).items()}
    return {"method": name, "cascade_layers": weighted, "cascade": {k: v.tolist() for k, v in cascade.items()},
            "data_randomisation": data_random, "permuted_test_accuracy": float(run.test_accuracy)}


def train_twins(loaded, data: list[str] | None, out: Path) -> dict[str, Path]:
    """The model's recipe and split, trained again twice: as it is (``biased``: conv biases and an input mean, as
    shipped) and with ``zero_background`` (black stays exactly 0 through the features). A twin in ``out`` is
    reused only if its ``run.json`` records this model, these overrides and this split; else it is trained again."""
    from pipeline.training.augment import AugmentConfig
    from pipeline.training.loop import TrainConfig
    from pipeline.training.run import make_split, train_run

    ckpt = loaded.checkpoint
    ds, groups = model_data(loaded, data)
    split = make_split(ds, val_groups=list(groups["val"]), test_groups=list(groups["test"]))
    recipe = dict(ckpt["train_config"])
    members = recipe.pop("members", 1)
    config = TrainConfig(**{**recipe, "augment": AugmentConfig.from_record(recipe["augment"])})
    paths = {}
    for name, overrides in (("biased", None), ("zero_background", {"zero_background": True})):
        paths[name] = out / name / "model.pt"
        run_json = out / name / "run.json"
        made = json.loads(run_json.read_text()) if run_json.is_file() and paths[name].is_file() else {}
        if (made.get("model") != ckpt["model_name"] or made.get("model_overrides") != overrides
                or made.get("split_groups") != split.groups(ds) or made.get("train") != config.to_dict()):
            train_run(ds, ckpt["model_name"], out / name, config, members, split, progress=False,
                      log=lambda _s: None, model_overrides=overrides, force=True)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", metavar="PT", help="a hand model (default: the shipped one)")
    parser.add_argument("--data", action="append", metavar="DIR",
                        help="the model's datasets, when its checkpoint does not list them all (repeat)")
    parser.add_argument("--mnist", metavar="DIR", help="score a digit model on MNIST's test digits instead")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N crops per split (seeded subset)")
    parser.add_argument("--layers", metavar="A,B", help="the layers the CAMs are scored at (default: every conv and activation layer)")
    parser.add_argument("--draws", type=int, default=4, help="random networks per cascade step (default: 4)")
    parser.add_argument("--sanity", action="store_true", help="also run the randomisation sanity checks")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap draws (default: 1000)")
    parser.add_argument("--twins", metavar="DIR", help="also train the model's recipe again, as it is and with zero_background, "
                        "into DIR (reused when there), and score both: the fix in the model, against the fix in the method")
    parser.add_argument("--json", metavar="PATH", help="write every number here as JSON")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.mnist and (args.sanity or args.twins or args.data):
        parser.error("--sanity, --twins and --data are for a hand model on its own sessions, not with --mnist")
    torch.manual_seed(args.seed)
    loaded = load_model(args.model or (asset(DIGIT_MODEL) if args.mnist else None))
    model = loaded.explained.eval()
    layers = [n for n, _ in model.features.named_children() if n.startswith(("conv", "act"))]
    if args.layers:
        unknown = sorted(set(args.layers.split(",")) - set(layers))
        if unknown:
            parser.error(f"--layers: no layer {', '.join(unknown)}; choose from {', '.join(layers)}")
        layers = args.layers.split(",")
    names = [method_name(m, la) for m, la in candidates(layers)]

    if args.mnist:
        data = {"test": digit_crops(args.mnist, args.limit, args.seed)}
        loaded.check_fits(data["test"][0], hand_crops=False, where=args.mnist)
    else:
        loaded.require_hand_crops()
        data = {part: split_crops(loaded, part, args.limit, args.seed, args.data) for part in ("val", "test")}
    results: dict = {"model": display_path(loaded.path), "fill": HEADLINE_FILL}
    per_part = {}
    for part, (x, labels, groups, fingers, hand) in data.items():
        with torch.no_grad():
            predicted = model(x).argmax(1)
        scores = score_all(model, x, predicted, [*BASELINES, *names], fingers, hand, part)
        per_part[part] = (scores, groups)
        results[part] = {"crops": len(x), "sessions": len(set(groups.tolist())),
                         "accuracy": float((predicted == labels).float().mean()), "means": means(scores),
                         "session_means": {name: session_means(v, groups) for name, v in scores.items()}}

    demo_default = method_name(*DEFAULT_EXPLAINER)
    if "val" in results:
        val = results["val"]["session_means"]  # every validation session weighs alike
        chosen = choose_default({n: val[n] for n in names}, {b: val[b] for b in BASELINES})
        results["chosen_on_val"] = chosen
        results["val_margins"] = {n: margin(val[n], {b: val[b] for b in BASELINES}) for n in names}
    test_scores, groups = per_part["test"]
    test = results["test"]["means"]

    what = (f"{results['test']['crops']} MNIST test digits" if args.mnist else
            f"{results['test']['crops']} crops of {results['test']['sessions']} held-out sessions")
    print(f"\ntest: {what}, accuracy {results['test']['accuracy']:.3f}; 95 % intervals over "
          + ("digits" if args.mnist else "sessions and crops"))
    header = f"{'method':24s}" + "".join(f"{c:>22s}" for c in (*CURVES, "pointing", "background_share"))
    print(header)
    intervals = {}
    for name in [*BASELINES, *names]:
        row = {k: hierarchical_bootstrap(v, groups, args.bootstrap, seed=args.seed) for k, v in test_scores[name].items()}
        intervals[name] = {k: [iv.mean, iv.low, iv.high] for k, iv in row.items()}
        print(f"{name:24s}" + "".join(f"{str(row[c]):>22s}" for c in SCORES))
    results["test_intervals"] = intervals
    # Paired: the default against each baseline, per crop, on the headline fill.
    paired = {}
    for base in BASELINES:
        for mode in ("deletion", "insertion"):
            key = f"{mode}_{HEADLINE_FILL}"
            diff = test_scores[demo_default][key] - test_scores[base][key]
            iv = hierarchical_bootstrap(diff, groups, args.bootstrap, seed=args.seed)
            paired[f"{key}_minus_{base}"] = [iv.mean, iv.low, iv.high]
    results["paired_default"] = paired
    print(f"\n{demo_default} minus each baseline, per crop ({HEADLINE_FILL} fill): "
          + "; ".join(f"{k}: {v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]" for k, v in paired.items()))
    if "chosen_on_val" in results:
        print(f"chosen on validation (sessions weighted alike; largest margin over the better baseline among maps with a "
              f"background share <= {MAX_BACKGROUND} that beat both baselines with the {HEADLINE_FILL} fill): "
              f"{results['chosen_on_val']}; the demo's default: {demo_default}")
    if args.sanity:
        x = data["test"][0]
        with torch.no_grad():
            predicted = model(x).argmax(1)
        results["sanity"] = sanity(loaded, x, predicted, demo_default, args.draws, args.data)
        s = results["sanity"]
        print(f"\nsanity ({demo_default}): cascading randomisation, mean similarity to the trained model's maps per step "
              f"({', '.join(s['cascade_layers'])} re-initialised cumulatively):")
        for measure in s["cascade"]:
            print(f"  {measure:14s} " + " ".join(f"{v:6.3f}" for v in s["cascade"][measure]))
        print("  data randomisation (twin trained on permuted labels, test accuracy "
              f"{s['permuted_test_accuracy']:.3f}): " + ", ".join(f"{k} {v:.3f}" for k, v in s["data_randomisation"].items()))
    if args.twins and not args.mnist:
        results["twins"] = {}
        x, labels, groups, fingers, hand = data["test"]
        for name, path in train_twins(loaded, args.data, Path(args.twins)).items():
            twin = load_model(path).explained.eval()
            with torch.no_grad():
                predicted = twin(x).argmax(1)
            scores = score_all(twin, x, predicted, [*BASELINES, "gradcam conv2", "gradcam conv1", demo_default], fingers, hand, name)
            results["twins"][name] = {"accuracy": float((predicted == labels).float().mean()), "means": means(scores)}
            m = results["twins"][name]["means"]
            print(f"twin {name}: test accuracy {results['twins'][name]['accuracy']:.3f}; background share gradcam conv1 "
                  f"{m['gradcam conv1']['background_share']:.3f}, conv2 {m['gradcam conv2']['background_share']:.3f}; "
                  f"{demo_default}: deletion {m[demo_default]['deletion_blur']:.3f} insertion {m[demo_default]['insertion_blur']:.3f}")
    if args.json:
        from pipeline.files import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=1))
    d = test[demo_default]
    f = HEADLINE_FILL
    print(f"method={demo_default.replace(' ', ':')} deletion={d[f'deletion_{f}']:.3f} insertion={d[f'insertion_{f}']:.3f} "
          f"deletion_random={test['random'][f'deletion_{f}']:.3f} insertion_random={test['random'][f'insertion_{f}']:.3f} "
          f"deletion_intensity={test['intensity'][f'deletion_{f}']:.3f} insertion_intensity={test['intensity'][f'insertion_{f}']:.3f} "
          f"background_share={d['background_share']:.3f} accuracy={results['test']['accuracy']:.3f}"
          + (f" chosen={results['chosen_on_val'].replace(' ', ':')}" if "chosen_on_val" in results else ""))
    if results.get("chosen_on_val", demo_default) != demo_default:
        print(f"error: validation chose {results['chosen_on_val']}, but the demo's default is {demo_default}: "
              "update DEFAULT_EXPLAINER in pipeline/explainers/quality.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
