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

from helpers import REPO, add_sample, fill_dataset, index_rows
from pipeline.data.load import affines_of, landmarks_of
from pipeline.data.store import AFFINE_COLUMNS, COLUMNS, INDEX, LANDMARK_COLUMNS, DatasetWriter, read_meta, read_rows
from pipeline.errors import UserError
from pipeline.labels import check_label
from pipeline.preprocess.crops import CropSettings, crop_hand

SETTINGS = CropSettings()


def render_bytes(root: Path, label: str, sample_id: str) -> tuple[bytes, bytes]:
    """The bytes of a sample's crop and large render, under ``label``."""
    return tuple((root / sub / label / f"{sample_id}.png").read_bytes() for sub in ("crops", "large"))










def test_writer_appends_rows_and_both_renders(tmp_path, samples):
    root = tmp_path / "ds"
    with DatasetWriter(root, SETTINGS) as writer:
        saved = [add_sample(writer, s, label=("five", "palm")[k % 2], source=f"p{k}.jpg") for k, s in enumerate(samples)]
        assert writer.counts() == {"five": 2, "palm": 2}
    assert [s.id for s in saved] == ["000000", "000001", "000002", "000003"]
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["labels"] == ["five", "palm"] and CropSettings.from_dict(meta["crop_settings"]) == SETTINGS
    with open(root / INDEX, newline="") as f:
        assert next(csv.reader(f)) == COLUMNS
    rows = index_rows(root)
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
            add_sample(writer, samples[k], source=f"p{k}.jpg")
        assert writer.has("p2.jpg")
        gone = writer.undo()
        assert gone.id == "000002" and gone.source == "p2.jpg"
        assert not writer.has("p2.jpg") and writer.has("p1.jpg")
        assert [r["id"] for r in index_rows(root)] == ["000000", "000001"]
        assert not (root / "crops" / "five" / "000002.png").exists()
        assert (root / "trash" / "crops" / "five" / "000002.png").is_file()
        assert (root / "trash" / "large" / "five" / "000002.png").is_file()
        assert add_sample(writer, samples[3], source="p3.jpg").id == "000003"  # not 000002 again
        assert writer.undo().id == "000003"
        assert writer.undo().id == "000001"
    assert [r["id"] for r in index_rows(root)] == ["000000"]
    # A new session continues after every id ever handed out, the trashed ones included.
    with DatasetWriter(root, SETTINGS) as writer:
        assert writer.undo() is None  # the earlier session's samples are not this one's to undo
        assert add_sample(writer, samples[0], source="again.jpg").id == "000004"
    ids = [r["id"] for r in index_rows(root)]
    assert ids == ["000000", "000004"] and len(set(ids)) == len(ids)


def test_undo_of_one_hand_keeps_the_other_hand_of_that_frame(tmp_path, samples):
    with DatasetWriter(tmp_path / "ds", SETTINGS) as writer:
        add_sample(writer, samples[1], source="two.jpg")
        add_sample(writer, samples[2], source="two.jpg")
        assert writer.has("two.jpg", 0, 0) and writer.has("two.jpg", 0, 1)
        writer.undo()
        assert writer.has("two.jpg") and writer.has("two.jpg", 0, 0) and not writer.has("two.jpg", 0, 1)
        writer.undo()
        assert not writer.has("two.jpg") and not writer.has("two.jpg", 0, 0)


def test_reopening_continues_ids_labels_and_skips(tmp_path, samples):
    root = tmp_path / "ds"
    with DatasetWriter(root, SETTINGS, labels=["fist", "five"]) as writer:
        add_sample(writer, samples[0], source="a.jpg")
        writer.mark_file("a.jpg", "found")
    with DatasetWriter(root, SETTINGS, labels=["palm"]) as writer:
        assert writer.labels == ["fist", "five", "palm"]
        assert writer.has("a.jpg") and not writer.has("a.jpg", frame=1) and writer.file_status("a.jpg") == "found"
        assert writer.file_status("b.jpg") is None
        assert add_sample(writer, samples[1], label="palm", source="b.jpg").id == "000001"
        assert writer.counts() == {"fist": 0, "five": 1, "palm": 1}


