"""The on-disk dataset with real crops: writing, undo, crash recovery, labels."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.data.load import affines_of, landmarks_of
from pipeline.data.store import AFFINE_COLUMNS, COLUMNS, INDEX, LANDMARK_COLUMNS, DatasetWriter, read_rows
from pipeline.errors import UserError
from pipeline.labels import check_label
from pipeline.preprocess.crops import CropSettings, crop_hand

SETTINGS = CropSettings()


@pytest.fixture(scope="module")
def samples(open_palm, two_palms, left_palm):
    """Four real hands from three photos: (photo, hand index, hand, crop)."""
    out = []
    for photo in (open_palm, two_palms, left_palm):
        for i, hand in enumerate(photo.hands):
            out.append((photo, i, hand, crop_hand(photo.image, hand, SETTINGS)))
    assert len(out) == 4
    return out


def _add(writer, sample, label="five", group="g1", source=None, frame=0):
    photo, i, hand, crop = sample
    return writer.add(crop, hand, label, group, source or photo.path.name, frame, 40 * frame, i, photo.size)


def _rows(root: Path) -> list[dict]:
    return read_rows(root / INDEX)


def _fill(root: Path, samples, n_groups: int = 3) -> DatasetWriter:
    """Twelve rows: the four hands under labels five/palm, spread over ``n_groups`` groups."""
    writer = DatasetWriter(root, SETTINGS)
    for k in range(12):
        _add(writer, samples[k % 4], label=("five", "palm")[k % 2], group=f"s{k % n_groups}", source=f"f{k}.jpg")
    return writer


def test_writer_appends_rows_and_both_renders(tmp_path, samples):
    root = tmp_path / "ds"
    with DatasetWriter(root, SETTINGS) as writer:
        saved = [_add(writer, s, label=("five", "palm")[k % 2], source=f"p{k}.jpg") for k, s in enumerate(samples)]
        assert writer.counts() == {"five": 2, "palm": 2}
    assert [s.id for s in saved] == ["000000", "000001", "000002", "000003"]
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["labels"] == ["five", "palm"] and CropSettings.from_dict(meta["crop"]) == SETTINGS
    with open(root / INDEX, newline="") as f:
        assert next(csv.reader(f)) == COLUMNS
    rows = _rows(root)
    assert [r["id"] for r in rows] == [s.id for s in saved]
    for row, (photo, i, hand, crop) in zip(rows, samples):
        small = cv2.imread(str(root / "crops" / row["label"] / f"{row['id']}.png"), cv2.IMREAD_UNCHANGED)
        large = cv2.imread(str(root / "large" / row["label"] / f"{row['id']}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(small, crop.image) and np.array_equal(large, crop.large)  # PNG is lossless
        assert row["handedness"] == hand.handedness and int(row["hand"]) == i
        assert int(row["mirrored"]) == int(crop.mirrored)
        assert (int(row["width"]), int(row["height"])) == photo.size
    import pandas as pd

    index = pd.DataFrame(rows).astype({c: float for c in LANDMARK_COLUMNS + AFFINE_COLUMNS})
    marks, affines = landmarks_of(index), affines_of(index)
    for k, (_, _, hand, crop) in enumerate(samples):
        assert np.abs(marks[k] - hand.landmarks).max() <= 0.0005 + 1e-6  # written with 3 decimals
        assert np.allclose(affines[k], crop.affine, rtol=1e-7, atol=1e-7)


def test_undo_moves_files_to_trash_and_ids_are_never_reused(tmp_path, samples):
    root = tmp_path / "ds"
    with DatasetWriter(root, SETTINGS) as writer:
        assert writer.undo() is None  # nothing added in this session
        for k in range(3):
            _add(writer, samples[k], source=f"p{k}.jpg")
        assert writer.has("p2.jpg")
        gone = writer.undo()
        assert gone.id == "000002" and gone.source == "p2.jpg"
        assert not writer.has("p2.jpg") and writer.has("p1.jpg")
        assert [r["id"] for r in _rows(root)] == ["000000", "000001"]
        assert not (root / "crops" / "five" / "000002.png").exists()
        assert (root / "trash" / "crops" / "five" / "000002.png").is_file()
        assert (root / "trash" / "large" / "five" / "000002.png").is_file()
        assert _add(writer, samples[3], source="p3.jpg").id == "000003"  # not 000002 again
        assert writer.undo().id == "000003"
        assert writer.undo().id == "000001"
    assert [r["id"] for r in _rows(root)] == ["000000"]
    # A new session continues after every id ever handed out, the trashed ones included.
    with DatasetWriter(root, SETTINGS) as writer:
        assert writer.undo() is None  # the earlier session's samples are not this one's to undo
        assert _add(writer, samples[0], source="again.jpg").id == "000004"
    ids = [r["id"] for r in _rows(root)]
    assert ids == ["000000", "000004"] and len(set(ids)) == len(ids)


def test_undo_of_one_hand_keeps_the_other_hand_of_that_frame(tmp_path, samples):
    with DatasetWriter(tmp_path / "ds", SETTINGS) as writer:
        _add(writer, samples[1], source="two.jpg")
        _add(writer, samples[2], source="two.jpg")
        assert writer.has("two.jpg", 0, 0) and writer.has("two.jpg", 0, 1)
        writer.undo()
        assert writer.has("two.jpg") and writer.has("two.jpg", 0, 0) and not writer.has("two.jpg", 0, 1)
        writer.undo()
        assert not writer.has("two.jpg") and not writer.has("two.jpg", 0, 0)


def test_reopening_continues_ids_labels_and_skips(tmp_path, samples):
    root = tmp_path / "ds"
    with DatasetWriter(root, SETTINGS, labels=["fist", "five"]) as writer:
        _add(writer, samples[0], source="a.jpg")
        writer.mark_file("a.jpg", "found")
    with DatasetWriter(root, SETTINGS, labels=["palm"]) as writer:
        assert writer.labels == ["fist", "five", "palm"]
        assert writer.has("a.jpg") and not writer.has("a.jpg", frame=1) and writer.file_status("a.jpg") == "found"
        assert writer.file_status("b.jpg") is None
        assert _add(writer, samples[1], label="palm", source="b.jpg").id == "000001"
        assert writer.counts() == {"fist": 0, "five": 1, "palm": 1}


def test_crash_between_images_and_row_does_not_reuse_the_id(tmp_path, samples):
    root = tmp_path / "ds"
    with DatasetWriter(root, SETTINGS) as writer:
        _add(writer, samples[0])
    # The images of sample 000001 were written, then the process died before its row.
    (root / "crops" / "five" / "000001.png").write_bytes((root / "crops" / "five" / "000000.png").read_bytes())
    with DatasetWriter(root, SETTINGS) as writer:
        assert _add(writer, samples[1], source="b.jpg").id == "000002"
    assert (root / "crops" / "five" / "000001.png").is_file()  # never overwritten


def test_other_crop_settings_or_a_foreign_folder_are_refused(tmp_path, samples):
    root = tmp_path / "ds"
    with DatasetWriter(root, SETTINGS) as writer:
        _add(writer, samples[0])
        with pytest.raises(ValueError):  # a crop made with other settings: a programming error
            writer.add(crop_hand(samples[0][0].image, samples[0][2], dataclasses.replace(SETTINGS, size=32)),
                       samples[0][2], "five", "g", "x.jpg")
    for other in (dataclasses.replace(SETTINGS, mask="hull"), dataclasses.replace(SETTINGS, size=32),
                  dataclasses.replace(SETTINGS, rotate=False)):
        with pytest.raises(UserError) as info:
            DatasetWriter(root, other)
        assert str(root) in str(info.value) and "crop settings" in str(info.value)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "me.jpg").write_bytes(b"x")
    with pytest.raises(UserError, match="not a dataset"):
        DatasetWriter(foreign, SETTINGS)
    assert sorted(p.name for p in foreign.iterdir()) == ["me.jpg"]
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        DatasetWriter(a_file, SETTINGS)


@pytest.mark.parametrize("label", ["", "   ", "../x", "a/b", "a\\b", ".hidden", " lead", "x" * 65, "a:b"])
def test_bad_labels_are_refused(tmp_path, samples, label):
    with pytest.raises(UserError):
        check_label(label)
    root = tmp_path / "ds"
    with pytest.raises(UserError):
        DatasetWriter(root, SETTINGS, labels=[label])
    with DatasetWriter(root, SETTINGS) as writer:
        with pytest.raises(UserError):
            _add(writer, samples[0], label=label)
        assert writer.labels == []
    assert _rows(root) == []
    assert not (tmp_path / "x").exists() and not (root / "crops").exists()
    assert check_label("open_palm-2") == "open_palm-2"


def _cut_positions(line: str) -> list[int]:
    """Where a crash may cut the last row: every 9th byte, plus both sides of each quote."""
    cuts = set(range(1, len(line), 9)) | {len(line) // 2, len(line) - 1, len(line)}
    cuts |= {k for k, ch in enumerate(line) if ch == '"'} | {k + 1 for k, ch in enumerate(line) if ch == '"'}
    return sorted(c for c in cuts if 0 < c <= len(line))


def test_partial_last_line_is_dropped_and_the_next_row_starts_fresh(tmp_path, samples):
    root = tmp_path / "ds"
    with DatasetWriter(root, SETTINGS) as writer:
        _add(writer, samples[0], source="a.jpg")
        _add(writer, samples[1], source="b.jpg")
    full = (root / INDEX).read_bytes()
    head, last = full[: full.rstrip(b"\n").rfind(b"\n") + 1], full.rstrip(b"\n")[full.rstrip(b"\n").rfind(b"\n") + 1:]
    assert last.startswith(b"000001,") and last.endswith(b'}"')
    cuts = _cut_positions(last.decode())
    assert len(cuts) > 80
    for cut in cuts:
        (root / INDEX).write_bytes(head + last[:cut])
        # Whole: only the newline is missing, or also the closing quote after a complete JSON object.
        whole = cut >= len(last) - 1
        read = _rows(root)
        assert [r["source"] for r in read] == (["a.jpg", "b.jpg"] if whole else ["a.jpg"]), cut
        with DatasetWriter(root, SETTINGS) as writer:
            assert writer.has("b.jpg") == whole
            sample = _add(writer, samples[2], source="c.jpg")
        assert sample.id == "000002"  # b's images exist, so its id is not handed out again
        text = (root / INDEX).read_bytes()
        assert text.endswith(b"\n") and text.count(b"\n") == (4 if whole else 3), cut
        assert [r["source"] for r in _rows(root)] == (["a.jpg", "b.jpg", "c.jpg"] if whole else ["a.jpg", "c.jpg"])
        # Undo the row c for the next cut: its images go to the trash.
        for sub in ("crops", "large"):
            (root / sub / "five" / "000002.png").unlink()
    # The brief's case exactly: half a row appended without a newline.
    (root / INDEX).write_bytes(full + last[: len(last) // 2])
    assert [r["id"] for r in _rows(root)] == ["000000", "000001"]
    with DatasetWriter(root, SETTINGS) as writer:
        _add(writer, samples[3], source="d.jpg")
    assert [r["source"] for r in _rows(root)] == ["a.jpg", "b.jpg", "d.jpg"]
    assert (root / INDEX).read_bytes().startswith(full)


def test_an_empty_index_gets_its_header(tmp_path, samples):
    root = tmp_path / "ds"
    DatasetWriter(root, SETTINGS).close()
    (root / INDEX).write_bytes(b"")  # killed before the header was written
    with DatasetWriter(root, SETTINGS) as writer:
        _add(writer, samples[0])
    assert len(_rows(root)) == 1


def test_counts_follow_labels(tmp_path, samples):
    with _fill(tmp_path / "ds", samples) as writer:
        assert writer.counts() == {"five": 6, "palm": 6}
        assert Counter(r["group"] for r in _rows(tmp_path / "ds")) == {"s0": 4, "s1": 4, "s2": 4}
