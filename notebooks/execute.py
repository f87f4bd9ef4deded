"""Execute the notebooks' percent scripts into ``.ipynb`` files with their outputs.

    python notebooks/execute.py                      # full setting: rewrite the committed notebooks/NN_*.ipynb
    python notebooks/execute.py --quick --out /tmp/nb # quick setting (what the tests run), written elsewhere
    python notebooks/execute.py --only 02 -p STUDY_DIR=/tmp/study

The sources are ``notebooks/NN_*.py`` in jupytext's percent format (``# %%`` cells); edit those, never
the ``.ipynb`` files. Each script has one cell tagged ``parameters`` (papermill's convention); the
overrides are written as a new cell right after it (tagged ``injected-parameters``), so a notebook
keeps its defaults and shows what a run changed. ``--quick`` sets ``QUICK = True``: smaller samples,
and a tiny study in a temporary folder instead of the committed results. The notebooks run with
their working folder in ``notebooks/``, whatever ``--out`` says.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import jupytext
import nbformat
from nbformat.v4 import new_code_cell

HERE = Path(__file__).resolve().parent
KERNEL = "python3"
#: What ``--quick`` overrides in every notebook.
QUICK_PARAMETERS = {"QUICK": True}


def sources(only: Sequence[str] = ()) -> list[Path]:
    """The percent scripts ``NN_*.py``, in order; ``only`` keeps those whose name starts with one of its entries."""
    scripts = sorted(HERE.glob("[0-9][0-9]_*.py"))
    if only:
        unknown = [o for o in only if not any(s.name.startswith(o) for s in scripts)]
        if unknown:
            raise SystemExit(f"error: no notebook {', '.join(unknown)}; choose from {', '.join(s.stem for s in scripts)}")
        scripts = [s for s in scripts if any(s.name.startswith(o) for o in only)]
    return scripts


def read_notebook(script: Path) -> nbformat.NotebookNode:
    """A percent script as a notebook without outputs, with the ``python3`` kernel named."""
    nb = jupytext.read(script, fmt="py:percent")
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def parameter_names(nb: nbformat.NotebookNode) -> set[str]:
    """The names the ``parameters`` cell assigns (empty when there is no such cell)."""
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            names = set()
            for node in ast.parse(cell.source).body:
                if isinstance(node, (ast.Assign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names |= {t.id for t in targets if isinstance(t, ast.Name)}
            return names
    return set()


def inject_parameters(nb: nbformat.NotebookNode, parameters: Mapping[str, Any]) -> nbformat.NotebookNode:
    """Insert ``NAME = repr(value)`` lines as a cell right after the ``parameters`` cell (as papermill does).

    Values must be Python literals (``repr`` is what the cell holds). A name the ``parameters`` cell does not
    define is refused, so a typo cannot silently leave a default in place.
    """
    if not parameters:
        return nb
    where = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    if where is None:
        raise ValueError("the notebook has no cell tagged 'parameters'")
    unknown = sorted(set(parameters) - parameter_names(nb))
    if unknown:
        known = ", ".join(sorted(parameter_names(nb)))
        raise ValueError(f"not a parameter of this notebook: {', '.join(unknown)} (it has {known})")
    source = "# Parameters injected by notebooks/execute.py\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    cell = new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(where + 1, cell)
    return nb


def execute_notebook(script: Path, parameters: Mapping[str, Any] | None = None, out: Path | None = None,
                     timeout: int = 1200) -> tuple[Path, float, nbformat.NotebookNode]:
    """Execute ``script`` with ``parameters`` (those it defines) and write ``NAME.ipynb`` into ``out`` (default: beside it).

    Returns the path written, the seconds the execution took and the executed notebook. A failing cell
    raises nbclient's ``CellExecutionError`` (with its traceback); nothing is written then.
    """
    from nbclient import NotebookClient

    nb = read_notebook(script)
    wanted = {k: v for k, v in (parameters or {}).items() if k in parameter_names(nb)}
    inject_parameters(nb, wanted)
    for i, cell in enumerate(nb.cells):  # jupytext draws random cell ids; numbered ones keep the committed diff small
        cell["id"] = f"cell-{i:02d}"
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name=KERNEL, resources={"metadata": {"path": str(HERE)}}).execute()
    seconds = time.perf_counter() - start
    for cell in nb.cells:  # keep the diff small: no execution timestamps
        cell.get("metadata", {}).pop("execution", None)
    nbformat.validate(nb)
    path = (out or script.parent) / f"{script.stem}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path, seconds, nb


def _literal(text: str) -> Any:
    """A ``-p`` value: a Python literal if it parses as one (``True``, ``3``, ``'x'``), else the plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python notebooks/execute.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the quick setting (QUICK = True), as the tests run it")
    parser.add_argument("--only", nargs="+", default=[], metavar="NN", help="notebooks to run, by number or name (default: all)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write the .ipynb files here (default: beside the scripts)")
    parser.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="override a parameter (a Python literal, else a string) in the notebooks that define it")
    parser.add_argument("--timeout", type=int, default=1200, metavar="S", help="seconds a cell may take (default: 1200)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    parameters = dict(QUICK_PARAMETERS) if args.quick else {}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"error: -p {item!r}: write NAME=VALUE")
        parameters[name] = _literal(value)
    scripts = sources(args.only)
    known = set().union(*(parameter_names(read_notebook(s)) for s in scripts))
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise SystemExit(f"error: no notebook run here has the parameter(s) {', '.join(unknown)}")
    for script in scripts:
        path, seconds, _ = execute_notebook(script, parameters, args.out, args.timeout)
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        print(f"{script.name} -> {shown} ({'quick' if parameters.get('QUICK') else 'full'} setting, {seconds:.0f} s, "
              f"{path.stat().st_size // 1024} KiB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
