"""Import labelled photos and videos (``DIR/LABEL/*``) into a dataset: ``collect --from DIR``.

Detection runs in worker processes (:func:`pipeline.preprocess.photo_folders.detect_files`); only
this process writes, in file order, so the result is the same for any number of workers and a
Ctrl-C loses nothing already written. Re-running an import skips the files (and video frames)
already saved.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipeline.data.store import DatasetWriter

from ..preprocess.photo_folders import FileResult, detect_files, scan


@dataclass
class ImportSummary:
    """Per label counts: files, files with a hand, files without, unreadable files, samples saved,
    and files skipped because an earlier import finished them."""

    rows: dict[str, Counter]

    def table(self) -> str:
        """A fixed-width table, one line per label plus a total."""
        cols = ("files", "found", "no_hand", "unreadable", "saved", "skipped")
        lines = [f"{'label':<14}" + "".join(f"{c:>11}" for c in cols)]
        total: Counter = Counter()
        for label, counts in self.rows.items():
            total.update(counts)
            lines.append(f"{label:<14}" + "".join(f"{counts[c]:>11}" for c in cols))
        lines.append(f"{'total':<14}" + "".join(f"{total[c]:>11}" for c in cols))
        return "\n".join(lines)

    def total(self, key: str) -> int:
        return sum(c[key] for c in self.rows.values())


def import_folder(
    root: str | Path,
    writer: DatasetWriter,
    label_map: dict[str, str] | None = None,
    workers: int = 1,
    hand_model: str | None = None,
    num_hands: int = 2,
    stride: int = 5,
    progress: bool = True,
    on_file: Callable[[FileResult], None] | None = None,
) -> ImportSummary:
    """Import ``root/LABEL/*`` into ``writer``'s dataset; returns per-label counts.

    Every hand found is saved (a photo with two hands gives two samples). Photos already in the
    dataset are skipped before detection, so a re-run after an interruption continues.
    """
    from tqdm import tqdm

    tasks = scan(root, label_map)
    rows: dict[str, Counter] = {}
    for task in tasks:
        rows.setdefault(task.label, Counter())["files"] += 1
    todo = []
    for task in tasks:
        status = writer.file_status(task.relative)
        if status:
            rows[task.label]["skipped"] += 1
            rows[task.label][status] += 1
        else:
            todo.append(task)
    bar = tqdm(total=len(todo), desc="import", unit="file", disable=not progress)
    try:
        for result in detect_files(todo, writer.settings, workers, hand_model, num_hands, stride):
            counts = rows[result.task.label]
            if result.error:
                status = "unreadable"
            elif not any(crops for *_, crops in result.frames):
                status = "no_hand"
            else:
                status = "found"
            counts[status] += 1
            for frame, ms, size, crops in result.frames:
                for hand_index, (hand, crop) in enumerate(crops):
                    if writer.has(result.task.relative, frame, hand_index):
                        continue  # saved before an interruption (in a video, or between two hands)
                    writer.add(crop, hand, result.task.label, result.task.group, result.task.relative,
                               frame, ms, hand_index, size)
                    counts["saved"] += 1
            # Marked only once all its samples are written: an interrupted file is redone.
            writer.mark_file(result.task.relative, status)
            if on_file:
                on_file(result)
            bar.update()
    finally:
        bar.close()
    return ImportSummary(rows)


def detection_rate(summary: ImportSummary) -> float:
    """Share of readable files in which at least one hand was found."""
    found = summary.total("found")
    seen = found + summary.total("no_hand")
    return found / seen if seen else float("nan")

