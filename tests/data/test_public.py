"""MNIST from its real idx files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import pipeline.training.run as runs


def test_mnist_importer_reads_the_real_idx_files(tmp_path: Path) -> None:
    from pipeline.data.public import load_mnist

    root = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"
    if not root.is_dir():
        pytest.skip(f"real data missing: MNIST idx files ({root})")
    data = load_mnist(root)
    assert data.images.shape == (70_000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert (data.groups == "test").sum() == 10_000
    assert np.bincount(data.labels.numpy()).min() > 5_000
    split = runs.make_split(data)
    assert len(split.test) == 10_000 and len(split.val) == 6_000
    assert not set(split.train) & set(split.val)
