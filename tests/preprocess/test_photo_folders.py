"""Photo folders: the session of a file name."""

from __future__ import annotations

import pytest

from pipeline.preprocess.photo_folders import session_of


@pytest.mark.parametrize("name, session", [
    ("996_pic00012.jpg", "996"),
    ("3_1528499009.07_pic00005.jpg", "3_1528499009.07"),
    ("pic00107.jpg", "pic"),
    ("Hand_0000084.jpg", "Hand_0000084"),
    ("1528664299.56_pic00087.jpg", "1528664299.56"),
    ("some/dir/clip.mp4", "clip"),
    ("picnic.jpg", "picnic"),
])
def test_session_of(name, session):
    assert session_of(name) == session
