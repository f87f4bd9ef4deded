"""Importing a photo folder into a dataset: an interrupted photo is completed."""

from __future__ import annotations

import pytest

from helpers import ctrl_c_at_add, index_rows, link
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
