"""How well does a gesture model do on people it never saw? Leave one source out.

The proxy for other people's photos: every dataset under ``data/`` is one source (its own people,
rooms, camera and way of making the counts). For each source in turn, train on all the others
(validation: groups of the training sources; nothing is chosen on the held-out source), then test
on the held-out source's crops, which MediaPipe and the crop stage made from its photos. Reported
per source: accuracy of the CNN and of two landmark-MLP baselines on the same splits (``mlp``: the
popular MediaPipe-gesture recipe, wrist-relative landmarks as the photo shows them; ``mlp_upright``: the
same net on the landmarks as the CNN's crop shows them, turned upright and mirrored as the crop is), the
face-on hands seen from the back (where MediaPipe's anatomical handedness and the landmarks' apparent turn
disagree), and ``none`` precision and recall at the demo's threshold, with the fold's confusion matrix
(true label by answer). With ``--turned N``, up to N
photos of each held-out source also go through the whole path again, as they are and turned 90 and
180 degrees.

    python benchmarks/leave_one_source_out.py [--epochs 40] [--model lenet5] [--members 3] [--fill depth] [--pose-copies 0] [--none-poses 0]
                                              [--pose-tilt 0] [--pose-spread 0.4 1.2] [--thumb-in 0] [--none-circles 0] [--none-tilt 30]
                                              [--augment style_poses=0.07] [--weight-decay 0.05] [--turned 60] [--no-mlp]
                                              [--predictions errors.csv]

The shipped model's recipe: ``--epochs 20 --model lenet5-wide --members 3 --fill depth --turned 40 --augment style_poses=0.07``.

Last line: ``cnn_mean=... mlp_mean=... mlp_upright_mean=... cnn_pooled=... back_of_hand=... none_precision=... none_recall=...
false_positive_rate=... counts=... together=... thumb_three=... counts_n=... together_n=... thumb_three_n=...
upright=... turned90=... turned180=... folds=...``. ``counts``, ``together`` and ``thumb_three`` are the pooled
shares answered right, as the demo answers, of the held-out counts, of the twos to fives with the fingers held
together, and of the face-on thumb-out threes (NaN where none is held out): the goals' "six counts" and "other
finger styles".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not

from pipeline.cli_options import at_least, augment_item  # noqa: E402
from pipeline.data.load import Dataset, concat_datasets, landmarks_of, load_dataset  # noqa: E402
from pipeline.errors import run_command  # noqa: E402
from pipeline.files import atomic_write_text, check_writable  # noqa: E402
from pipeline.labels import NONE_LABEL  # noqa: E402
from pipeline.lenet.checkpoint import load_model  # noqa: E402
from pipeline.lenet.model import predict_logits  # noqa: E402
from pipeline.preprocess.crops import FILLS, MIRRORS, seen_from_back  # noqa: E402
from pipeline.training.calibration import answers, none_scores  # noqa: E402
from pipeline.training.evaluation import evaluate_folder  # noqa: E402
from pipeline.training.finger_poses import COUNT_FINGERS, face_on, held_together, thumb_out  # noqa: E402
from pipeline.training.loop import TrainConfig  # noqa: E402
from pipeline.training.reports import confusion  # noqa: E402
from pipeline.training.run import THRESHOLD, Split, make_split, train_run  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SOURCES = ("fingers", "sign_digits", "homes", "rps_green", "asl_letters", "epsrc", "gestures")


def photo_of(source: str, relative: str) -> Path:
    """The photo a dataset row came from (the folders data/make_datasets.sh imports)."""
    if source == "fingers":
        return SHARED / "fingers" / relative
    if source == "gestures":  # a linked tree: LABEL/gestures/... (images/gestures), LABEL/images/..., LABEL/videos/...
        rest = relative.split("/")[1:]
        return SHARED / ("images" if rest[0] == "gestures" else "") / "/".join(rest)
    return SHARED / "hands_many" / source / relative


def back_of_hand(data: Dataset) -> np.ndarray:
    """(N,) bool: backs of hands, the goals' kind: seen face-on (:func:`~pipeline.training.finger_poses.face_on`),
    their apparent turn contradicting MediaPipe's (anatomical) handedness. An edge-on palm's apparent turn is noise:
    counted, it made 121 of sign_digits' edge-on O shapes (its `none`) "backs"."""
    marks = landmarks_of(data.index)
    return face_on(marks) & np.array([seen_from_back(m, h) for m, h in zip(marks, data.index["handedness"])], bool)


