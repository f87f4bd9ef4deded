"""The review grid on a real dataset: selection and pages, deleting by key and by click, undo across labels."""

from __future__ import annotations

from helpers import fill_dataset, index_rows
from pipeline.data.store import INDEX, read_rows
from pipeline.ui.review_grid import COLUMNS, ROWS, ReviewAction, ReviewState, click, handle_review_key, page_start, render_review, tile_at, tile_boxes

SHAPE = (360, 640, 3)
PAGE = COLUMNS * ROWS


def grow(writer, samples, n: int) -> None:
    """``n`` more rows of five (the fixture's four hands over and over)."""
    from helpers import add_sample

    for k in range(n):
        add_sample(writer, samples[k % 4], label="five", source=f"more{k}.jpg")


def test_keys_move_the_selection_within_the_samples_and_pages_follow(tmp_path, samples):
    with fill_dataset(tmp_path / "ds", samples) as writer:
        grow(writer, samples, 20)  # five: 6 + 20 = 26 samples, two pages
        state = ReviewState.of(writer, "five")
        assert len(state.ids) == 26 and state.ids == sorted(state.ids, key=int, reverse=True)  # newest first
        counts = writer.counts()
        for key, expected in (("d", 1), ("s", 1 + COLUMNS), ("a", COLUMNS), ("w", 0), ("w", 0), ("a", 0)):
            assert handle_review_key(state, ord(key), writer, counts) is ReviewAction.MOVE
            assert state.selected == expected, key
        for _ in range(10):
            handle_review_key(state, ord("s"), writer, counts)
        assert state.selected == 25 and page_start(state.selected) == PAGE  # the last sample, on page 2
        assert [handle_review_key(state, ord(k), writer, counts) for k in "[vrqb"] == [
            ReviewAction.LABEL, ReviewAction.BACK, ReviewAction.RECORD, ReviewAction.QUIT, ReviewAction.NONE]
        assert handle_review_key(state, 27, writer, counts) is ReviewAction.BACK and handle_review_key(state, -1, writer, counts) is ReviewAction.NONE


def test_deleting_the_last_sample_selects_the_one_before_and_undo_puts_it_back(tmp_path, samples):
    with fill_dataset(tmp_path / "ds", samples) as writer:
        state = ReviewState.of(writer, "five")
        counts = writer.counts()
        oldest = state.ids[-1]
        state.selected = len(state.ids) - 1
        assert handle_review_key(state, ord("x"), writer, counts) is ReviewAction.DELETE
        assert oldest not in state.ids and state.selected == len(state.ids) - 1 == 4
        assert counts == writer.counts() == {"five": 5, "palm": 6}
        assert [r["id"] for r in read_rows(writer.root / "trash" / INDEX)] == [oldest]
        handle_review_key(state, 8, writer, counts)  # backspace deletes too
        assert len(state.ids) == 4 and counts["five"] == 4
        # z restores the last delete first, back in its place, newest first, and selected.
        handle_review_key(state, ord("z"), writer, counts)
        assert state.ids[-1] != oldest and counts["five"] == 5 and state.ids == sorted(state.ids, key=int, reverse=True)
        handle_review_key(state, ord("z"), writer, counts)
        assert state.ids[-1] == oldest and state.selected == 5 and counts == writer.counts() == {"five": 6, "palm": 6}
        handle_review_key(state, ord("z"), writer, counts)
        assert state.message == "no delete to undo" and read_rows(writer.root / "trash" / INDEX) == []


def test_undo_reaches_deletes_made_in_another_labels_grid(tmp_path, samples):
    with fill_dataset(tmp_path / "ds", samples) as writer:
        counts, removed = writer.counts(), []
        palm = ReviewState.of(writer, "palm", removed)
        handle_review_key(palm, ord("x"), writer, counts)
        five = ReviewState.of(writer, "five", removed)  # ] to the next label: a new grid, the same undo list
        handle_review_key(five, ord("z"), writer, counts)
        assert counts == writer.counts() == {"five": 6, "palm": 6} and five.ids == ReviewState.of(writer, "five").ids


def test_a_click_deletes_the_tile_under_it_on_the_page_shown(tmp_path, samples):
    with fill_dataset(tmp_path / "ds", samples) as writer:
        grow(writer, samples, 20)
        state, counts = ReviewState.of(writer, "five"), writer.counts()
        boxes = tile_boxes(SHAPE)
        assert len(boxes) == PAGE and all(x1 <= SHAPE[1] and y1 <= SHAPE[0] for _, _, x1, y1 in boxes)
        state.selected = PAGE + 1  # page 2 is shown: its tiles are samples PAGE...
        x0, y0, x1, y1 = boxes[3]
        target = state.ids[PAGE + 3]
        assert tile_at(((x0 + x1) // 2, (y0 + y1) // 2), boxes) == 3 and tile_at((0, 0), boxes) is None
        click(state, ((x0 + x1) // 2, (y0 + y1) // 2), SHAPE, writer, counts)
        assert target not in {r["id"] for r in index_rows(writer.root)} and counts["five"] == 25
        click(state, (1, 1), SHAPE, writer, counts)  # between tiles: nothing
        x0, y0, x1, y1 = boxes[-1]
        click(state, (x0 + 1, y0 + 1), SHAPE, writer, counts)  # a tile past the last sample: nothing
        assert counts["five"] == 25 and len(state.ids) == 25
        # The screen: the canvas, the selected tile outlined, the large render in each tile.
        image = render_review(SHAPE, state, writer.root)
        assert image.shape == SHAPE and (image == 24).all(-1).mean() > 0.2
