"""Near-copies in Sign-MNIST: similarity under shifts, and a group split without leaks."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import DATA, require
from pipeline.data.near_copies import check_leak, copy_groups, copy_similarity, random_split_like


def test_copy_similarity_sees_through_shifts_that_plain_correlation_misses() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1, 28, 28)).astype(np.uint8)
    shifted = np.roll(base, (2, -3), axis=(1, 2))  # a copy cropped 2 px lower and 3 px to the left
    other = rng.integers(0, 256, (1, 28, 28)).astype(np.uint8)
    plain = np.corrcoef(base.ravel().astype(float), shifted.ravel().astype(float))[0, 1]
    sim = copy_similarity(np.concatenate([shifted, other]), base)
    assert plain < 0.1  # noise images: no correlation without the shift
    assert sim[0, 0] == pytest.approx(1.0, abs=1e-5)  # the central windows line up exactly
    assert sim[1, 0] < 0.35  # another image stays unrelated at its best shift and zoom
    groups = copy_groups(np.concatenate([base, shifted, other]))
    assert groups[0] == groups[1] != groups[2]


@pytest.fixture(scope="module")
def signmnist():
    from pipeline.data.public import load_signmnist

    return load_signmnist(require(DATA / "signmnist" / "sign_mnist_test.csv.gz", "Sign-MNIST test CSV"))


def test_signmnist_group_split_holds_no_near_copies(signmnist) -> None:
    """The plain-correlation grouping leaked shifted copies (about a quarter of test items had one in
    train); the copy groups leave none above 0.95, while a random split gives every test item one."""
    from pipeline.data.public import near_duplicate_groups
    from pipeline.data.splits import split_by_group

    images, labels = signmnist.images[:, 0].numpy(), signmnist.labels.numpy()
    assert 150 < len(set(signmnist.groups.tolist())) < 304  # fewer, larger groups than the plain grouping's 304
    train, val, test = split_by_group(signmnist.groups, labels, seed=0)
    grouped = check_leak(images, labels, train, test, "grouped", sample=80)
    assert grouped.over_095 == 0 and grouped.nearest_max < 0.95
    assert grouped.nearest_max < grouped.other_class_max + 0.05  # no closer than images of another letter
    plain = near_duplicate_groups(images).astype(str)
    p_train, _, p_test = split_by_group(plain, labels, seed=0)
    assert check_leak(images, labels, p_train, p_test, "plain", sample=80).over_095 > 0.1
    r_train, _, r_test = random_split_like(len(labels), len(val), len(test))
    assert check_leak(images, labels, r_train, r_test, "random", sample=80).over_095 > 0.95
