"""The notebooks run top to bottom in a fresh kernel, and match their sources."""

import importlib.util
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ["01_tour", "02_demo"]


def _builder():
    spec = importlib.util.spec_from_file_location("notebook_builder", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stored(name):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def test_builder_knows_every_notebook():
    assert sorted(_builder().NOTEBOOKS) == NAMES
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_matches_build_py(name):
    built, stored = _builder().build(name), _stored(name)
    assert [(c.cell_type, c.source) for c in stored.cells] == [
        (c.cell_type, c.source) for c in built.cells
    ], f"notebooks/{name}.ipynb is stale: run python notebooks/build.py {name}"


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_has_its_outputs(name):
    cells = [c for c in _stored(name).cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in cells), "every code cell was executed"
    figures = [o for c in cells for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 4
    errors = [o for c in cells for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = nbformat.writes(_stored(name))
    assert "/work/" not in text and "/root/" not in text and "/home/" not in text


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_in_a_fresh_kernel(name, monkeypatch):
    # The kernel imports the jaxinfo of this checkout, whatever is installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = _stored(name)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - start
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    print(f"{name}: executed in {elapsed:.1f} s")
