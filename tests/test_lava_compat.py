"""lava-nc 0.10.0 works on this Python whichever of Lava and lava_dl is imported first."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("first", ["lava_dl", "lava.magma.core.run_configs"])
def test_import_order(first):
    code = (f"import {first}\n"
            "import lava.magma.compiler.var_model as vm\n"
            "from lava.magma.core.run_configs import Loihi1SimCfg\n"
            "import lava_dl.netx\n"
            "assert vm.CoreEncoder().x is not vm.CoreEncoder().x\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
