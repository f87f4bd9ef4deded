"""How long does loading a dataset of many rows take (``pipeline.data.load.load_dataset``)?

Builds a dataset of ``--rows`` rows in a temporary folder out of ``data/fingers`` (its rows again and
again under new ids, each crop a hard link to the original PNG), then loads it in fresh processes:
``cold`` with no cache (every PNG decoded), ``warm`` with the packed crops the cold load left, and
``append`` after one more row (only the last shard is packed again). Each load is split into its
parts: reading and checking ``index.csv``, decoding PNGs, and reading packed shards; the rest is
imports and the index as a table.

    python benchmarks/load_speed.py [--rows 100000] [--keep DIR]

Last line: ``rows=... cold_s=... warm_s=... append_s=... index_s=... crops_cold_s=... crops_warm_s=...``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.data.store import COLUMNS, INDEX, META, read_rows  # noqa: E402

LOAD = """
import json, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
import pipeline.data.load as load
from pipeline.data.store import read_rows
marks = {{}}
real_read, real_render = load.read_rows, load._render
def timed(name, fn):
    def wrapper(*a, **k):
        t = time.perf_counter(); out = fn(*a, **k); marks[name] = marks.get(name, 0) + time.perf_counter() - t; return out
    return wrapper
load.read_rows, load._render = timed("index", real_read), timed("crops", real_render)
load._read_cache = timed("cache", load._read_cache)
t1 = time.perf_counter()
data = load.load_dataset({data!r})
print(json.dumps({{"seconds": time.perf_counter() - t1, "rows": len(data), **marks}}))
"""


def build(rows: int, source: Path, out: Path) -> Path:
    """``rows`` rows of ``source`` again and again, new ids, crops hard-linked (copied where links fail)."""
    out.mkdir(parents=True)
    shutil.copy(source / META, out / META)
    base = read_rows(source / INDEX)
    with open(out / INDEX, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for i in range(rows):
            row = dict(base[i % len(base)])
            old, row["id"] = row["id"], f"{i:06d}"
            row["source"] = f"{row['source']}#{i // len(base)}"
            writer.writerow([row[c] for c in COLUMNS])
            target = out / "crops" / row["label"] / f"{row['id']}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source / "crops" / row["label"] / f"{old}.png", target)
            except OSError:
                shutil.copy(source / "crops" / row["label"] / f"{old}.png", target)
    return out


def append_row(data: Path) -> None:
    """One more row: the last one again under a new id, its crop linked (what an import appends)."""
    rows = read_rows(data / INDEX)
    row = dict(rows[-1], id=f"{len(rows):06d}")
    with open(data / INDEX, "a", encoding="utf-8", newline="") as f:
        csv.writer(f).writerow([row[c] for c in COLUMNS])
    crops = data / "crops" / row["label"]
    os.link(crops / f"{rows[-1]['id']}.png", crops / f"{row['id']}.png")


def load_once(data: Path) -> dict:
    code = LOAD.format(root=str(ROOT), data=str(data))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, metavar="N", help="rows of the dataset (default: 100000)")
    parser.add_argument("--source", default=str(ROOT / "data" / "fingers"), metavar="DIR", help="dataset to repeat")
    parser.add_argument("--keep", metavar="DIR", help="build the dataset in DIR and keep it (default: a temporary folder)")
    args = parser.parse_args()
    tmp = None if args.keep else tempfile.mkdtemp(prefix="load_speed-")
    data = Path(args.keep) if args.keep else Path(tmp) / "big"
    try:
        start = time.perf_counter()
        if not (data / INDEX).is_file():
            build(args.rows, Path(args.source), data)
        print(f"built {args.rows} rows in {data} in {time.perf_counter() - start:.1f} s; {os.cpu_count()} CPUs; "
              f"load average {os.getloadavg()[0]:.1f}")
        shutil.rmtree(data / ".cache", ignore_errors=True)
        cold, warm = load_once(data), load_once(data)
        append_row(data)
        appended = load_once(data)
        for name, r in (("cold", cold), ("warm", warm), ("append", appended)):
            print(f"{name}: {r['rows']} rows in {r['seconds']:.2f} s (index.csv {r.get('index', 0):.2f} s, "
                  f"PNGs {r.get('crops', 0):.2f} s, packed shards {r.get('cache', 0):.2f} s)")
        print(f"rows={cold['rows']} cold_s={cold['seconds']:.2f} warm_s={warm['seconds']:.2f} append_s={appended['seconds']:.2f} "
              f"index_s={warm.get('index', 0):.2f} crops_cold_s={cold.get('crops', 0):.2f} crops_warm_s={warm.get('cache', 0):.2f}")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
