"""The studio's review grid: one label's crops, newest first, to delete the bad ones (to ``trash/``, undoable).

* :class:`ReviewState` and :func:`handle_review_key` / :func:`click`: which sample is selected, and
  removing or restoring one through the dataset writer, with the label counts kept in step.
* :func:`layout` and :func:`render_review`: the tiles (each the sample's large render, with the
  28x28 crop the model sees in its corner) on a canvas of the frame's size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from pipeline.data.store import Removed, Sample
from pipeline.draw import annotations as draw
from pipeline.ui.window import ESC, key_code

LEGEND = "a d w s select  x delete (to trash/)  z undo delete  [ ] label  click: delete  v back  r record  q quit"
COLUMNS, ROWS = 6, 3


class ReviewAction(Enum):
    """What a key does in the review grid."""

    NONE = "none"
    MOVE = "move"
    DELETE = "delete"
    UNDO = "undo"
    LABEL = "label"
    BACK = "back"  # to the view the review was opened from
    RECORD = "record"  # to the recording view
    QUIT = "quit"


class Removes(Protocol):
    """What the review needs of a writer (a :class:`~pipeline.data.store.DatasetWriter`)."""

    def remove(self, sample_id: str) -> Removed | None: ...

    def restore(self, removed: Removed) -> Sample: ...

    def rows(self) -> list[dict]: ...


@dataclass
class ReviewState:
    """The grid of one label: its sample ids newest first, the selected one, and the removals to undo (last first)."""

    label: str
    ids: list[str]
    selected: int = 0
    removed: list[Removed] = field(default_factory=list)
    message: str = ""

    @classmethod
    def of(cls, writer: Removes, label: str, removed: list[Removed] | None = None) -> "ReviewState":
        """The review of ``label`` as the dataset's index has it now. ``removed``: the deletes to undo, shared
        with the reviews of other labels (``z`` undoes the last delete, whichever label it was)."""
        ids = sorted((r["id"] for r in writer.rows() if r["label"] == label), key=int, reverse=True)
        return cls(label, ids, removed=[] if removed is None else removed,
                   message=f"{len(ids)} samples of '{label}', newest first")


_MOVES = {ord("a"): -1, ord("d"): 1, ord("w"): -COLUMNS, ord("s"): COLUMNS}


def handle_review_key(state: ReviewState, key: int, writer: Removes, counts: dict[str, int]) -> ReviewAction:
    """Apply one key to the review: move the selection, delete the selected sample, undo the last delete.

    ``[`` / ``]`` (another label), ``v`` / Esc (back), ``r`` (the recording view) and ``q`` are returned for the
    caller to act on.
    """
    key = key_code(key)
    if key < 0:
        return ReviewAction.NONE
    char = chr(key).lower()
    if ord(char) in _MOVES:
        if state.ids:
            state.selected = min(max(0, state.selected + _MOVES[ord(char)]), len(state.ids) - 1)
        return ReviewAction.MOVE
    if char == "x" or key in (8, 127):
        delete(state, state.selected, writer, counts)
        return ReviewAction.DELETE
    if char == "z":
        undo_delete(state, writer, counts)
        return ReviewAction.UNDO
    if char in "[]":
        return ReviewAction.LABEL
    if char == "v" or key == ESC:
        return ReviewAction.BACK
    if char == "r":
        return ReviewAction.RECORD
    if char == "q":
        return ReviewAction.QUIT
    return ReviewAction.NONE


def delete(state: ReviewState, at: int, writer: Removes, counts: dict[str, int]) -> None:
    """Remove the sample at position ``at`` of the grid (its files to ``trash/``) and take it off the counts."""
    if not 0 <= at < len(state.ids):
        state.message = "nothing to delete"
        return
    sample_id = state.ids[at]
    removed = writer.remove(sample_id)
    del state.ids[at]
    if removed is None:  # undone already, from the recording keys
        state.message = f"sample {sample_id} was already removed"
    else:
        state.removed.append(removed)
        counts[state.label] = max(0, counts.get(state.label, 0) - 1)
        state.message = f"deleted {sample_id} (in trash/; z undoes); '{state.label}' has {counts[state.label]}"
    state.selected = min(at, max(0, len(state.ids) - 1))


def undo_delete(state: ReviewState, writer: Removes, counts: dict[str, int]) -> None:
    """Put the last deleted sample back where it was in the grid, and on the counts."""
    if not state.removed:
        state.message = "no delete to undo"
        return
    sample = writer.restore(state.removed.pop())
    counts[sample.label] = counts.get(sample.label, 0) + 1
    if sample.label == state.label:
        state.ids = sorted([*state.ids, sample.id], key=int, reverse=True)
        state.selected = state.ids.index(sample.id)
    state.message = f"restored {sample.id}; '{sample.label}' has {counts[sample.label]}"


def layout(width: int, height: int, top: int, bottom: int, margin: int = 8) -> list[tuple[int, int, int, int]]:
    """The tiles' boxes ``(x0, y0, x1, y1)``, row by row, in the band from ``top`` to ``bottom``."""
    side = max(8, min((width - margin * (COLUMNS + 1)) // COLUMNS, (bottom - top - margin * ROWS) // ROWS))
    x_start = (width - COLUMNS * side - (COLUMNS - 1) * margin) // 2
    return [(x_start + c * (side + margin), top + r * (side + margin),
             x_start + c * (side + margin) + side, top + r * (side + margin) + side)
            for r in range(ROWS) for c in range(COLUMNS)]


def page_start(selected: int) -> int:
    """The grid position shown in the first tile: pages of :data:`COLUMNS` x :data:`ROWS`."""
    return selected // (COLUMNS * ROWS) * (COLUMNS * ROWS)


def tile_at(point: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> int | None:
    """Which tile (0-based on the page) holds ``point``, or None."""
    x, y = point
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        if x0 <= x < x1 and y0 <= y < y1:
            return i
    return None


def tile_boxes(shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """The tiles of the review screen on a frame of ``shape``: between the title line and the two lines at the bottom."""
    line = draw.text_height(np.empty((shape[0], 1), np.uint8))
    return layout(shape[1], shape[0], 8 + line + 8, shape[0] - 8 - 2 * line - 8)


def click(state: ReviewState, point: tuple[int, int], shape: tuple[int, ...], writer: Removes,
          counts: dict[str, int]) -> None:
    """A left click at ``point`` on a frame of ``shape``: delete the sample of the tile under it."""
    at = tile_at(point, tile_boxes(shape))
    start = page_start(state.selected)
    if at is not None and start + at < len(state.ids):
        delete(state, start + at, writer, counts)


def read_tile(root: Path, label: str, sample_id: str) -> np.ndarray:
    """One sample's large render with its model crop pasted in the top-left corner (BGR); gray when a file is gone."""
    large = cv2.imread(str(root / "large" / label / f"{sample_id}.png"), cv2.IMREAD_COLOR)
    small = cv2.imread(str(root / "crops" / label / f"{sample_id}.png"), cv2.IMREAD_GRAYSCALE)
    if large is None:
        large = np.full((96, 96, 3), 64, np.uint8)
    if small is not None:
        draw.paste_inset(large, small, "top-left", max(1, large.shape[0] // (2 * small.shape[0])), margin=2)
    return large


def render_review(frame_shape: tuple[int, ...], state: ReviewState, root: Path,
                  cache: dict[str, np.ndarray] | None = None, legend: str = LEGEND) -> np.ndarray:
    """The review screen, the size of the camera frame: a title, one page of tiles, the message and the keys."""
    cache = {} if cache is None else cache
    image = np.full((frame_shape[0], frame_shape[1], 3), 24, np.uint8)
    n = len(state.ids)
    start = page_start(state.selected)
    pages = max(1, -(-n // (COLUMNS * ROWS)))
    title = (f"review '{state.label}': {n} samples, newest first   "
             f"{state.selected + 1 if n else 0}/{n}   page {start // (COLUMNS * ROWS) + 1}/{pages}")
    draw.put_text(image, title, (8, 8), scale=draw.scale_to_fit(image, title, image.shape[1] - 16))
    boxes = tile_boxes(image.shape)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        at = start + i
        if at >= n:
            break
        sample_id = state.ids[at]
        if sample_id not in cache:
            cache[sample_id] = read_tile(root, state.label, sample_id)
        image[y0:y1, x0:x1] = cv2.resize(cache[sample_id], (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        chosen = at == state.selected
        cv2.rectangle(image, (x0 - 2, y0 - 2), (x1 + 1, y1 + 1), draw.AMBER if chosen else draw.MUTED, 3 if chosen else 1)
        draw.put_text(image, sample_id, (x0, y1 - draw.text_height(image, 0.4)), scale=0.4)
    if not n:
        draw.put_text(image, f"no samples of '{state.label}' yet", (8, boxes[0][1]), color=draw.AMBER)
    draw.draw_footer(image, [state.message, legend], scale=draw.scale_to_fit(image, legend, image.shape[1] - 16))
    return image


__all__ = ["COLUMNS", "LEGEND", "ROWS", "ReviewAction", "ReviewState", "click", "delete", "handle_review_key",
           "layout", "page_start", "read_tile", "render_review", "tile_at", "tile_boxes", "undo_delete"]
