"""Every notebook in ``notebooks/`` runs top to bottom without an error, in a kernel of
this very interpreter (so on a fresh machine the venv's packages are what it sees), from
the notebooks' folder, with no network; and the committed notebooks carry no outputs.

The kernel is described by a kernel spec written to a temporary folder, naming
``sys.executable``: a ``python3`` spec elsewhere on the machine (the user's, another
Python's) cannot be picked up instead.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
LOCOMO = REPO.parent / "shared" / "data" / "locomo" / "locomo-dev.json"
KERNEL = "hippograph-tests"
BUNDLED = "the bundled synthetic conversation"


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    folder = tmp_path_factory.mktemp("kernels")
    spec = folder / KERNEL
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "hippograph tests", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(folder)])


def execute(path: Path, specs: KernelSpecManager) -> tuple[nbformat.NotebookNode, float]:
    """Run every cell of the notebook at ``path``; the executed notebook and its seconds.
    A cell that raises stops the run with ``CellExecutionError`` (cell source and
    traceback in the message)."""
    notebook = nbformat.read(path, as_version=4)
    manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    client = NotebookClient(
        notebook,
        km=manager,
        timeout=600,
        allow_errors=False,
        resources={"metadata": {"path": str(FOLDER)}},
    )
    started = time.perf_counter()
    client.execute()
    return notebook, time.perf_counter() - started


def outputs(notebook: nbformat.NotebookNode) -> Iterator[dict[str, object]]:
    for cell in notebook.cells:
        if cell.cell_type == "code":
            yield from cell.get("outputs", [])


def text_of(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for output in outputs(notebook):
        if output["output_type"] == "stream":
            parts.append(str(output["text"]))
        elif output["output_type"] in ("execute_result", "display_data"):
            data = output.get("data", {})
            assert isinstance(data, dict)
            parts.append(str(data.get("text/plain", "")))
    return "".join(parts)


def check_clean_run(notebook: nbformat.NotebookNode) -> None:
    errors = [o for o in outputs(notebook) if o["output_type"] == "error"]
    assert not errors, f"error outputs: {errors}"
    stderr = "".join(
        str(o["text"])
        for o in outputs(notebook)
        if o["output_type"] == "stream" and o["name"] == "stderr"
    )
    assert "Traceback" not in stderr, stderr


def test_there_are_four_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_explore_the_graph.ipynb",
        "03_lifecycle.ipynb",
        "04_retrieval_quality.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(
    path: Path, kernel_specs: KernelSpecManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOCOMO_DATA", raising=False)
    notebook, seconds = execute(path, kernel_specs)
    print(f"{path.name}: {seconds:.1f} s")

    check_clean_run(notebook)
    text = text_of(notebook)
    if any("SOURCE = " in cell.source for cell in notebook.cells):  # it chooses its data
        expected = "the LoCoMo dev file" if LOCOMO.is_file() else BUNDLED
        assert f"using {expected}" in text


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "name", ["02_explore_the_graph.ipynb", "04_retrieval_quality.ipynb"], ids=lambda n: n[:2]
)
def test_notebook_runs_on_the_bundled_conversation(
    name: str, kernel_specs: KernelSpecManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not LOCOMO.is_file():
        pytest.skip("no LoCoMo dev file: the default run already used the bundled conversation")
    monkeypatch.setenv("LOCOMO_DATA", "bundled")
    notebook, seconds = execute(FOLDER / name, kernel_specs)
    print(f"{name} (bundled): {seconds:.1f} s")

    check_clean_run(notebook)
    assert f"using {BUNDLED}" in text_of(notebook)
