"""``collect --from`` on Ray (a real local Ray of 2 CPUs, shared with the other Ray tests): the same hands as
the process pool, an interrupted import resumed to the same dataset, and a file that kills its worker."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

import pipeline.collect as collect
import pipeline.preprocess.photo_folders as photo_folders
from helpers import assert_same_hands, ctrl_c_at_add, error_line, index_rows, init_then_poison, link, run_main, wait_for_cpus
from pipeline.data.folder_import import ImportOptions, import_folder
from pipeline.data.store import DatasetWriter
from pipeline.engines import Engine
from pipeline.preprocess.crops import CropSettings

BROKEN = "5/zz_broken.jpg"


@pytest.fixture(scope="module")
def photo_tree(fingers_dir, videos_dir, tmp_path_factory) -> Path:
    """Every 30th finger photo (about 50, every label, a photo of two hands), a broken file and a short video."""
    root = tmp_path_factory.mktemp("photos")
    photos = sorted(p for p in fingers_dir.glob("*/*.jpg"))
    for photo in photos[::30] + [fingers_dir / "5" / "996_pic00037.jpg"]:
        link(photo, root / photo.parent.name / photo.name)
    (root / BROKEN).write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    link(videos_dir / "open_palm.mp4", root / "5" / "open_palm.mp4")
    return root


def import_into(root: Path, data: Path, engine: Engine, **kwargs):
    with DatasetWriter(data, CropSettings()) as writer:
        return import_folder(root, writer, ImportOptions(engine=engine, stride=25), progress=False, **kwargs)


@pytest.fixture(scope="module")
def pool_import(photo_tree, tmp_path_factory):
    data = tmp_path_factory.mktemp("pool") / "ds"
    return data, import_into(photo_tree, data, Engine("local", 2))


def test_the_ray_import_gives_the_same_hands_as_the_process_pool(ray_local, pool_import, photo_tree, tmp_path):
    expected, pool_summary = pool_import
    rows = index_rows(expected)
    assert len(rows) > 50 and {r["label"] for r in rows} == set("012345")
    assert sum(r["source"] == "5/open_palm.mp4" for r in rows) >= 3 and sum(r["source"] == "5/996_pic00037.jpg" for r in rows) == 2
    summary = import_into(photo_tree, tmp_path / "ds", Engine("ray", 2))
    assert summary.rows == pool_summary.rows and summary.total("unreadable") == 1
    assert_same_hands(tmp_path / "ds", expected)
    assert wait_for_cpus(ray_local, 2) == 2  # no actor is left on the cluster


def test_an_interrupted_ray_import_stops_its_workers_and_resumes_to_the_same_dataset(ray_local, pool_import, photo_tree,
                                                                                      tmp_path):
    expected, _ = pool_import
    data = tmp_path / "ds"
    with DatasetWriter(data, CropSettings()) as writer:
        ctrl_c_at_add(writer, 12)  # Ctrl-C while the actors are busy with the next files
        with pytest.raises(KeyboardInterrupt):
            import_folder(photo_tree, writer, ImportOptions(engine=Engine("ray", 2), stride=25), progress=False)
    assert len(index_rows(data)) == 11  # every row saved before the Ctrl-C is kept
    assert wait_for_cpus(ray_local, 2, seconds=10) == 2  # and the cluster's work stopped with it
    summary = import_into(photo_tree, data, Engine("ray", 2))
    assert summary.total("skipped") > 0 and summary.total("saved") == len(index_rows(expected)) - 11
    assert_same_hands(data, expected)


def test_a_file_that_kills_its_worker_is_reported_unreadable_and_the_others_are_imported(ray_local, photo_tree):
    tasks = photo_folders.scan(photo_tree)[:9]
    poison = tasks[4].path.name

    from ray import cloudpickle

    import helpers
    from pipeline.engines.ray import map_on_actors

    cloudpickle.register_pickle_by_value(helpers)  # the actors cannot import the tests' helpers: send it whole
    init_args = (poison, None, 2, CropSettings(), 25)
    results = list(map_on_actors(photo_folders._process_copy, tasks, init_then_poison, init_args, workers=2,
                                 prepare=photo_folders._read_for_copy, on_lost=photo_folders._lost))
    assert [r.task.relative for r in results] == [t.relative for t in tasks]
    assert [r.status for r in results].count("unreadable") == 1 and results[4].status == "unreadable"
    assert results[4].error.startswith(f"{tasks[4].path}: the detection worker died on this file and it was skipped")
    assert sum(r.status == "found" for r in results) >= 7
    assert wait_for_cpus(ray_local, 2) == 2


def test_a_hand_model_the_actors_cannot_load_is_one_error_line(ray_local, photo_tree, tmp_path):
    fake = tmp_path / "fake.task"  # passes the bundle check; MediaPipe cannot load it
    with zipfile.ZipFile(fake, "w") as bundle:
        bundle.writestr("hand_detector.tflite", b"not a model")
        bundle.writestr("hand_landmarks_detector.tflite", b"not a model")
    code, _, err = run_main(collect, "--from", str(photo_tree), "--data", str(tmp_path / "ds"), "--engine", "ray",
                            "--workers", "2", "--hand-model", str(fake), "--quiet")
    assert code == 2 and "could not load" in error_line(err) and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert wait_for_cpus(ray_local, 2) == 2
