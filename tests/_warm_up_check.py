"""Run by tests/test_warm_up.py in a fresh interpreter (so that no earlier test compiled anything).

For each network: the leaf models' ``lava_dl_warm_up`` hooks (:func:`lava_dl.runtime.warm_up_models`,
what a Lava run calls in the host before it forks its workers), then a few steps of those models
through :class:`lava_dl.netx.fused.LocalGraph`, once with Lava's per-step methods and once with a static
schedule (what a fused network's worker runs). The steps must add no compiled signature to any kernel of
``lava_dl.core``: everything a worker calls was compiled ahead. Prints one line per network and tag;
exits 1 listing the kernels a step had to compile. ``--large``: every weight matrix is treated as larger
than ``WARM_UP_ENTRIES`` (the hooks compile on one-entry matrices instead of laying it out).
"""

from __future__ import annotations

import importlib
import pathlib
import pkgutil
import sys

import numpy as np
from numba.core.registry import CPUDispatcher

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lava_dl  # noqa: E402, F401
import lava_dl.core  # noqa: E402
from lava_dl import netx, runtime  # noqa: E402
from lava_dl.netx.fused import FUSED_TAGS, LocalGraph, leaf_models  # noqa: E402
from scripts.make_lava_dl_fixtures import CASES  # noqa: E402

FIX = ROOT / "tests" / "fixtures" / "lava_dl_0.6"
STEPS = 4


def _kernels(*extra_modules: str) -> dict[str, CPUDispatcher]:
    found = {}
    names = [f"lava_dl.core.{info.name}" for info in pkgutil.iter_modules(lava_dl.core.__path__)]
    for module_name in names + list(extra_modules):
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher):
                found[f"{value.py_func.__module__}.{value.py_func.__qualname__}"] = value
    return found


def _signatures(kernels: dict) -> dict[str, set]:
    return {name: set(kernel.overloads) for name, kernel in kernels.items()}


def _networks():
    """``(label, Network kwargs)``: every lava-dl fixture (every family; conv, convT, pool, unpool,
    recurrent, axonal and per-synapse delays), dense ones also with sparse synapses, and a fused one (first:
    the others' static schedules compile the gathers a fused worker needs too)."""
    # (its Flatten moves elements: a gather in the fused worker's static schedule)
    yield "cuba_conv (fused)", {"net_config": str(FIX / "cuba_conv.net"), "fused": True,
                                "input_shape": _xyc(CASES["cuba_conv"].input_shape)}
    for name, case in CASES.items():
        kwargs = {"net_config": str(FIX / f"{name}.net")}
        if len(case.input_shape) == 3:
            kwargs["input_shape"] = _xyc(case.input_shape)
        if case.delays:
            yield f"{name} (axonal delays)", {**kwargs, "delay_mode": "axonal"}
            yield f"{name} (synaptic delays, sparse)", {**kwargs, "delay_mode": "lava-dl",
                                                         "sparse_fc_layer": True}
        if name in ("cuba_dense", "sdnn_dense"):
            yield f"{name} (sparse)", {**kwargs, "sparse_fc_layer": True}
        yield name, kwargs


def _xyc(shape: tuple) -> tuple:
    """Lava's ``(x, y, c)`` of slayer's ``(c, y, x)``."""
    c, y, x = shape
    return (x, y, c)


def _only_what_is_needed(kernels: dict) -> list[str]:
    """In the fresh interpreter: building a dense CUBA network compiles nothing, and warming its
    ``fixed_pt`` models compiles one signature of the Dense kernel and the CUBA kernels, nothing else
    (no conv, sparse, delay or float kernel)."""
    problems = []
    net = netx.hdf5.Network(net_config=str(FIX / "cuba_dense.net"))
    compiled = {name: len(k.overloads) for name, k in kernels.items() if k.overloads}
    if compiled:
        problems.append(f"building the network compiled {compiled}")
    runtime.warm_up_models(leaf_models(net.layers, "fixed_pt").items())
    compiled = {name: len(k.overloads) for name, k in kernels.items() if k.overloads}
    if compiled.get("lava_dl.core.synapse.dense_fixed_rows") != 1:
        problems.append(f"expected one signature of dense_fixed_rows, got {compiled}")
    if not any(name.startswith("lava_dl.core.cuba.") for name in compiled):
        problems.append(f"no CUBA kernel compiled: {compiled}")
    unneeded = [name for name in compiled
                if any(word in name for word in ("conv", "sparse", "delay", "float", "accumulate"))]
    if unneeded:
        problems.append(f"compiled kernels the network does not use: {unneeded}")
    print(f"{'cuba_dense (only its kernels)':42s} {'fixed_pt':11s} {'ok' if not problems else problems}")
    return problems


def main() -> int:
    kernels = _kernels()
    failures = []
    if "--large" in sys.argv:
        import process_models.delay_models
        import process_models.synapse_models

        for module in (process_models.synapse_models, process_models.delay_models):
            module.WARM_UP_ENTRIES = 0
    else:
        problems = _only_what_is_needed(kernels)
        if problems:
            failures.append(("cuba_dense", "fixed_pt", problems))
    for label, kwargs in _networks():
        fused = kwargs.get("fused", False)
        for select_tag in FUSED_TAGS:
            net = netx.hdf5.Network(**kwargs)
            try:
                models = leaf_models(net.layers, select_tag)
            except Exception:  # noqa: BLE001  (a family without float models)
                print(f"{label:42s} {select_tag:11s} no models")
                continue
            if fused:  # the fused model's own hook warms its layers
                (fused_model,) = [m for m in net.lava_dl_process_models()
                                  if select_tag in getattr(m, "tags", (select_tag,))]
                runtime.warm_up_models([(net, fused_model)])
            else:
                runtime.warm_up_models(models.items())
            # a fused network's worker also runs the graph's own gathers (virtual ports' transforms)
            watched = _kernels("lava_dl.netx.fused") if fused else kernels
            before = _signatures(watched)
            rng = np.random.default_rng(0)
            dtype = np.int32 if select_tag == "fixed_pt" else np.float64
            # a fused Network's layers take its input at the first layer's port (as its worker steps them)
            entry, exit = (net.in_layer.inp, net.out_layer.out) if fused else (net.inp, net.out)
            for static in (False, True):
                graph = LocalGraph(models, entry, exit, static=static)
                try:
                    for _ in range(STEPS):
                        graph.step((rng.random(net.inp.shape) < 0.3).astype(dtype))
                finally:
                    graph.close()
            after = _signatures(watched)
            new = {name: sorted(map(str, after[name] - before[name])) for name in after
                   if after[name] - before[name]}
            print(f"{label:42s} {select_tag:11s} {'ok' if not new else 'COMPILED ' + str(new)}", flush=True)
            if new:
                failures.append((label, select_tag, new))
    for label, select_tag, new in failures:
        print(f"FAIL {label} {select_tag}: {new}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
