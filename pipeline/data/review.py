"""Label reviews: a person's decisions about imported files, written down so every import applies them alike.

A review is a tab-separated file, committed beside the datasets (``data/reviews/SOURCE.tsv``)::

    # comment lines say what was reviewed, by whom and how
    file                      label   note
    five/IMG-0073.jpg         three   index + middle + ring
    five/IMG-0077.jpg         drop    too dark to count
    none/clip.mp4#120-194     none    the thumbs-up stretch

``file`` is a path relative to the imported folder; a video may name frames ``#FIRST-LAST``
(inclusive; a frame named by no range keeps the folder's label). ``label`` is the label to use
instead of the folder's, or ``drop`` to leave the file (or frames) out. Files the review does not
name keep their folder's label.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import UserError
from pipeline.labels import check_label

DROP = "drop"
_FRAMES = re.compile(r"^(.*)#(\d+)-(\d+)$")


@dataclass(frozen=True)
class Decision:
    """One line of a review: frames ``first``..``last`` of a file (None: the whole file) get ``label``."""

    label: str
    note: str = ""
    first: int | None = None
    last: int | None = None

    def covers(self, frame: int) -> bool:
        return self.first is None or self.first <= frame <= self.last


@dataclass
class Review:
    """The decisions of one review file, by the file they are about."""

    path: Path | None = None
    decisions: dict[str, list[Decision]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str | Path) -> "Review":
        """Read a review file; a malformed line is one :class:`UserError` naming the file and line."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such review file; check the path given to --review")
        review = cls(path)
        with open(path, encoding="utf-8", newline="") as f:
            lines = [(n, line) for n, line in enumerate(f, start=1) if line.strip() and not line.startswith("#")]
        rows = [(n, row) for n, row in zip((n for n, _ in lines), csv.reader((line for _, line in lines), delimiter="\t"))]
        if not rows or [c.strip() for c in rows[0][1][:2]] != ["file", "label"]:
            raise UserError(f"{path}: the first line that is not a comment must be the header 'file<TAB>label<TAB>note'")
        for n, row in rows[1:]:
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise UserError(f"{path}, line {n}: write 'FILE<TAB>LABEL<TAB>NOTE' (LABEL a label or '{DROP}')")
            name, label = row[0].strip(), row[1].strip()
            if label != DROP:
                try:
                    check_label(label)
                except UserError as e:
                    raise UserError(f"{path}, line {n}: {e}") from None
            first = last = None
            frames = _FRAMES.match(name)
            if frames:
                name, first, last = frames.group(1), int(frames.group(2)), int(frames.group(3))
                if last < first:
                    raise UserError(f"{path}, line {n}: frames {first}-{last} run backwards")
            review.decisions.setdefault(name, []).append(Decision(label, row[2].strip() if len(row) > 2 else "", first, last))
        return review

    def check_files(self, known: set[str]) -> None:
        """Every file the review names must be one of the imported folder's files."""
        unknown = sorted(set(self.decisions) - known)
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise UserError(f"{self.path}: names {unknown[0]}{more}, which the imported folder does not hold; "
                            "fix the path in the review, or import the folder it was written for")

    def label(self, source: str, frame: int, default: str) -> str | None:
        """The label of one photo or frame: the review's decision, or ``default``; None when it is dropped."""
        for decision in self.decisions.get(source, ()):
            if decision.covers(frame):
                return None if decision.label == DROP else decision.label
        return default

    def whole_file_label(self, source: str, default: str) -> str | None:
        """The label a whole-file decision gives (photos), else ``default``; None when the file is dropped."""
        for decision in self.decisions.get(source, ()):
            if decision.first is None:
                return None if decision.label == DROP else decision.label
        return default

    def counts(self) -> Counter:
        """How many decisions change a label to each label (or drop)."""
        return Counter(d.label for ds in self.decisions.values() for d in ds)
