"""Import labelled photos and videos (``DIR/LABEL/*``) into a dataset: ``collect --from DIR``.

Detection runs in worker processes or on Ray actors (:func:`pipeline.preprocess.photo_folders.detect_files`);
only this process writes, in file order, so the result is the same for any number of workers, on
either engine, and a Ctrl-C loses nothing already written (on Ray it also stops the cluster's work).
Re-running an import skips the files (and video frames) already saved. When its review, ``--map`` or group rule
would give their samples another label or group, it refuses in one line, unless asked to update them
(``update_saved``): then they get what the import now gives, the ones the review drops move to the trash, and the
ones an earlier review dropped that this one keeps come back from it.
"""

from __future__ import annotations

from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.data.review import DROP, Review
from pipeline.data.store import DatasetWriter, Origin
from pipeline.engines import Engine
from pipeline.errors import UserError
from pipeline.preprocess.photo_folders import FileResult, GroupRule, Task, detect_files, scan


@dataclass
class ImportSummary:
    """Per label counts: files, files with a hand, files without, unreadable files, files a review
    dropped, samples saved, and files skipped because an earlier import finished them. A label's
    files are counted under the label the review gives them."""

    rows: dict[str, Counter]
    warnings: list[str] = field(default_factory=list)  # videos that ended early, one line each
    changed: int = 0  # samples saved before whose label or group the import now gives otherwise
    removed: int = 0  # samples saved before that the review now drops (moved to the trash)
    restored: int = 0  # samples an earlier review dropped that this one keeps (back from the trash)

    def table(self) -> str:
        """A fixed-width table, one line per label plus a total."""
        cols = ("files", "found", "no_hand", "unreadable", "dropped", "saved", "skipped")
        lines = [f"{'label':<14}" + "".join(f"{c:>11}" for c in cols)]
        total: Counter = Counter()
        for label, counts in self.rows.items():
            total.update(counts)
            lines.append(f"{label:<14}" + "".join(f"{counts[c]:>11}" for c in cols))
        lines.append(f"{'total':<14}" + "".join(f"{total[c]:>11}" for c in cols))
        return "\n".join(lines)

    def total(self, key: str) -> int:
        return sum(c[key] for c in self.rows.values())


@dataclass(frozen=True)
class ImportOptions:
    """How a folder is imported: folder -> label names, a label review, how files are grouped, and detection
    (where it runs: ``engine``; a plain number is that many local processes)."""

    label_map: dict[str, str] = field(default_factory=dict)
    review: Review = field(default_factory=Review)
    grouping: GroupRule = GroupRule()
    engine: Engine | int = 1
    hand_model: str | None = None
    num_hands: int = 2
    stride: int = 5
    retry_missed: bool = False  # search again the files an earlier import found no hand in
    update_saved: bool = False  # give the samples saved before the label and group this import gives them


def import_folder(root: str | Path, writer: DatasetWriter, options: ImportOptions = ImportOptions(),
                  progress: bool = True, on_file: Callable[[FileResult], None] | None = None) -> ImportSummary:
    """Import ``root/LABEL/*`` into ``writer``'s dataset; returns per-label counts.

    Every hand found is saved (a photo with two hands gives two samples), under its folder's label
    or the review's decision (a dropped file is not even detected). Files already in the dataset
    are skipped before detection, so a re-run after an interruption continues; the samples saved from
    them before must have the label and group the import now gives, or, with ``options.update_saved``,
    are given them (:func:`apply_to_saved`); with
    ``options.retry_missed``, the files an earlier import found no hand in are searched again (a newer
    detection step may find one) and their hands appended.
    """
    from tqdm import tqdm

    tasks = scan(root, options.label_map, options.grouping)
    options.review.check_files({t.relative for t in tasks})
    changed, removed, restored = apply_to_saved(tasks, writer, options)
    rows: dict[str, Counter] = {}
    warnings: list[str] = []
    todo = []
    for task in tasks:
        label = options.review.whole_file_label(task.relative, task.label)
        counts = rows.setdefault(label or DROP, Counter())
        counts["files"] += 1
        status = writer.file_status(task.relative)
        if label is None:
            counts["dropped"] += 1
        elif status and not (options.retry_missed and status == "no_hand"):
            counts["skipped"] += 1
            counts[status] += 1
        else:
            todo.append(task)
    bar = tqdm(total=len(todo), desc="import", unit="file", disable=not progress)
    # closing(): leaving early (Ctrl-C, an error) stops the workers at once, the cluster's among them.
    results = closing(detect_files(todo, writer.settings, options.engine, options.hand_model, options.num_hands,
                                   options.stride))
    try:
        with results as detected:
            for result in detected:
                task = result.task
                counts = rows[options.review.whole_file_label(task.relative, task.label)]
                counts[result.status] += 1
                for frame in result.frames:
                    label = options.review.label(task.relative, frame.index, task.label)
                    if label is None:
                        continue
                    for k, found in enumerate(frame.hands):
                        if writer.has(task.relative, frame.index, k):
                            continue  # saved before an interruption (in a video, or between two hands)
                        writer.add(found.crop, found.hand, label, task.group,
                                   Origin(task.relative, frame.index, frame.timestamp_ms, k, frame.size))
                        rows.setdefault(label, Counter())["saved"] += 1
                if result.warning:
                    warnings.append(result.warning)
                # Marked only once all its samples are written: an interrupted file is redone.
                writer.mark_file(task.relative, result.status)
                if on_file:
                    on_file(result)
                bar.update()
    finally:
        bar.close()
    return ImportSummary(rows, warnings, changed, removed, restored)


