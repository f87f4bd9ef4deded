"""Loading a dataset folder: crops, labels, groups, caches, re-rendering."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.data.load import load_dataset
from pipeline.data.store import DatasetWriter
from pipeline.errors import UserError
from pipeline.preprocess.crops import CropSettings, crop_hand

SETTINGS = CropSettings()


REPO = Path(__file__).resolve().parents[2]


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


def _fill(root: Path, samples, n_groups: int = 3) -> DatasetWriter:
    """Twelve rows: the four hands under labels five/palm, spread over ``n_groups`` groups."""
    writer = DatasetWriter(root, SETTINGS)
    for k in range(12):
        _add(writer, samples[k % 4], label=("five", "palm")[k % 2], group=f"s{k % n_groups}", source=f"f{k}.jpg")
    return writer


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
    code = ("import sys; from pipeline.data.load import load_dataset; "
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
