"""Photo folders: the session of a file name, group rules, and what a scan finds."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import link
from pipeline.errors import UserError
from pipeline.preprocess.photo_folders import GroupRule, scan, session_of


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


@pytest.mark.parametrize("rule, name, group", [
    (GroupRule("regex", r"IMG_(\d+)\d\d\."), "digit1_IMG_1119.JPG", "11"),
    (GroupRule("regex", r"^IMG[-_](\d{8})[-_](?:WA)?(\d\d)"), "IMG-20230312-WA0173_jpg.rf.x.jpg", "20230312-01"),
    (GroupRule("regex", r"^IMG[-_](\d{8})[-_](?:WA)?(\d\d)"), "IMG_20230312_164436.jpg", "20230312-16"),
    (GroupRule("constant", "rps_green"), "9kYPKMVtd4nOvSK4.png", "rps_green"),
    (GroupRule(), "996_pic00012.jpg", "996"),
])
def test_group_rules_name_a_file_s_group(rule, name, group):
    assert rule.group_of(Path("x") / name) == group


def test_a_group_rule_that_cannot_name_a_group_is_one_line():
    with pytest.raises(UserError, match="capture group"):
        GroupRule("regex", r"IMG_\d+")
    with pytest.raises(UserError, match="not a regular expression"):
        GroupRule("regex", r"IMG_(\d+")
    with pytest.raises(UserError, match="does not match"):
        GroupRule("regex", r"^(Set\d)_").group_of(Path("one/Hand_01.jpg"))


def test_scan_follows_linked_folders_and_names_labels_and_groups(fingers_dir, tmp_path):
    link(fingers_dir / "1", tmp_path / "one" / "linked")  # a folder reached through a symbolic link
    tasks = scan(tmp_path)
    assert len(tasks) >= 100 and {t.label for t in tasks} == {"one"}
    assert all(t.relative.startswith("one/linked/") for t in tasks)
    assert {t.group for t in tasks if t.path.name.startswith("996_")} == {"996"}
