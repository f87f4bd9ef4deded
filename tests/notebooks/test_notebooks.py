"""The notebooks run, top to bottom, on the quick setting, so they never rot.

The sources are the percent scripts ``notebooks/NN_*.py``; each test executes one with ``QUICK = True``
through ``notebooks/execute.py``'s own functions (the code path of ``python notebooks/execute.py --quick``),
writing into a temporary folder, so the committed ``.ipynb`` files (the full setting) are left as they are.
Every notebook trains on, or reads, the committed ``data/fingers``; the public sets in ``../shared/data``
(MNIST, Sign-MNIST) are optional: without them notebook 02 says what it skipped.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from helpers import DATA, REPO

REASON = "the notebook tests need jupytext, nbformat, nbclient and ipykernel (the dev extra)"
jupytext = pytest.importorskip("jupytext", reason=REASON)
nbformat = pytest.importorskip("nbformat", reason=REASON)
pytest.importorskip("nbclient", reason=REASON)
pytest.importorskip("ipykernel", reason=REASON)

NOTEBOOKS = REPO / "notebooks"
FINGERS = REPO / "data" / "fingers"
#: What each notebook cannot run without (beyond the checkout's code).
NEEDS = {"01_dataset": [FINGERS / "index.csv"], "02_architecture_study": [FINGERS / "index.csv"],
         "03_explanations": [FINGERS / "index.csv"]}


def load_executor():
    """``notebooks/execute.py`` as a module (notebooks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


execute = load_executor()


def outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def with_data(kind: str, nb) -> list[dict]:
    return [o for o in outputs(nb) if kind in o.get("data", {})]


def text_of(nb) -> str:
    return "\n".join("".join(o.get("text", "")) for o in outputs(nb) if o.get("output_type") == "stream")


def require_data(stem: str) -> None:
    for path in NEEDS[stem]:
        if not path.exists():
            pytest.skip(f"{stem} needs {path.relative_to(REPO)}, which this checkout lacks (it is committed: restore it "
                        "with git checkout, or rebuild it with bash data/make_datasets.sh)")


def test_every_notebook_is_a_percent_script_with_parameters() -> None:
    stems = [s.stem for s in execute.sources()]
    assert stems == sorted(NEEDS), f"notebooks/ holds {stems}; NEEDS above names {sorted(NEEDS)}"
    for script in execute.sources():
        nb = execute.read_notebook(script)
        assert "QUICK" in execute.parameter_names(nb), f"{script.name}: its parameters cell must define QUICK"
    assert not (NOTEBOOKS / "make_notebooks.py").exists(), "make_notebooks.py is replaced by execute.py"


def test_parameters_are_injected_after_the_parameters_cell() -> None:
    nb = execute.read_notebook(NOTEBOOKS / "01_dataset.py")
    where = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    execute.inject_parameters(nb, {"QUICK": True, "DATASET": "data/x"})
    injected = nb.cells[where + 1]
    assert injected.metadata["tags"] == ["injected-parameters"]
    assert "QUICK = True" in injected.source and "DATASET = 'data/x'" in injected.source
    with pytest.raises(ValueError, match="NOT_ONE"):
        execute.inject_parameters(nb, {"NOT_ONE": 1})


def test_the_executor_explains_itself(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        execute.main(["--help"])
    assert exit_info.value.code == 0
    assert "--quick" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no notebook 99"):
        execute.main(["--only", "99"])
    with pytest.raises(SystemExit, match="NO_SUCH"):
        execute.main(["--only", "01", "-p", "NO_SUCH=1"])


@pytest.mark.parametrize("stem", sorted(NEEDS))
def test_committed_notebook_is_the_full_execution_of_its_script(stem: str) -> None:
    path = NOTEBOOKS / f"{stem}.ipynb"
    assert path.is_file(), f"{path.name} is missing: python notebooks/execute.py --only {stem[:2]}"
    committed = nbformat.read(path, as_version=4)
    code = [c for c in committed.cells if c.cell_type == "code"]
    rerun = f"rerun python notebooks/execute.py --only {stem[:2]} and commit {path.name}"
    assert all(c.get("execution_count") for c in code), f"{path.name} is not executed: {rerun}"
    assert not [o for o in outputs(committed) if o.get("output_type") == "error"], f"{path.name} holds an error: {rerun}"
    assert not [c for c in code if "injected-parameters" in c.metadata.get("tags", [])], \
        f"{path.name} was executed with overrides (the committed notebooks are the full setting): {rerun}"
    script = execute.read_notebook(NOTEBOOKS / f"{stem}.py")
    same = [c.source for c in committed.cells] == [c.source for c in script.cells]
    assert same, f"{path.name} is older than {stem}.py: {rerun}"


#: 02 (two tiny studies, Sign-MNIST's near-copy check) and 03 (seven small models) take 15-40 s each on 2 cores.
QUICK_RUNS = [pytest.param(stem, marks=[pytest.mark.slow] if not stem.startswith("01") else []) for stem in sorted(NEEDS)]


@pytest.mark.parametrize("stem", QUICK_RUNS)
def test_notebook_runs_on_the_quick_setting(stem: str, tmp_path: Path) -> None:
    require_data(stem)
    parameters = {**execute.QUICK_PARAMETERS, "STUDY_DIR": str(tmp_path / "study"), "SHARED_DATA": str(DATA)}
    path, seconds, nb = execute.execute_notebook(NOTEBOOKS / f"{stem}.py", parameters, tmp_path / "out", timeout=600)
    # (a failing cell raises CellExecutionError, with its traceback, before we get here)
    assert path == tmp_path / "out" / f"{stem}.ipynb" and path.is_file()
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "QUICK = True" in injected[0].source
    assert with_data("image/png", nb), f"{stem}: no figure came out"
    assert with_data("text/markdown", nb), f"{stem}: no computed prose came out"
    if stem.startswith("02"):
        assert "QUICK study (not a result)" in text_of(nb)
        assert (tmp_path / "study" / "fingers" / "results.csv").is_file(), "the quick study ran somewhere else"


def test_study_notebook_runs_without_the_shared_data(tmp_path: Path) -> None:
    """Without ../shared/data (MNIST, Sign-MNIST) notebook 02 skips those sections, saying so, and still runs."""
    require_data("02_architecture_study")
    parameters = {"QUICK": True, "STUDY_DIR": str(tmp_path / "study"), "SHARED_DATA": str(tmp_path / "no-shared-data")}
    _, _, nb = execute.execute_notebook(NOTEBOOKS / "02_architecture_study.py", parameters, tmp_path, timeout=300)
    printed = text_of(nb)
    assert "mnist: data not found" in printed and "Sign-MNIST not found" in printed, printed
    assert with_data("image/png", nb) and with_data("text/markdown", nb)