def apply_to_saved(tasks: list[Task], writer: DatasetWriter, options: ImportOptions) -> tuple[int, int, int]:
    """Give the samples already saved from ``tasks``' files what importing them now would: the review's label for
    their frame (or their folder's, through ``--map``) and the group rule's group; the samples the review drops
    move to the trash, and those an earlier review dropped that this one keeps come back from it (not the ones
    removed by hand). Returns (samples changed, samples removed, samples restored).

    Without ``options.update_saved`` a change is refused in one line (:class:`UserError`) and nothing is touched:
    an import re-run with a forgotten ``--map`` must not relabel a whole dataset.
    """
    changes, drops, first = _changes(tasks, writer.rows(), options)
    by_file = {task.relative: task for task in tasks}
    back = [removed for removed in writer.dropped_by_review()
            if (task := by_file.get(removed.row["source"])) is not None
            and options.review.label(task.relative, int(removed.row["frame"]), task.label) is not None
            and not writer.has(task.relative, int(removed.row["frame"]), int(removed.row["hand"]))]
    if not changes and not drops and not back:
        return 0, 0, 0
    if not options.update_saved:
        first = first or f"{back[0].row['source']} kept again"
        what = [f"{verb} {n}" for verb, n in (("change", len(changes)), ("drop", len(drops)), ("bring back", len(back))) if n]
        said = what[0] if len(what) == 1 else ", ".join(what[:-1]) + " and " + what[-1]
        raise UserError(f"{writer.root}: this import would {said} of the samples saved before (first: {first}); run it "
                        "with the --map, --review and --group-by the dataset was imported with, or add --update-saved to "
                        "give them these")
    for removed in back:
        writer.restore(removed)
    if back:  # back under the label they were dropped with: given this import's like the others
        changes, drops, _ = _changes(tasks, writer.rows(), options)
    changed = writer.update(changes) if changes else 0
    return changed, len(writer.remove_samples(drops, by_review=True)) if drops else 0, len(back)


def _changes(tasks: list[Task], rows: list[dict], options: ImportOptions) -> tuple[dict, list[str], str | None]:
    """What importing ``tasks`` now gives the saved ``rows``: ({id: {"label"/"group": new}}, the ids the review
    drops, a line about the first of them)."""
    saved: dict[str, list[dict]] = {}
    for row in rows:
        saved.setdefault(row["source"], []).append(row)
    changes, drops, first = {}, [], None
    for task in tasks:
        for row in saved.get(task.relative, ()):
            label = options.review.label(task.relative, int(row["frame"]), task.label)
            if label is None:
                drops.append(row["id"])
                first = first or f"{task.relative} dropped"
                continue
            change = {key: value for key, value in (("label", label), ("group", task.group)) if row[key] != value}
            if change:
                changes[row["id"]] = change
                first = first or f"{task.relative}: " + ", ".join(f"{k} {row[k]} -> {v}" for k, v in change.items())
    return changes, drops, first


def detection_rate(summary: ImportSummary) -> float:
    """Share of readable files in which at least one hand was found."""
    found = summary.total("found")
    seen = found + summary.total("no_hand")
    return found / seen if seen else float("nan")

