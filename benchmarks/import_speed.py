"""How fast does ``collect --from`` import photos, with 1 and with 2 worker processes, and on Ray?

Each run imports the same photos of ``../shared/data/fingers`` into a fresh temporary dataset
through :func:`pipeline.data.folder_import.import_folder` (progress bar off), all in one process run, so
the two figures share one machine state. ``--limit N`` takes N photos spread evenly over the
labels and sessions (default: all 1,523).

    python benchmarks/import_speed.py [--limit 300] [--fingers PATH] [--workers 1 2] [--no-ray]

Columns: wall seconds of the whole import (worker start-up included), photos per second over
that, the start-up (time to the first finished photo), the steady rate after it, the cores this
import kept busy (CPU seconds of this process and its workers per wall second), the cores other
programs kept busy meanwhile (Linux only: from /proc/stat; the ratio means little unless this is
near 0), and the share of photos with a hand. The goal for 2 workers on 2 cores is a ratio of at
least 1.7.

The Ray row (``collect --engine ray``, with Ray installed) imports the same photos with as many
actors as the last pool row has processes, on a local Ray started before the clock starts, as a
cluster would be (its start is printed apart); the actors' own start is timed, as the pool's is.
Goal: ``ratio_ray_pool`` at least 0.9 on 2 cores.

Last line: ``per_s_1=... per_s_2=... ratio=... per_s_pool=... per_s_ray=... ratio_ray_pool=... hand_rate=...``
(whole-import rates; ``per_s_pool`` is the last pool row).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.data.folder_import import ImportOptions, detection_rate, import_folder  # noqa: E402
from pipeline.data.store import DatasetWriter  # noqa: E402
from pipeline.engines import Engine  # noqa: E402
from pipeline.preprocess.crops import CropSettings  # noqa: E402
from pipeline.preprocess.sources import is_image  # noqa: E402


def pick_photos(fingers: Path, limit: int | None) -> list[Path]:
    photos = sorted(p for p in fingers.glob("*/*") if p.is_file() and is_image(p))
    if not photos:
        sys.exit(f"error: {fingers}: no photos in LABEL/ subfolders; pass --fingers PATH")
    if limit and limit < len(photos):
        step = len(photos) / limit
        photos = [photos[int(i * step)] for i in range(limit)]
    return photos


def link_tree(photos: list[Path], where: Path) -> Path:
    """A DIR/LABEL/photo tree of links, the layout ``import_folder`` reads."""
    for photo in photos:
        target = where / photo.parent.name / photo.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.symlink_to(photo)
        except OSError:
            target.write_bytes(photo.read_bytes())
    return where


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds all programs have used since boot (NaN where /proc/stat is missing)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return float("nan")
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def run(tree: Path, engine: Engine, tmp: Path) -> dict:
    finished: list[float] = []
    with DatasetWriter(tmp / f"{engine.kind}{engine.workers}", CropSettings()) as writer:
        cpu0, busy0, start = cpu_seconds(), machine_busy_seconds(), time.perf_counter()
        summary = import_folder(tree, writer, ImportOptions(engine=engine), progress=False,
                                on_file=lambda _: finished.append(time.perf_counter()))
        wall = time.perf_counter() - start
        cpu, busy = cpu_seconds() - cpu0, machine_busy_seconds() - busy0
    n = len(finished)
    steady = (n - 1) / (finished[-1] - finished[0]) if n > 1 and finished[-1] > finished[0] else float("nan")
    return {"engine": engine.kind, "workers": engine.workers, "photos": n, "seconds": wall, "per_s": n / wall, "startup": finished[0] - start,
            "steady_per_s": steady, "cpu_per_wall": cpu / wall, "others": max(0.0, busy - cpu) / wall, "hand_rate": detection_rate(summary),
            "saved": summary.total("saved")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fingers", default=str(ROOT.parent / "shared" / "data" / "fingers"), metavar="PATH",
                        help="folder of LABEL/ subfolders of photos (default: ../shared/data/fingers)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="import N photos (default: all)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], metavar="N",
                        help="worker counts to time; the first is the baseline (default: 1 2)")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray row")
    args = parser.parse_args()
    photos = pick_photos(Path(args.fingers), args.limit)
    import mediapipe  # noqa: F401  (imported once up front, so the first run does not pay for it alone)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{len(photos)} photos from {args.fingers}; {os.cpu_count()} CPUs; load average {load:.1f}")
    results = []
    with tempfile.TemporaryDirectory(prefix="import_speed-") as tmp:
        tree = link_tree(photos, Path(tmp) / "photos")
        for workers in args.workers:
            results.append(run(tree, Engine("local", workers), Path(tmp)))
        ray = None if args.no_ray else run_ray(tree, args.workers[-1], Path(tmp))
    print(f"{'engine':>7}{'workers':>8}{'photos':>8}{'seconds':>9}{'per_s':>8}{'startup':>9}{'steady/s':>10}"
          f"{'cores':>7}{'others':>8}{'hands':>8}{'saved':>7}")
    for r in results + ([ray] if ray else []):
        print(f"{r['engine']:>7}{r['workers']:>8}{r['photos']:>8}{r['seconds']:>9.2f}{r['per_s']:>8.1f}{r['startup']:>9.2f}"
              f"{r['steady_per_s']:>10.1f}{r['cpu_per_wall']:>7.2f}{r['others']:>8.2f}{r['hand_rate']:>8.3f}"
              f"{r['saved']:>7}")
    base = results[0]
    for r in results[1:]:
        print(f"{r['workers']} vs {base['workers']} workers: whole import x{r['per_s'] / base['per_s']:.2f}, "
              f"steady x{r['steady_per_s'] / base['steady_per_s']:.2f}")
    last = results[-1]
    versus = ""
    if ray:
        print(f"ray vs pool, {last['workers']} workers: whole import x{ray['per_s'] / last['per_s']:.2f}, "
              f"steady x{ray['steady_per_s'] / last['steady_per_s']:.2f}; the local Ray took {ray['ray_start']:.1f} s to start")
        versus = f"per_s_pool={last['per_s']:.2f} per_s_ray={ray['per_s']:.2f} ratio_ray_pool={ray['per_s'] / last['per_s']:.2f} "
    print(f"per_s_1={base['per_s']:.2f} per_s_2={last['per_s']:.2f} ratio={last['per_s'] / base['per_s']:.2f} "
          f"{versus}hand_rate={base['hand_rate']:.3f}")


def run_ray(tree: Path, workers: int, tmp: Path) -> dict | None:
    """The Ray row: :func:`run` on a local Ray started first (None, saying so, without Ray)."""
    try:
        from pipeline.engines.ray import ray_session
        from pipeline.errors import UserError

        start = time.perf_counter()
        with ray_session() as ray:
            ray.get(ray.put(0))  # up and answering
            started = time.perf_counter() - start
            return {**run(tree, Engine("ray", workers), tmp), "ray_start": started}
    except UserError as e:
        print(f"no Ray row: {e}")
        return None


if __name__ == "__main__":
    main()