def test_crash_between_images_and_row_does_not_reuse_the_id(tmp_path, samples):
    root = tmp_path / "ds"
    with DatasetWriter(root, SETTINGS) as writer:
        add_sample(writer, samples[0])
    # The images of sample 000001 were written, then the process died before its row.
    (root / "crops" / "five" / "000001.png").write_bytes((root / "crops" / "five" / "000000.png").read_bytes())
    with DatasetWriter(root, SETTINGS) as writer:
        assert add_sample(writer, samples[1], source="b.jpg").id == "000002"
    assert (root / "crops" / "five" / "000001.png").is_file()  # never overwritten


def test_other_crop_settings_or_a_foreign_folder_are_refused(tmp_path, samples):
    root = tmp_path / "ds"
    with DatasetWriter(root, SETTINGS) as writer:
        add_sample(writer, samples[0])
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
            add_sample(writer, samples[0], label=label)
        assert writer.labels == []
    assert index_rows(root) == []
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
        add_sample(writer, samples[0], source="a.jpg")
        add_sample(writer, samples[1], source="b.jpg")
    full = (root / INDEX).read_bytes()
    head, last = full[: full.rstrip(b"\n").rfind(b"\n") + 1], full.rstrip(b"\n")[full.rstrip(b"\n").rfind(b"\n") + 1:]
    assert last.startswith(b"000001,") and last.endswith(b'}"')
    cuts = _cut_positions(last.decode())
    assert len(cuts) > 80
    for cut in cuts:
        (root / INDEX).write_bytes(head + last[:cut])
        # Whole: only the newline is missing, or also the closing quote after a complete JSON object.
        whole = cut >= len(last) - 1
        read = index_rows(root)
        assert [r["source"] for r in read] == (["a.jpg", "b.jpg"] if whole else ["a.jpg"]), cut
        with DatasetWriter(root, SETTINGS) as writer:
            assert writer.has("b.jpg") == whole
            sample = add_sample(writer, samples[2], source="c.jpg")
        assert sample.id == "000002"  # b's images exist, so its id is not handed out again
        text = (root / INDEX).read_bytes()
        assert text.endswith(b"\n") and text.count(b"\n") == (4 if whole else 3), cut
        assert [r["source"] for r in index_rows(root)] == (["a.jpg", "b.jpg", "c.jpg"] if whole else ["a.jpg", "c.jpg"])
        # Undo the row c for the next cut: its images go to the trash.
        for sub in ("crops", "large"):
            (root / sub / "five" / "000002.png").unlink()
    # The brief's case exactly: half a row appended without a newline.
    (root / INDEX).write_bytes(full + last[: len(last) // 2])
    assert [r["id"] for r in index_rows(root)] == ["000000", "000001"]
    with DatasetWriter(root, SETTINGS) as writer:
        add_sample(writer, samples[3], source="d.jpg")
    assert [r["source"] for r in index_rows(root)] == ["a.jpg", "b.jpg", "d.jpg"]
    assert (root / INDEX).read_bytes().startswith(full)


def test_an_empty_index_gets_its_header(tmp_path, samples):
    root = tmp_path / "ds"
    DatasetWriter(root, SETTINGS).close()
    (root / INDEX).write_bytes(b"")  # killed before the header was written
    with DatasetWriter(root, SETTINGS) as writer:
        add_sample(writer, samples[0])
    assert len(index_rows(root)) == 1


def test_counts_follow_labels(tmp_path, samples):
    with fill_dataset(tmp_path / "ds", samples) as writer:
        assert writer.counts() == {"five": 6, "palm": 6}
        assert Counter(r["group"] for r in index_rows(tmp_path / "ds")) == {"s0": 4, "s1": 4, "s2": 4}


# ---------------------------------------------------------------------------------------------
# One writer at a time, and an index that is checked before anything is appended to it


HOLD = """
import sys, time
from pipeline.data.store import DatasetWriter
from pipeline.preprocess.crops import CropSettings
with DatasetWriter(sys.argv[1], CropSettings()):
    print("holding", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_frees_the_folder(tmp_path, samples):
    import signal
    import subprocess
    import sys

    root = tmp_path / "ds"
    with DatasetWriter(root, SETTINGS) as writer:
        add_sample(writer, samples[0], source="a.jpg")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(UserError) as info:
            DatasetWriter(root, SETTINGS)
        assert f"pid {holder.pid}" in str(info.value) and str(root) in str(info.value)
        holder.send_signal(signal.SIGKILL)  # no clean-up at all: the kernel drops the lock
        holder.wait(timeout=30)
    finally:
        holder.kill()
    with DatasetWriter(root, SETTINGS) as writer:  # the stale lock file is no obstacle
        add_sample(writer, samples[1], source="b.jpg")
    assert [r["source"] for r in index_rows(root)] == ["a.jpg", "b.jpg"]


def test_readers_read_while_a_writer_holds_the_lock(tmp_path, samples):
    from pipeline.data.load import load_dataset

    root = tmp_path / "ds"
    with fill_dataset(root, samples) as writer:
        assert len(load_dataset(root)) == 12  # train may read while collect appends
        add_sample(writer, samples[0], source="more.jpg")
    assert len(load_dataset(root)) == 13


def _cut_row(index: bytes, k: int) -> bytes:
    """The index with data row ``k`` cut short inside its settings column (its newline gone with it)."""
    lines = index.split(b"\n")
    lines[k] = lines[k][: lines[k].index(b'"{') + 20]
    return b"\n".join(lines[: k + 1]) + b"".join([lines[k + 1] + b"\n"]) + b"\n".join(lines[k + 2:])


def _damage(root: Path, transform) -> bytes:
    path = root / INDEX
    before = path.read_bytes()
    path.write_bytes(transform(before))
    return path.read_bytes()


@pytest.mark.parametrize("damage, line, words", [
    (lambda b: b.replace(b",group,", b",session,", 1), 1, "missing column(s) group"),
    (lambda b: _cut_row(b, 1), 2, "the next row run into it"),  # a row cut inside its JSON column, mid-file
    (lambda b: b.replace(b"\n000001,palm,", b"\n000001,palm", 1), 3, "fields instead of"),
    (lambda b: b.replace(b"\n000002,five,s2,f2.jpg,0,", b"\n000002,five,s2,f2.jpg,zero,", 1), 4, "frame 'zero'"),
])
def test_a_damaged_index_is_one_line_and_is_never_appended_to(tmp_path, samples, damage, line, words):
    from pipeline.data.load import load_dataset

    root = tmp_path / "ds"
    fill_dataset(root, samples).close()
    damaged = _damage(root, damage)
    for action in (lambda: read_rows(root / INDEX), lambda: DatasetWriter(root, SETTINGS), lambda: load_dataset(root)):
        with pytest.raises(UserError) as info:
            action()
        message = str(info.value)
        assert message.startswith(f"{root / INDEX}, line {line}: ") and words in message and "\n" not in message
    assert (root / INDEX).read_bytes() == damaged  # nothing appended, nothing repaired behind the user's back


def test_remove_and_restore_keep_index_trash_and_files_consistent(tmp_path, samples):
    root = tmp_path / "ds"
    with fill_dataset(root, samples) as writer:
        before = {r["id"]: r for r in index_rows(root)}
        crop_bytes, large_bytes = render_bytes(root, "palm", "000005")
        removed = writer.remove("000005")
        assert writer.remove("000005") is None and writer.remove("999999") is None
        # Out of the index, into trash/ with its whole row; nothing deleted.
        assert "000005" not in {r["id"] for r in index_rows(root)} and len(index_rows(root)) == 11
        assert not (root / "crops" / "palm" / "000005.png").exists()
        assert (root / "trash" / "crops" / "palm" / "000005.png").read_bytes() == crop_bytes
        assert (root / "trash" / "large" / "palm" / "000005.png").read_bytes() == large_bytes
        assert read_rows(root / "trash" / INDEX) == [before["000005"]]
        assert writer.counts() == {"five": 6, "palm": 5}
        assert not writer.has("f5.jpg", 0)  # a re-import would take that file again
        # Restored: the same row and bytes back, the trash index empty again, the counts as before.
        assert writer.restore(removed).id == "000005"
        assert {r["id"]: r for r in index_rows(root)} == before
        assert (root / "crops" / "palm" / "000005.png").read_bytes() == crop_bytes
        assert (root / "large" / "palm" / "000005.png").read_bytes() == large_bytes
        assert read_rows(root / "trash" / INDEX) == [] and not list((root / "trash").glob("*/palm/*.png"))
        assert writer.counts() == {"five": 6, "palm": 6} and writer.has("f5.jpg", 0)
        # Undo skips a sample the review already removed, and takes the one before it.
        writer.remove("000011")
        assert writer.undo().id == "000010"
        assert len(index_rows(root)) == 10 and len(read_rows(root / "trash" / INDEX)) == 2
        new = add_sample(writer, samples[0], source="new.jpg")
        assert new.id == "000012"  # ids in trash/ are never reused


def test_a_crash_in_the_middle_of_remove_leaves_a_dataset_that_loads(tmp_path, samples, monkeypatch):
    from pipeline.data import store
    from pipeline.data.load import load_dataset

    root = tmp_path / "ds"
    replace, calls = store.os.replace, []
    with fill_dataset(root, samples) as writer:
        def crash(*args):
            calls.append(args)
            if len(calls) > 2:  # the trash index, then the index are rewritten (atomic replaces); a kill before the files
                raise KeyboardInterrupt
            return replace(*args)

        monkeypatch.setattr(store.os, "replace", crash)
        with pytest.raises(KeyboardInterrupt):
            writer.remove("000004")
        monkeypatch.undo()
    data = load_dataset(root)  # every row the index names has its files
    assert len(calls) == 3 and str(calls[0][1]).endswith(f"trash/{INDEX}") and str(calls[1][1]) == str(root / INDEX)
    assert len(data) == 11 and "000004" not in set(data.index["id"])
    assert [r["id"] for r in read_rows(root / "trash" / INDEX)] == ["000004"]


def test_update_relabels_and_regroups_moving_the_files_and_nothing_else(tmp_path, samples):
    from pipeline.data.load import load_dataset

    root = tmp_path / "ds"
    with fill_dataset(root, samples) as writer:
        before = {r["id"]: r for r in index_rows(root)}
        crop_bytes, large_bytes = render_bytes(root, "palm", "000001")
        assert writer.update({"000001": {"label": "none"}, "000002": {"group": "s9"}, "000003": {"label": "palm"}}) == 2
        with pytest.raises(ValueError, match="source"):
            writer.update({"000004": {"source": "x.jpg"}})
        index_bytes = (root / INDEX).read_bytes()
        assert writer.update({"000001": {"label": "none"}}) == 0 and (root / INDEX).read_bytes() == index_bytes
        assert writer.labels == ["five", "palm", "none"] and writer.counts() == {"five": 6, "palm": 5, "none": 1}
    after = {r["id"]: r for r in index_rows(root)}
    assert after["000001"] == {**before["000001"], "label": "none"} and after["000002"] == {**before["000002"], "group": "s9"}
    assert {k: v for k, v in after.items() if k not in ("000001", "000002")} == {
        k: v for k, v in before.items() if k not in ("000001", "000002")}
    assert render_bytes(root, "none", "000001") == (crop_bytes, large_bytes)
    assert not (root / "crops" / "palm" / "000001.png").exists() and not (root / "large" / "palm" / "000001.png").exists()
    data = load_dataset(root)
    assert data.label_names == ["five", "palm", "none"] and data.label_names[int(data.labels[1])] == "none"
    assert data.groups[2] == "s9" and not list(root.glob("**/*.tmp"))


@pytest.mark.parametrize("crash_at", [1, 2, 3, 4, 5])
def test_a_crash_at_any_step_of_update_leaves_a_dataset_that_loads_and_a_rerun_finishes(tmp_path, samples, monkeypatch,
                                                                                      crash_at):
    from pipeline.data import store
    from pipeline.data.load import load_dataset

    root = tmp_path / "ds"
    replace, calls = store.os.replace, []
    with fill_dataset(root, samples) as writer:
        def crash(*args):
            calls.append(args)
            if len(calls) == crash_at:  # 1: the new label saved; 2, 3: crop and large render linked; 4: .moves; 5: index
                raise KeyboardInterrupt
            return replace(*args)

        monkeypatch.setattr(store.os, "replace", crash)
        with pytest.raises(KeyboardInterrupt):
            writer.update({"000001": {"label": "none"}})
        monkeypatch.undo()
        assert str(calls[-1][1]).endswith({1: "dataset.json", 4: ".moves", 5: INDEX}.get(crash_at, ".png"))
        data = load_dataset(root)  # every row the index names has its files: the old labels still
        assert len(data) == 12 and data.label_names[int(data.labels[1])] == "palm"
        assert writer.update({"000001": {"label": "none"}}) == 1  # run again: done
    data = load_dataset(root)
    assert data.label_names == ["five", "palm", "none"] == list(read_meta(root).labels)  # dataset.json has it
    assert data.label_names[int(data.labels[1])] == "none"
    assert not list(root.glob("*/palm/000001.png")) and len(list(root.glob("*/none/000001.png"))) == 2
    assert not (root / ".moves").exists() and not list(root.glob("**/.*.tmp"))


def test_a_relabel_killed_while_removing_the_old_names_is_finished_by_the_next_writer(tmp_path, samples, monkeypatch):
    from pipeline.data.load import load_dataset

    root = tmp_path / "ds"
    unlink = Path.unlink
    with fill_dataset(root, samples) as writer:
        before = render_bytes(root, "palm", "000001")

        def crash(self, *args, **kwargs):
            if self.name == "000001.png":
                raise KeyboardInterrupt  # killed after the index was rewritten, before an old name went
            return unlink(self, *args, **kwargs)

        monkeypatch.setattr(Path, "unlink", crash)
        with pytest.raises(KeyboardInterrupt):
            writer.update({"000001": {"label": "none"}, "000003": {"label": "five"}})
        monkeypatch.undo()
        assert (root / "crops" / "palm" / "000001.png").exists() and (root / ".moves").exists()
        assert len(load_dataset(root)) == 12  # it loads meanwhile: files no row names are ignored
    DatasetWriter(root, CropSettings()).close()  # the next writer removes the old names the rows no longer have
    assert not list(root.glob("*/palm/000001.png")) and not list(root.glob("*/palm/000003.png"))
    assert render_bytes(root, "none", "000001") == before and len(list(root.glob("*/five/000003.png"))) == 2
    assert not (root / ".moves").exists() and len(load_dataset(root)) == 12


def test_the_next_update_finishes_a_relabel_killed_while_removing_the_old_names(tmp_path, samples, monkeypatch):
    root = tmp_path / "ds"
    unlink = Path.unlink
    with fill_dataset(root, samples) as writer:
        def crash(self, *args, **kwargs):
            if self.name == "000001.png":
                raise KeyboardInterrupt
            return unlink(self, *args, **kwargs)

        monkeypatch.setattr(Path, "unlink", crash)
        with pytest.raises(KeyboardInterrupt):
            writer.update({"000001": {"label": "none"}})
        monkeypatch.undo()
        assert writer.update({"000001": {"label": "none"}}) == 0  # the rows are done: a rerun has nothing to do
        assert not list(root.glob("*/palm/000001.png")) and not (root / ".moves").exists()  # but it cleaned up
        assert len(list(root.glob("*/none/000001.png"))) == 2
