"""Why the sample clip is not answered five: where its thumb lies, among the training hands' fives and fours.

The clip (``--source sample``) shows a relaxed open palm whose thumb lies along the index finger. The
crops are drawn from MediaPipe's landmarks, so what the model can know of the thumb is where its
landmarks put it. This measures the thumb tip in palm coordinates (origin the wrist, one unit the
palm's length from wrist to middle-finger base, x toward the index side), on every clip frame where
the palm faces the camera, and counts, for each committed dataset, the face-on fives and fours whose
thumb tip lies within ``--radius`` of the clip's median. Face-on is as the drawn non-gestures take it
(:func:`pipeline.training.finger_poses.face_on`).

    python benchmarks/clip_thumb.py [--radius 0.25] [--data data/fingers --data data/homes ...]

Last line: ``clip_tip_x=... clip_tip_y=... radius=... fives_near=K/N fours_near=K/N`` (N: the face-on ones).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not

from pipeline.data.load import landmarks_of, load_dataset  # noqa: E402
from pipeline.preprocess.crops import INDEX_MCP  # noqa: E402
from pipeline.preprocess.hands import HandDetector  # noqa: E402
from pipeline.preprocess.sources import open_source  # noqa: E402
from pipeline.training.finger_poses import THUMB_TIP, face_on, palm_coordinates  # noqa: E402

DATASETS = ("fingers", "sign_digits", "homes", "rps_green", "asl_letters", "epsrc", "gestures")


def clip_landmarks(source: str = "sample") -> np.ndarray:
    """(N, 21, 3) the largest hand's landmarks in each frame of ``source`` that has one."""
    found = []
    with open_source(source) as frames, HandDetector(video=True) as detector:
        for frame in frames:
            hands = detector.detect(frame.image, frame.timestamp_ms)
            if hands:
                found.append(max(hands, key=lambda h: h.area()).landmarks)
    return np.stack(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", help="a dataset folder (repeat; default: the committed ones)")
    parser.add_argument("--radius", type=float, default=0.25, help="how near, in palm lengths (default 0.25)")
    args = parser.parse_args()
    clip = np.stack([palm_coordinates(m) for m in clip_landmarks()])
    facing = face_on(clip)
    tip = np.median(clip[facing, THUMB_TIP], 0)
    print(f"clip: {len(clip)} frames with a hand, {facing.sum()} face-on; median thumb tip ({tip[0]:.2f}, "
          f"{tip[1]:.2f}), index base ({np.median(clip[facing, INDEX_MCP, 0]):.2f}, "
          f"{np.median(clip[facing, INDEX_MCP, 1]):.2f})")
    totals = {"five": [0, 0], "four": [0, 0]}
    print(f"{'dataset':12s} {'fives near':>12s} {'fours near':>12s}")
    for root in args.data or [str(ROOT / "data" / name) for name in DATASETS]:
        data = load_dataset(root)
        palms = np.stack([palm_coordinates(m) for m in landmarks_of(data.index)])
        cells = []
        for label, total in totals.items():
            k = data.label_names.index(label) if label in data.label_names else -1
            rows = face_on(palms) & (data.labels.numpy() == k)
            near = int((np.linalg.norm(palms[rows, THUMB_TIP] - tip, axis=1) < args.radius).sum())
            total[0] += near
            total[1] += int(rows.sum())
            cells.append(f"{near}/{rows.sum()}")
        print(f"{Path(root).name:12s} {cells[0]:>12s} {cells[1]:>12s}")
    print(f"clip_tip_x={tip[0]:.3f} clip_tip_y={tip[1]:.3f} radius={args.radius} "
          f"fives_near={totals['five'][0]}/{totals['five'][1]} fours_near={totals['four'][0]}/{totals['four'][1]}")


if __name__ == "__main__":
    main()
