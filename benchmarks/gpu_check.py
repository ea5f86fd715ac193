"""The GPU session's one check (issue 11 items 1-3): real-device equivalence and ONM timing.

Run on a machine with a CUDA GPU, torch (CUDA build) and numba-cuda; Lava and network
access are not needed. From the repository root::

    bash benchmarks/gpu_check.sh                  # everything (~5-7 min on an H200)
    bash benchmarks/gpu_check.sh --sizes 4096     # a quicker timing

The one device call: first, here, ``bash scripts/fetch_gpu_wheels.sh`` (the peer libraries
as pure-Python wheels in the gitignored ``.whl/``, ~3.5 MiB), then
``run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)``. The
repository travels as the working tree (tracked and untracked, not ignored, files) plus the
carried ``.whl/``; the log also lands in ``$OUT/gpu_check.log``. Without ``.whl/`` the peers'
rows say ``skipped``.

Sections (each reports its own failure and the script goes on):

1. environment (GPU, torch, numba, numba-cuda);
2. equivalence of the CUDA kernels with the CPU kernels on the device
   (``tests/_cuda_sim_check.py --device cuda``, all families: CUBA, ALIF, sigma-delta, RF,
   RF-IZ, ADRF, ADRF-IZ; spikes, messages and states bit for bit, gradients within 1e-6 of
   the largest gradient) for several shapes;
3. the Open Neuromorphic benchmark setup: one Linear (n -> n, no bias) and one CUBA layer,
   batch 16, T = 500, binary input spikes (10 %), forward + backward of ``sum(spikes)``,
   n = 4k, 8k, 16k: median time of 10 steps after 3 warm-ups (CUDA events) and peak GPU
   memory, for the linear layer alone (its floor), ours, and ours with 8-bit weight
   quantization; plus the bandwidth floor of the neuron kernels and the FLOPs of the
   linear layer;
4. the same benchmark for ours and its peers side by side (``bench_onm_peers.py``: lava-dl
   0.6.0's CUDA path, SpikingJelly 0.0.0.0.14 cupy and 2.x, Norse eager and
   ``torch.compile``-d, snnTorch), one markdown table. ``gpu_check.sh`` JIT-compiles
   lava-dl's CUDA extensions in the background during sections 1-2 (``setup s`` and the
   status column show the compile time).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_onm_peers as onm  # noqa: E402  (the ONM setup and its one timing helper)

BATCH, STEPS, RATE = onm.BATCH, onm.STEPS, onm.RATE


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def environment() -> None:
    import numba
    import numpy

    try:
        from importlib.metadata import version

        numba_cuda = version("numba-cuda")
    except Exception as err:  # noqa: BLE001 - report whatever is missing
        numba_cuda = f"missing ({err})"
    print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
          f"numpy {numpy.__version__}, numba {numba.__version__}, numba-cuda {numba_cuda}")
    if torch.cuda.is_available():
        prop = torch.cuda.get_device_properties(0)
        print(f"GPU {prop.name}, {prop.total_memory / 2**30:.0f} GiB, cc {prop.major}.{prop.minor}, "
              f"{prop.multi_processor_count} SMs")
    else:
        print("torch sees no GPU")
    print("lava imported:", "lava" in sys.modules)


def equivalence(shapes: list[str]) -> bool:
    import _cuda_sim_check

    ok = True
    for shape in shapes:
        start = time.perf_counter()
        ok &= _cuda_sim_check.main(["--device", "cuda", "--shape", shape]) == 0
        print(f"   ({shape}: {time.perf_counter() - start:.1f} s)")
    import _cuda_device_check  # user-facing slayer code on CUDA tensors (functional dynamics, delays, ...)

    ok &= _cuda_device_check.main(["--device", "cuda"]) == 0
    return ok


def _onm_row(n: int, device: torch.device) -> str:
    """One row of the ONM table for ``n`` neurons."""
    cfg = onm.Config(device)
    steps = {"floor": lambda: onm.build_floor(n, cfg), "ours": lambda: onm.build_ours(n, cfg),
             "q8": lambda: onm.build_ours(n, cfg, quantize=True)}
    row = [f"{n:>6}"]
    peak = float("nan")
    for name, build in steps.items():
        try:
            ms, mem = onm.time_step(build(), device)
            row.append(f"{ms:>8.2f} ms")
            if name == "ours":
                peak = mem
        except Exception:  # noqa: BLE001 - report and go on
            traceback.print_exc()
            row.append(f"{'error':>11}")
    elements = BATCH * STEPS * n
    # forward: read x, write s, u, v; backward: read grad_s, v, s, write grad_x (4 bytes each)
    floor_ms = elements * 32 / 4.3e12 * 1e3
    flops = 3 * 2 * BATCH * STEPS * n * n
    row += [f"{peak:>8.0f}", f"{floor_ms:>9.2f} ms", f"{flops / 1e12:>12.2f}"]
    return " | ".join(row)


def onm_timing(sizes: list[int]) -> None:
    device = torch.device("cuda")
    tf32 = torch.backends.cuda.matmul.allow_tf32
    print(f"batch {BATCH}, T {STEPS}, input spike rate {RATE}, fp32 matmul (allow_tf32={tf32}); "
          "neuron floor: 32 bytes per neuron-step at 4.3 TB/s")
    header = f"{'n':>6} | {'linear only':>11} | {'lava_dl':>11} | {'lava_dl q8':>11} | {'peak MiB':>8} | " \
             f"{'neuron floor':>12} | {'linear TFLOP':>12}"
    print(header)
    print("-" * len(header))
    for n in sizes:
        print(_onm_row(n, device), flush=True)
        torch.cuda.empty_cache()


def peers(args: argparse.Namespace) -> None:
    """Section 4: :mod:`bench_onm_peers` on the GPU, peers from the wheels of ``args.wheels``."""
    if args.wheels is not None and args.wheels.is_dir():
        print("peer wheels:", ", ".join(sorted(onm.add_wheels(args.wheels, args.site))))
    else:
        print(f"no peer wheels at {args.wheels} (scripts/fetch_gpu_wheels.sh): missing peers are skipped")
    cfg = onm.config(args, "cuda")
    print(f"batch {cfg.batch}, T {cfg.steps}, median of {cfg.repeats} after {cfg.warmup} warm-ups, "
          f"budget {cfg.max_seconds:g} s per row", flush=True)
    rows = onm.run_peers([p.strip() for p in args.peers.split(",") if p.strip()],
                         sorted(int(s) for s in args.sizes.split(",")), cfg)
    print(onm.table(rows), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    onm.add_arguments(parser)  # --sizes, --peers, --wheels, --max-seconds ... (sections 3-4)
    parser.set_defaults(wheels=ROOT / ".whl", max_seconds=30.0)
    parser.add_argument("--shapes", default="2,5,8;3,300,50;16,1024,100",
                        help="N,K,T shapes of the equivalence check, ';'-separated")
    parser.add_argument("--skip-equivalence", action="store_true")
    parser.add_argument("--skip-peers", action="store_true")
    args = parser.parse_args(argv)
    failed = False
    for title, run in (("environment", environment),
                       ("CUDA vs CPU kernels (bit-exact states and spikes, gradients within 1e-6 of max)",
                        None if args.skip_equivalence else lambda: equivalence(args.shapes.split(";"))),
                       ("ONM benchmark: Linear + CUBA, forward + backward",
                        lambda: onm_timing([int(s) for s in args.sizes.split(",")])),
                       ("ONM benchmark: ours and its peers (bench_onm_peers.py)",
                        None if args.skip_peers else lambda: peers(args))):
        if run is None:
            continue
        section(title)
        try:
            if run() is False:
                failed = True
                print("FAILED")
        except Exception:  # noqa: BLE001 - one section's failure must not hide the others
            traceback.print_exc()
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