#: The goals' kinds of hand that a source's labels and landmarks tell (see :func:`kinds_of_hand`).
KINDS = ("counts", "together", "thumb_three")


def kinds_of_hand(data: Dataset) -> dict[str, np.ndarray]:
    """(N,) bool for each of :data:`KINDS`: a count (any label but none); a count of two or more fingers held
    together (:func:`~pipeline.training.finger_poses.held_together`); a three seen face-on with the thumb out
    (:func:`~pipeline.training.finger_poses.thumb_out`, whose measure needs the palm's width). The last two are
    the "other finger styles"."""
    marks = landmarks_of(data.index)
    names = np.asarray(data.label_names)[data.labels.numpy()]
    several = [name for name, fingers in COUNT_FINGERS.items() if len(fingers) >= 2]
    together = np.isin(names, several) & np.array([held_together(m) for m in marks], bool)
    three_out = (names == "three") & face_on(marks) & np.array([thumb_out(m) for m in marks], bool)
    return {"counts": names != NONE_LABEL, "together": together, "thumb_three": three_out}


def turned_folders(test: Dataset, out: Path, limit: int, seed: int) -> dict[str, Path]:
    """Up to ``limit`` photos of the test source, as they are and turned 90 and 180 degrees, in LABEL/ folders."""
    rows = test.index.drop_duplicates("source")
    rows = rows[[Path(s).suffix.lower() in {".jpg", ".jpeg", ".png"} for s in rows["source"]]]
    pick = rows.sample(min(limit, len(rows)), random_state=seed) if len(rows) else rows
    folders = {}
    for name, code in (("upright", None), ("turned90", cv2.ROTATE_90_CLOCKWISE), ("turned180", cv2.ROTATE_180)):
        folder = out / name
        for k, (source, label) in enumerate(zip(pick["source"], pick["label"])):
            image = cv2.imread(str(photo_of(test.root.name, source)))
            if image is None:
                continue
            image = image if code is None else cv2.rotate(image, code)
            (folder / label).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / label / f"{k:04d}.png"), image)
        folders[name] = folder
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=[str(ROOT / "data" / s) for s in SOURCES], metavar="DIR",
                        help="the sources (dataset folders); each is held out once")
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weight-decay", type=at_least(0.0, float), default=TrainConfig.weight_decay, metavar="W",
                        help="the CNN's AdamW weight decay, as pipeline.train's (default: %(default)g; the MLPs keep "
                             "their own recipe)")
    parser.add_argument("--members", type=at_least(1), default=1, metavar="K",
                        help="train K seeds per fold and average them (pipeline.train --ensemble)")
    parser.add_argument("--turned", type=int, default=0, metavar="N", help="photos per source through the whole path, turned")
    parser.add_argument("--no-mlp", action="store_true", help="skip the landmark-MLP baselines")
    parser.add_argument("--mirror", choices=MIRRORS, help="re-render every source with this mirror rule (default: as made)")
    parser.add_argument("--fill", choices=FILLS, help="re-render every source with this crop fill (default: as made)")
    parser.add_argument("--pose-copies", type=at_least(0), metavar="N",
                        help="finger-pose copies per training crop, for fills drawn from the landmarks (default: the training default)")
    parser.add_argument("--none-poses", type=float, metavar="SHARE",
                        help="drawn non-gestures, as a share of the training crops, for fills drawn from the landmarks "
                             "(default: the training default)")
    parser.add_argument("--none-circles", type=float, metavar="SHARE",
                        help="the share of drawn non-gestures that close a thumb-index circle (the OK sign; default: the "
                             "training default)")
    parser.add_argument("--augment", action="append", type=augment_item, default=[], metavar="KEY=VALUE",
                        help="change one setting of the training recipe by its AugmentConfig name, as pipeline.train "
                             "--augment does (repeat for several; e.g. style_poses=0.07, pose_flip=0.5); it wins over "
                             "the named options for the same setting")
    parser.add_argument("--pose-spread", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="scale each finger-pose copy's raised fingers' angles to the palm's axis by a factor in "
                             "[LOW, HIGH] (default: the training default)")
    parser.add_argument("--thumb-in", type=float, metavar="FACTOR",
                        help="lay a five's thumb in toward the index in its copies drawn with the fingers closer than "
                             "FACTOR (AugmentConfig.thumb_in; 0.7 measured best; default: the training default)")
    parser.add_argument("--pose-tilt", type=float, metavar="DEG",
                        help="turn each finger-pose copy in 3D by up to DEG degrees (default: the training default)")
    parser.add_argument("--none-tilt", type=float, metavar="DEG",
                        help="turn each drawn non-gesture (and drawn count style) in 3D by up to DEG degrees (default: "
                             "the training default)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--predictions", type=Path, metavar="CSV",
                        help="also write every held-out crop's answer here (source, index id, photo, label, answer as the "
                             "demo gives it, confidence: the top class's probability, back of hand, the goals' kinds, "
                             "each label's probability), to look at the errors")
    args = parser.parse_args()
    if args.predictions:  # refused now, not after the whole run
        check_writable(args.predictions.resolve().parent, "--predictions")
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = [load_dataset(d) for d in args.data]
    changes = {k: v for k, v in (("mirror", args.mirror), ("fill", args.fill)) if v}
    if changes:
        parts = [load_dataset(d, replace(p.settings, **changes)) for d, p in zip(args.data, parts)]
    labels = list(dict.fromkeys(n for p in parts for n in p.label_names))
    labels = [n for n in labels if n != NONE_LABEL] + ([NONE_LABEL] if NONE_LABEL in labels else [])
    config = replace(TrainConfig(), epochs=args.epochs, seed=args.seed, weight_decay=args.weight_decay)
    asked = {"pose_copies": args.pose_copies, "none_poses": args.none_poses, "pose_tilt_deg": args.pose_tilt,
             "none_circles": args.none_circles, "none_tilt_deg": args.none_tilt,
             "thumb_in": args.thumb_in, **dict(zip(("pose_low", "pose_high"), args.pose_spread or (None, None)))}
    asked = {**{k: v for k, v in asked.items() if v is not None}, **dict(args.augment)}
    config = replace(config, augment=replace(config.augment, **asked))
    import pandas as pd

    rows, shown_all, truth_all, turned = [], [], [], {"upright": [], "turned90": [], "turned180": []}
    answered = []  # per held-out crop, for --predictions
    # What the demo shows, by answer index; labels without none: "no answer" (-1, below the threshold) is the last.
    names = labels if NONE_LABEL in labels else [*labels, "no answer"]
    kinds_all = {kind: [] for kind in KINDS}
    for k, held in enumerate(parts):
        name = held.root.name
        train = concat_datasets([p for j, p in enumerate(parts) if j != k], labels)
        test = concat_datasets([held], labels)
        # The held-out source is the test set: the run's own split keeps no test part.
        split = make_split(train, seed=args.seed)
        split = Split(np.sort(np.concatenate([split.train, split.test])), split.val, split.test[:0])
        with tempfile.TemporaryDirectory() as tmp:
            train_run(train, args.model, Path(tmp) / "run", config, members=args.members, split=split, progress=False,
                      log=lambda *_: None)
            model = load_model(Path(tmp) / "run" / "model.pt")
            probs = predict_logits(model.network, test.images).softmax(1).numpy()
            if args.turned:
                folders = turned_folders(test, Path(tmp) / "turned", args.turned, args.seed)
                for key, folder in folders.items():
                    if any(folder.iterdir()):
                        result = evaluate_folder(model, folder, progress=False)
                        turned[key].append((result.true == result.predicted).sum() / max(len(result.true), 1))
        truth = test.labels.numpy()
        shown = answers(probs, labels, THRESHOLD)
        back, kinds = back_of_hand(test), kinds_of_hand(test)
        row = {"source": name, "n": len(test), "cnn": float((probs.argmax(1) == truth).mean()),
               "shown": float((shown == truth).mean()), "back_n": int(back.sum()),
               "back": float((probs.argmax(1) == truth)[back].mean()) if back.any() else float("nan"),
               **none_scores(shown, truth, labels)}
        for kind, rows_of_kind in kinds.items():  # as the demo answers them
            kinds_all[kind].append(rows_of_kind)
            row[f"{kind}_n"] = int(rows_of_kind.sum())
            row[kind] = float((shown == truth)[rows_of_kind].mean()) if rows_of_kind.any() else float("nan")
        answered.append(pd.DataFrame({
            "source": name, "id": test.index["id"], "photo": test.index["source"], "label": np.asarray(labels)[truth],
            "answer": np.asarray(names)[np.where(shown < 0, len(labels), shown)],
            "confidence": probs.max(1).round(4), "back_of_hand": back,
            **kinds,
            **{f"p_{label}": probs[:, j].round(4) for j, label in enumerate(labels)}}))
        if not args.no_mlp:
            from pipeline.training.landmark_mlp import LANDMARK_CONFIG, predict_landmark_mlp, train_landmark_mlp

            for column, mirror, upright in (("mlp", "none", False), ("mlp_upright", "crops", True)):
                mlp, _ = train_landmark_mlp(train, split, replace(LANDMARK_CONFIG, seed=args.seed), mirror=mirror,
                                            upright=upright)  # its own recipe
                logits = predict_landmark_mlp(mlp, test, np.arange(len(test)))
                row[column] = float((logits.argmax(1).numpy() == truth).mean())
        rows.append(row)
        shown_all.append(shown)
        truth_all.append(truth)
        print(f"held out {name}: " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                                              if k != "source"), flush=True)
        # Where its crops went, as the demo answers them: rows the true label, columns the answer.
        cells = confusion(truth, np.where(shown < 0, len(labels), shown), len(names))
        matrix = pd.DataFrame(cells, index=names, columns=names)
        print(matrix.loc[matrix.sum(axis=1) > 0].to_string(), flush=True)

    if args.predictions:
        atomic_write_text(args.predictions, pd.concat(answered).to_csv(index=False))
    table = pd.DataFrame(rows).set_index("source")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    pooled_shown, pooled_truth = np.concatenate(shown_all), np.concatenate(truth_all)
    none = none_scores(pooled_shown, pooled_truth, labels)
    backs = table["back"].to_numpy() * table["back_n"].to_numpy()
    summary = {"cnn_mean": table["cnn"].mean(),
               **{f"{c}_mean": table[c].mean() if c in table else float("nan") for c in ("mlp", "mlp_upright")},
               "cnn_pooled": float((pooled_shown == pooled_truth).mean()),
               "back_of_hand": float(np.nansum(backs) / table["back_n"].sum()), **none,
               **{kind: float((pooled_shown == pooled_truth)[mask].mean()) if mask.any() else float("nan")
                  for kind, mask in ((kind, np.concatenate(kinds_all[kind])) for kind in KINDS)},
               **{f"{kind}_n": int(table[f"{kind}_n"].sum()) for kind in KINDS},
               **{key: float(np.mean(v)) if v else float("nan") for key, v in turned.items()}, "folds": len(rows)}
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    sys.exit(run_command(lambda _argv: main()))  # a user error is one line, not a traceback
