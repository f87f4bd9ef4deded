"""The notebooks run, top to bottom, on the quick setting (``HANDCAM_QUICK=1``), so they never rot.

The committed notebooks keep the outputs of a full run; here each is executed from a copy in a
temporary folder, with the committed file left as it is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat, nbclient and ipykernel (the dev extra)")
nbclient = pytest.importorskip("nbclient", reason="the notebook tests need nbformat, nbclient and ipykernel (the dev extra)")
pytest.importorskip("ipykernel", reason="the notebook tests need nbformat, nbclient and ipykernel (the dev extra)")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.parametrize("name", ["01_dataset.ipynb", "02_architecture_study.ipynb", "03_explanations.ipynb"])
def test_notebook_runs_on_the_quick_setting(name: str, monkeypatch) -> None:
    path = NOTEBOOKS / name
    committed = nbformat.read(path, as_version=4)
    # Committed with outputs (so it reads on a code host) and no errors in them.
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{name}: commit it executed (python notebooks/make_notebooks.py)"
    assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    monkeypatch.setenv("HANDCAM_QUICK", "1")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3, f"{name}: expected its figures"
