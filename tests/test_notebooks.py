"""The tutorial notebooks run top to bottom and reach their stated result."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_train_and_deploy_notebook(tmp_path, capsys):
    notebook = json.loads((REPO / "notebooks" / "01_train_and_deploy.ipynb").read_text())
    code = "\n\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "01_train_and_deploy.ipynb", "exec"), {"__name__": "__notebook__"})
    finally:
        os.chdir(cwd)
    assert "identical spikes: True" in capsys.readouterr().out
