"""The on-disk dataset with real crops: writing, undo, crash recovery, loading, re-rendering, splits."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.crops import CropSettings, crop_hand
from pipeline.data import (
    AFFINE_COLUMNS, COLUMNS, LANDMARK_COLUMNS, INDEX, DatasetWriter, _read_rows, affines_of, check_label, landmarks_of, load_dataset,
    split_by_group, split_by_named_groups,
)
from pipeline.errors import UserError

SETTINGS = CropSettings()
REPO = Path(__file__).resolve().parents[1]


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
    return _read_rows(root / INDEX)


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


def test_load_dataset_gives_uint8_crops_labels_groups_and_is_cached(tmp_path, samples):
    root = tmp_path / "ds"
    _fill(root, samples).close()
    data = load_dataset(root)
    assert data.images.dtype.is_floating_point is False and str(data.images.dtype) == "torch.uint8"
    assert tuple(data.images.shape) == (12, 1, 28, 28)
    assert data.label_names == ["five", "palm"]
    assert data.labels.tolist() == [k % 2 for k in range(12)]
    assert data.groups.tolist() == [f"s{k % 3}" for k in range(12)]
    assert data.settings == SETTINGS and len(data) == 12
    for k in range(12):
        assert np.array_equal(data.images[k, 0].numpy(), samples[k % 4][3].image)
    # Cached: the second load is the same object and reads no image (none is left to read).
    os.rename(root / "crops", root / "crops-away")
    assert load_dataset(root) is data
    os.rename(root / "crops-away", root / "crops")
    # One more row changes the index: the next load sees it.
    with DatasetWriter(root, SETTINGS) as writer:
        _add(writer, samples[0], label="fist", source="new.jpg")
    more = load_dataset(root)
    assert more is not data and len(more) == 13 and more.label_names == ["five", "palm", "fist"]
    sub = more.subset([12, 0])
    assert sub.labels.tolist() == [2, 0] and sub.index["source"].tolist() == ["new.jpg", "f0.jpg"]


def test_disk_cache_is_found_by_another_process(tmp_path, samples):
    root = tmp_path / "ds"
    _fill(root, samples).close()
    data = load_dataset(root)
    assert len(list((root / ".cache").glob("*.npy"))) == 1
    # Without the crop images only the disk cache can serve the load. Another process has another
    # str hash seed, so the cache's name must not depend on hash().
    os.rename(root / "crops", root / "crops-away")
    code = ("import sys; from pipeline.data import load_dataset; "
            "print(int(load_dataset(sys.argv[1]).images.sum()))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    proc = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[-1]) == int(data.images.sum())


def test_load_with_another_mask_renders_from_the_large_crops(tmp_path, samples):
    root = tmp_path / "ds"
    _fill(root, samples).close()
    stored = load_dataset(root)
    for other in (dataclasses.replace(SETTINGS, mask="hull"), dataclasses.replace(SETTINGS, mask="none"),
                  dataclasses.replace(SETTINGS, size=14)):
        data = load_dataset(root, other)
        assert tuple(data.images.shape) == (12, 1, other.size, other.size) and data.settings == other
        assert data.labels.tolist() == stored.labels.tolist()
        for k in range(4):
            photo, _, hand, _ = samples[k]
            direct = crop_hand(photo.image, hand, dataclasses.replace(other, render_scale=112 // other.size))
            assert np.abs(data.images[k, 0].numpy().astype(int) - direct.image).max() <= 1
        if other.size == SETTINGS.size:
            assert (data.images != stored.images).sum() > 12 * 20
    with pytest.raises(UserError, match="Re-import"):
        load_dataset(root, dataclasses.replace(SETTINGS, rotate=False))


def test_load_refuses_missing_images_and_non_datasets(tmp_path, samples):
    root = tmp_path / "ds"
    _fill(root, samples).close()
    (root / "crops" / "palm" / "000003.png").unlink()
    with pytest.raises(UserError, match="000003.png"):
        load_dataset(root)
    with pytest.raises(UserError, match="not a dataset"):
        load_dataset(tmp_path)
    empty = tmp_path / "empty"
    DatasetWriter(empty, SETTINGS).close()
    with pytest.raises(UserError, match="empty"):
        load_dataset(empty)


def _synthetic(seed: int = 0):
    """14 groups of 5 to 60 samples; each group holds one or two of four classes."""
    rng = np.random.default_rng(seed)
    groups, labels = [], []
    for g in range(14):
        size = int(rng.integers(5, 60))
        classes = [g % 4] if g % 3 else [g % 4, (g + 1) % 4]
        groups += [f"g{g:02d}"] * size
        labels += [classes[k % len(classes)] for k in range(size)]
    order = rng.permutation(len(groups))
    return np.array(groups)[order], np.array(labels)[order]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_by_group_is_a_clean_deterministic_partition(seed):
    groups, labels = _synthetic(seed)
    n = len(groups)
    train, val, test = split_by_group(groups, labels, val=0.2, test=0.2, seed=seed)
    both = np.concatenate([train, val, test])
    assert len(both) == n and np.array_equal(np.sort(both), np.arange(n))
    sets = [set(groups[s].tolist()) for s in (train, val, test)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    for part in (val, test):
        assert set(labels[part].tolist()) == {0, 1, 2, 3}
        assert 0.08 < len(part) / n < 0.35
    assert len(train) > n / 2
    again = split_by_group(groups, labels, val=0.2, test=0.2, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    other = split_by_group(groups, labels, val=0.2, test=0.2, seed=seed + 100)
    assert any(not np.array_equal(a, b) for a, b in zip((train, val, test), other))


def test_split_by_group_on_real_fingers_sessions(fingers_dir):
    from pipeline.ingest import session_of

    paths = [p for label in "012345" for p in sorted((fingers_dir / label).glob("*.jpg"))]
    groups = np.array([session_of(p) for p in paths])
    labels = np.array([int(p.parent.name) for p in paths])
    assert len(paths) == 1523
    train, val, test = split_by_group(groups, labels, seed=0)
    for part in (val, test):
        assert set(labels[part].tolist()) == set(range(6))
        assert 0.05 < len(part) / len(paths) < 0.3
    assert not set(groups[train]) & set(groups[val]) and not set(groups[val]) & set(groups[test])


def test_split_by_group_needs_three_groups():
    with pytest.raises(UserError, match="2 group"):
        split_by_group(["a", "a", "b"], [0, 1, 0])


def test_split_by_named_groups():
    groups = np.array(["a", "b", "c", "a", "d", "b", "c"])
    train, val, test = split_by_named_groups(groups, ["b"], ["c", "d"])
    assert train.tolist() == [0, 3] and val.tolist() == [1, 5] and test.tolist() == [2, 4, 6]
    train, val, test = split_by_named_groups(groups, [], ["a"])
    assert train.tolist() == [1, 2, 4, 5, 6] and val.tolist() == [] and test.tolist() == [0, 3]
    with pytest.raises(UserError, match="unknown group.*zz"):
        split_by_named_groups(groups, ["zz"], [])
    with pytest.raises(UserError, match="both"):
        split_by_named_groups(groups, ["a"], ["a", "b"])


def test_counts_follow_labels(tmp_path, samples):
    with _fill(tmp_path / "ds", samples) as writer:
        assert writer.counts() == {"five": 6, "palm": 6}
        assert Counter(r["group"] for r in _rows(tmp_path / "ds")) == {"s0": 4, "s1": 4, "s2": 4}
