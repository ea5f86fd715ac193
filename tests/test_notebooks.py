"""The tutorial notebooks, executed top to bottom by a real Jupyter kernel (nbclient), reach their
stated results and end in figures.

The kernel inherits this process's environment with ``LAVA_DL_NOTEBOOK_QUICK=1``: notebooks that
train read it to use small epoch counts (their full counts are stated in the notebook). Notebooks
are stored with cleared outputs.
"""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO

NOTEBOOKS = REPO / "notebooks"


def execute(name: str, workdir, timeout: int = 900) -> nbformat.NotebookNode:
    """Run notebook ``name`` in a fresh kernel whose working directory is ``workdir``."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    os.environ["LAVA_DL_NOTEBOOK_QUICK"] = "1"
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def printed(nb: nbformat.NotebookNode) -> str:
    """All text the notebook's code cells printed."""
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.outputs if out.output_type == "stream")


def images(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the code cells that displayed a PNG image."""
    return [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            and any("image/png" in out.get("data", {}) for out in cell.outputs)]


def test_notebooks_are_stored_without_outputs():
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert len(names) >= 2
    for name in names:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs not cleared"


def test_notebook_cells_have_ids():
    """nbformat 4.5 cells carry an id (nbformat warns about a missing one, and will refuse it)."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        missing = [i for i, cell in enumerate(cells) if "id" not in cell]
        assert not missing, f"{path.name}: cells {missing} have no id (fix: nbformat.validator.normalize)"


@pytest.mark.slow
def test_train_and_deploy(tmp_path):
    nb = execute("01_train_and_deploy.ipynb", tmp_path)
    assert "identical spikes: True" in printed(nb)
    assert "identical to Lava on the first samples: True" in printed(nb)
    assert "identical to slayer on all: True" in printed(nb)
    assert (tmp_path / "digits.net").is_file()


def test_neuron_gallery(tmp_path):
    nb = execute("02_neuron_gallery.ipynb", tmp_path)
    counts = {line.split()[0]: int(line.split()[1]) for line in printed(nb).splitlines()
              if line.strip().endswith("messages")}
    assert set(counts) == {"CUBA-LIF", "ALIF", "RF", "RF-IZ", "ADRF", "ADRF-IZ", "sigma-delta"}
    assert all(n > 0 for n in counts.values())
    assert counts["ALIF"] < counts["CUBA-LIF"]  # the adaptive threshold lowers the rate
    assert images(nb) and images(nb)[-1] == max(i for i, c in enumerate(nb.cells) if c.cell_type == "code")


def test_pilotnet_sdnn(tmp_path, fixtures_dir, monkeypatch):
    monkeypatch.setenv("LAVA_DL_FIXTURES", str(fixtures_dir))
    nb = execute("03_pilotnet_sdnn.ipynb", tmp_path)
    out = printed(nb)
    assert "identical to lava-dl's recorded run: True" in out
    rates = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("  ") and ": " in line]
    assert len(rates) == 9 and all(0 < r <= 1 for r in rates)
    assert images(nb)[-1] == len(nb.cells) - 1


def _value(out: str, prefix: str) -> float:
    """The number that follows ``prefix`` on the notebook's printed line starting with it."""
    lines = [line for line in out.splitlines() if line.startswith(prefix)]
    assert lines, f"the notebook printed no line starting with {prefix!r}"
    return float(lines[-1][len(prefix):].split()[0])


def test_oxford_regression(tmp_path, fixtures_dir, monkeypatch):
    monkeypatch.setenv("LAVA_DL_FIXTURES", str(fixtures_dir))
    nb = execute("04_oxford_regression.ipynb", tmp_path)
    out = printed(nb)
    assert "input: 1881 spikes, target: 10361 spikes, tensors (1, 200, 2000)" in out
    assert _value(out, "final loss:") < _value(out, "first loss:") / 4  # trained (quick mode: 300 epochs)
    assert "identical spikes: True" in out  # Lava fixed_pt == slayer, 2000 steps, no offset
    assert (tmp_path / "oxford.net").is_file()
    assert images(nb)[-1] == len(nb.cells) - 1


def test_event_classification(tmp_path):
    nb = execute("05_event_classification.ipynb", tmp_path)
    out = printed(nb)
    assert "tensor: (2, 16, 16, 60)" in out  # the tonic pipeline ends in ToSlayerTensor
    kept, total = (int(word) for word in out.split("Denoise kept ")[1].split()[:3:2])
    assert 0 < kept < total  # Denoise removed the isolated noise events
    assert _value(out, "final test accuracy:") >= 0.75  # chance is 0.25
    assert images(nb)[-1] == len(nb.cells) - 1


@pytest.mark.slow
def test_nir_notebook(tmp_path):
    nb = execute("06_nir_snntorch_to_loihi.ipynb", tmp_path)
    out = printed(nb)
    assert "dt read from the graph: 0.0001" in out  # snnTorch's step, found from r = tau / dt
    assert "Lava == netx.simulate: True" in out
    assert "slayer == Lava (imported): True" in out
    assert "slayer == Lava (fine-tuned): True" in out
    assert _value(out, "agreement snnTorch vs Lava:") >= 0.97  # 8-bit weights, truncating decays
    assert _value(out, "snnTorch accuracy:") >= 0.6 and _value(out, "fine-tuned Lava accuracy:") >= 0.6
    assert (tmp_path / "fine_tuned.net").is_file()
    assert images(nb)[-1] == len(nb.cells) - 1
