"""Label reviews: read with one clear line per fault, and applied by an import to photos and video frames."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import REPO, index_rows, link
from pipeline.data.folder_import import ImportOptions, import_folder
from pipeline.data.review import DROP, Review
from pipeline.data.store import INDEX, DatasetWriter, read_rows
from pipeline.errors import UserError
from pipeline.preprocess.crops import CropSettings
from pipeline.preprocess.photo_folders import GroupRule


def write(path: Path, *lines: str) -> Path:
    path.write_text("# reviewed by eye\n" + "\n".join(lines) + "\n")
    return path


def test_a_review_relabels_drops_and_names_frames(tmp_path):
    review = Review.read(write(tmp_path / "r.tsv", "file\tlabel\tnote", "five/a.jpg\tthree\tthumb out",
                               "five/b.jpg\tdrop\tdark", "none/clip.mp4#0-55\tfist\tbefore", "none/clip.mp4#56-62\tdrop\t"))
    assert review.whole_file_label("five/a.jpg", "five") == "three"
    assert review.whole_file_label("five/b.jpg", "five") is None
    assert review.whole_file_label("five/c.jpg", "five") == "five"  # not named: the folder's label
    assert [review.label("none/clip.mp4", f, "none") for f in (0, 55, 56, 62, 63)] == ["fist", "fist", None, None, "none"]
    assert review.counts() == {"three": 1, "drop": 2, "fist": 1}


@pytest.mark.parametrize("lines, message", [
    (["five/a.jpg\tthree"], "header"),
    (["file\tlabel", "five/a.jpg"], "line 3"),
    (["file\tlabel", "five/a.jpg\ta/b"], "bad label name"),
    (["file\tlabel", "clip.mp4#9-3\tfist"], "backwards"),
])
def test_a_malformed_review_is_one_line_naming_the_file_and_line(tmp_path, lines, message):
    path = write(tmp_path / "r.tsv", *lines)
    with pytest.raises(UserError, match=message) as info:
        Review.read(path)
    assert str(path) in str(info.value)


def test_an_import_applies_the_review_and_refuses_one_about_other_files(fingers_dir, tmp_path):
    photos = sorted((fingers_dir / "5").glob("996_pic*.jpg"))[:3]
    for photo in photos:
        link(photo, tmp_path / "src" / "five" / photo.name)
    a, b, c = (f"five/{p.name}" for p in photos)
    review = Review.read(write(tmp_path / "r.tsv", "file\tlabel\tnote", f"{a}\tnone\tnot a five", f"{b}\tdrop\tblurred"))
    with DatasetWriter(tmp_path / "ds", CropSettings()) as writer:
        summary = import_folder(tmp_path / "src", writer, ImportOptions(review=review), progress=False)
    rows = index_rows(tmp_path / "ds")
    assert {(r["source"], r["label"]) for r in rows} == {(a, "none"), (c, "five")}  # every hand of a photo
    assert summary.rows["drop"]["dropped"] == 1 and summary.total("saved") == len(rows) >= 2
    other = Review.read(write(tmp_path / "o.tsv", "file\tlabel", "five/elsewhere.jpg\tnone"))
    with DatasetWriter(tmp_path / "ds2", CropSettings()) as writer, pytest.raises(UserError, match="elsewhere.jpg"):
        import_folder(tmp_path / "src", writer, ImportOptions(review=other), progress=False)
    assert index_rows(tmp_path / "ds2") == []


def test_a_review_written_after_an_import_gives_the_saved_samples_what_a_fresh_import_would(fingers_dir, tmp_path):
    photos = sorted((fingers_dir / "5").glob("996_pic*.jpg"))[:3]
    for photo in photos:
        link(photo, tmp_path / "src" / "five" / photo.name)
    a, b, c = (f"five/{p.name}" for p in photos)
    with DatasetWriter(tmp_path / "ds", CropSettings()) as writer:
        import_folder(tmp_path / "src", writer, ImportOptions(), progress=False)
    first = {r["id"]: r for r in index_rows(tmp_path / "ds")}
    review = Review.read(write(tmp_path / "r.tsv", "file\tlabel\tnote", f"{a}\tnone\tnot a five", f"{b}\tdrop\tblurred"))
    options = ImportOptions(review=review, grouping=GroupRule("constant", "one-sitting"))
    index_bytes = (tmp_path / "ds" / INDEX).read_bytes()
    with DatasetWriter(tmp_path / "ds", CropSettings()) as writer, pytest.raises(UserError) as refused:
        import_folder(tmp_path / "src", writer, options, progress=False)  # not asked to update them: refused
    dropped = [i for i, r in first.items() if r["source"] == b]
    assert f"change {len(first) - len(dropped)} and drop {len(dropped)} of the samples saved before" in str(refused.value)
    assert "--update-saved" in str(refused.value) and (tmp_path / "ds" / INDEX).read_bytes() == index_bytes
    options = replace(options, update_saved=True)
    with DatasetWriter(tmp_path / "ds", CropSettings()) as writer:
        summary = import_folder(tmp_path / "src", writer, options, progress=False)
    with DatasetWriter(tmp_path / "fresh", CropSettings()) as writer:
        import_folder(tmp_path / "src", writer, options, progress=False)
    rows = index_rows(tmp_path / "ds")
    seen = lambda rs: sorted((r["source"], r["hand"], r["label"], r["group"]) for r in rs)  # noqa: E731
    assert seen(rows) == seen(index_rows(tmp_path / "fresh"))  # as if imported with the review from the start
    assert {r["source"] for r in rows} == {a, c} and {r["label"] for r in rows if r["source"] == a} == {"none"}
    assert summary.total("saved") == 0 and summary.total("skipped") == 2  # nothing detected again
    assert summary.removed == len(dropped) >= 1 and summary.changed == len(first) - len(dropped)  # every group changed
    assert [r["id"] for r in read_rows(tmp_path / "ds" / "trash" / INDEX)] == dropped  # the trash keeps them
    for r in rows:  # the same sample, under its new label
        assert r == {**first[r["id"]], "label": r["label"], "group": "one-sitting"}
        assert (tmp_path / "ds" / "crops" / r["label"] / f"{r['id']}.png").is_file()
    index_bytes = (tmp_path / "ds" / INDEX).read_bytes()
    with DatasetWriter(tmp_path / "ds", CropSettings()) as writer:
        again = import_folder(tmp_path / "src", writer, options, progress=False)
    assert (again.changed, again.removed) == (0, 0) and (tmp_path / "ds" / INDEX).read_bytes() == index_bytes


def test_a_drop_taken_back_brings_its_samples_back_from_the_trash_and_not_those_removed_by_hand(fingers_dir, tmp_path):
    photos = sorted((fingers_dir / "5").glob("996_pic*.jpg"))[:3]
    for photo in photos:
        link(photo, tmp_path / "src" / "five" / photo.name)
    a, b, c = (f"five/{p.name}" for p in photos)
    dropping = ImportOptions(review=Review.read(write(tmp_path / "r.tsv", "file\tlabel", f"{b}\tdrop")), update_saved=True)
    with DatasetWriter(tmp_path / "ds", CropSettings()) as writer:
        import_folder(tmp_path / "src", writer, ImportOptions(), progress=False)
        first = {r["id"]: r for r in writer.rows()}
        assert import_folder(tmp_path / "src", writer, dropping, progress=False).removed >= 1
        by_hand = next(r["id"] for r in writer.rows() if r["source"] == c)
        writer.remove(by_hand)  # the review grid's delete: not the review's to take back
    dropped = sorted(i for i, r in first.items() if r["source"] == b)
    # The drop taken back, and the photo called none instead: refused without --update-saved, nothing touched.
    taken_back = ImportOptions(review=Review.read(write(tmp_path / "r2.tsv", "file\tlabel", f"{b}\tnone")))
    index_bytes = (tmp_path / "ds" / INDEX).read_bytes()
    with DatasetWriter(tmp_path / "ds", CropSettings()) as writer, pytest.raises(UserError) as refused:
        import_folder(tmp_path / "src", writer, taken_back, progress=False)
    assert f"would bring back {len(dropped)} of the samples saved before (first: {b} kept again)" in str(refused.value)
    assert (tmp_path / "ds" / INDEX).read_bytes() == index_bytes
    with DatasetWriter(tmp_path / "ds", CropSettings()) as writer:
        summary = import_folder(tmp_path / "src", writer, replace(taken_back, update_saved=True), progress=False)
    assert (summary.restored, summary.changed, summary.removed, summary.total("saved")) == (len(dropped), len(dropped), 0, 0)
    rows = {r["id"]: r for r in index_rows(tmp_path / "ds")}
    assert sorted(i for i, r in rows.items() if r["source"] == b) == dropped  # the same samples, ids and all
    for i in dropped:
        assert rows[i] == {**first[i], "label": "none"} and (tmp_path / "ds" / "crops" / "none" / f"{i}.png").is_file()
    assert [r["id"] for r in read_rows(tmp_path / "ds" / "trash" / INDEX)] == [by_hand]  # removed by hand: stays
    assert by_hand not in rows and (tmp_path / "ds" / "trash" / "crops" / "five" / f"{by_hand}.png").is_file()
    for i in dropped:
        assert (tmp_path / "ds" / "large" / "none" / f"{i}.png").is_file()
    with DatasetWriter(tmp_path / "ds", CropSettings()) as writer:
        assert writer.dropped_by_review() == []
        again = import_folder(tmp_path / "src", writer, replace(taken_back, update_saved=True), progress=False)
        assert (again.restored, again.changed, again.removed) == (0, 0, 0)
        # Dropped again and taken back again: the trash holds each sample once, and the review's list ends empty.
        assert import_folder(tmp_path / "src", writer, dropping, progress=False).removed == len(dropped)
        assert import_folder(tmp_path / "src", writer, replace(taken_back, update_saved=True), progress=False).restored == len(dropped)
        trashed = [r["id"] for r in read_rows(tmp_path / "ds" / "trash" / INDEX)]
        assert trashed == [by_hand] and writer.dropped_by_review() == []
        # Removed by hand after the review brought it back: never the review's to bring back again.
        writer.remove(dropped[0])
        assert writer.dropped_by_review() == []
        assert import_folder(tmp_path / "src", writer, replace(taken_back, update_saved=True), progress=False).restored == 0
    assert (tmp_path / "ds" / "trash" / "review-drops.txt").read_text() == ""


@pytest.mark.skipif(not (REPO / "data" / "reviews").is_dir(), reason="no committed reviews")
def test_the_committed_datasets_hold_what_their_reviews_decide():
    """Every file a committed review names is in its dataset with the review's label, or absent when dropped
    (data/make_datasets.sh applies data/reviews/NAME.tsv to data/NAME)."""
    for path in sorted((REPO / "data" / "reviews").glob("*.tsv")):
        review, rows = Review.read(path), index_rows(REPO / "data" / path.stem)
        named = [row for row in rows if row["source"] in review.decisions]
        for row in named:
            decided = review.label(row["source"], int(row["frame"]), row["label"])  # None: dropped
            assert decided is not None, f"{path.name}: {row['source']} frame {row['frame']} should have been dropped"
            assert row["label"] == decided, f"{path.name}: {row['source']} is {row['label']}, not {decided}"
        with open(REPO / "data" / path.stem / "files.csv", newline="") as f:
            found = {source for source, status in csv.reader(f) if status == "found"}
        kept = {source for source, decisions in review.decisions.items()
                if any(d.first is None and d.label != DROP for d in decisions)} & found
        missing = kept - {row["source"] for row in named}
        assert not missing, f"{path.name}: {len(missing)} files it keeps have no row in data/{path.stem}, e.g. {min(missing)}"
