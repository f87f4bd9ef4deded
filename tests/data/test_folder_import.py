"""Importing a photo folder into a dataset: an interrupted photo is completed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers import ctrl_c_at_add, index_rows, link, require
from pipeline.data.folder_import import import_folder
from pipeline.data.store import DatasetWriter
from pipeline.preprocess.crops import CropSettings


def test_interrupt_between_two_hands_of_a_photo_is_completed(two_palms, open_palm, tmp_path):
    src = tmp_path / "src"
    link(two_palms.path, src / "a" / two_palms.path.name)
    link(open_palm.path, src / "b" / open_palm.path.name)
    data = tmp_path / "ds"
    settings = CropSettings()
    with DatasetWriter(data, settings) as writer:
        ctrl_c_at_add(writer, 2)  # Ctrl-C after the first of the two hands was saved
        with pytest.raises(KeyboardInterrupt):
            import_folder(src, writer, progress=False)
    assert [(r["source"], r["hand"]) for r in index_rows(data)] == [("a/996_pic00037.jpg", "0")]
    with DatasetWriter(data, settings) as writer:
        summary = import_folder(src, writer, progress=False)
    assert summary.total("saved") == 2 and summary.total("skipped") == 0
    keys = [(r["source"], r["hand"]) for r in index_rows(data)]
    assert sorted(keys) == [("a/996_pic00037.jpg", "0"), ("a/996_pic00037.jpg", "1"), ("b/2_pic00004.jpg", "0")]


def test_retry_missed_searches_again_only_the_files_found_without_a_hand(data_dir, open_palm, tmp_path, monkeypatch):
    """An import made without the border finds no hand in a close-up; ``retry_missed`` finds it and appends
    its row, and leaves the photos already imported alone."""
    import pipeline.preprocess.hands as hands_module
    from pipeline.data.folder_import import ImportOptions

    close_up = require(data_dir / "hands_many" / "sign_digits" / "four" / "digit4_IMG_1264.JPG", "a sign_digits close-up")
    src = tmp_path / "src"
    link(close_up, src / "four" / close_up.name)
    link(open_palm.path, src / "five" / open_palm.path.name)
    cv2.imwrite(str(src / "five" / "wall.png"), np.full((120, 160, 3), 128, np.uint8))  # no hand, ever
    data = tmp_path / "ds"
    monkeypatch.setattr(hands_module, "PHOTO_BORDER", 0.0)  # as imports before the border did
    with DatasetWriter(data, CropSettings()) as writer:
        first = import_folder(src, writer, progress=False)
    assert (first.total("found"), first.total("no_hand")) == (1, 2)
    before = index_rows(data)
    monkeypatch.setattr(hands_module, "PHOTO_BORDER", 0.5)
    with DatasetWriter(data, CropSettings()) as writer:
        plain = import_folder(src, writer, progress=False)
    assert plain.total("saved") == 0 and plain.total("skipped") == 3  # without the option: nothing redone
    with DatasetWriter(data, CropSettings()) as writer:
        again = import_folder(src, writer, ImportOptions(retry_missed=True), progress=False)
    assert again.total("saved") == 1 and again.total("skipped") == 1 and again.total("no_hand") == 1
    rows = index_rows(data)
    assert rows[:len(before)] == before
    assert [(r["source"], r["label"]) for r in rows[len(before):]] == [(f"four/{close_up.name}", "four")]
    files = (data / "files.csv").read_text()
    with DatasetWriter(data, CropSettings()) as writer:  # the close-up is now marked found: a third run saves nothing
        assert import_folder(src, writer, ImportOptions(retry_missed=True), progress=False).total("saved") == 0
    assert (data / "files.csv").read_text() == files  # the wall, searched again, is not marked twice
