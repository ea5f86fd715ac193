"""Training speed on the Oxford spike-train regression task: lava_dl vs lava-dl 0.6.0 on the CPU
(issue 9, Speed).

The task of ``notebooks/04_oxford_regression.ipynb``: lava-dl's Oxford data (200 input spike trains,
200 target spike trains, T = 2000 steps of 1 ms, one sample), a CUBA-LIF network
``Dense 200 -> 256 -> Dense 256 -> 200`` (``threshold=0.1, current_decay=1, voltage_decay=0.1,
requires_grad=True``), ``loss.SpikeTime()`` (time constant 5, length 100), Adam (lr 0.003),
one ``Assistant.train`` call per epoch, 1 torch thread. Built twice from the same seed, with the
same initial weights and decays (lava-dl's network is loaded with lava_dl's state dict):

* ``lava_dl``: this package's blocks, loss and ``Assistant``;
* ``lava-dl 0.6.0``: Intel lava-dl 0.6.0's ``lava.lib.dl.slayer`` blocks, loss and ``Assistant``
  on the CPU (its per-time-step torch loops; lava-dl compiles C++/CUDA only when CUDA is
  available), installed from the wheel into the gitignored ``benchmarks/.cache`` by
  :mod:`_lava_dl_ref` and skipped, with the reason, when that fails.

The pair is trained from several seeds (``--seeds``, default 0, 1, 2). The epochs of a pair are
interleaved (one epoch of each per round, alternating which goes first) so both share the
machine's noise.

The table gives per run the median seconds per epoch and the losses logged by its ``LearningStats``:
first, last, mean of the last 10 epochs (the loss of one epoch jumps by a few per cent from epoch to
epoch, so the comparisons use 10-epoch means), best; and the first epoch at which the run's 10-epoch
mean loss is at or below lava-dl's final 10-epoch mean (or equal to it within 1e-4, the float
rounding by which the runs' losses differ while they compute the same thing). Below: the median of
the per-epoch time ratios over all seeds, how many seeds reach lava-dl's loss in as many epochs or
fewer, and the mean relative gap between the two runs' last-10-epoch losses over the seeds with its
standard error. Targets: ``>= 10x`` faster, and lava-dl's loss reached in the same number of epochs
or fewer.

The two runs of a seed compute the same forward pass and the same weight gradients (to float
rounding), so their losses are equal for the first epochs. They part when a learnt decay crosses a
rounding boundary in one run and not in the other: lava_dl's decay gradients are the true
derivatives, lava-dl's have the opposite sign and lack the 1/4096 factor
(``docs/reference-neurons.md`` §5.7 of the shared reference notes).

With ``--decay-gradient lava-dl`` lava_dl's neurons take ``decay_gradient="lava-dl"`` (lava-dl's
decay gradient, see :class:`lava_dl.slayer.neuron.base.Neuron`): the two runs of a seed then stay
equal longer, until float rounding in the weight gradients tips a spike.

Run ``python benchmarks/bench_oxford.py [--epochs N] [--seeds 0,1,2] [--fixtures DIR]
[--decay-gradient exact|lava-dl]`` (default 200 epochs, about 10 minutes, almost all of it lava-dl's).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

import lava_dl  # noqa: E402,F401  (installs the lava-nc Python 3.11 fix first)
from lava_dl import slayer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lava_dl_ref  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "lava_dl_0.6"
NEURONS, STEPS, HIDDEN = 200, 2000, 256
PARAMS = dict(threshold=0.1, current_decay=1, voltage_decay=0.1, requires_grad=True)
LR = 0.003


def oxford(fixtures: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and target spike tensors ``(1, 200, 2000)`` from lava-dl's numpy spike files."""
    def tensor(name: str) -> torch.Tensor:
        event = slayer.io.read_np_spikes(fixtures / "oxford" / f"{name}.npy")
        return torch.from_numpy(event.to_tensor(dim=(1, NEURONS, STEPS))).float().reshape(1, NEURONS, STEPS)

    return tensor("input"), tensor("output")


class Run:
    """One network with its loss, optimizer, statistics and ``Assistant``, all from ``slayer_module``
    (lava_dl's ``slayer`` or lava-dl's ``lava.lib.dl.slayer``)."""

    def __init__(self, slayer_module, seed: int, state: dict | None = None, **neuron_options):
        self.module = slayer_module
        torch.manual_seed(seed)
        block = slayer_module.block.cuba
        params = dict(PARAMS, **neuron_options)
        self.net = torch.nn.Sequential(block.Dense(params, NEURONS, HIDDEN),
                                       block.Dense(params, HIDDEN, NEURONS))
        if state is not None:
            self.net.load_state_dict(state)  # the same initial weights and decays, exactly
        self.stats = slayer_module.utils.LearningStats()
        optimizer = torch.optim.Adam(self.net.parameters(), lr=LR)
        self.assistant = slayer_module.utils.Assistant(self.net, slayer_module.loss.SpikeTime(), optimizer,
                                                       self.stats)
        self.times: list[float] = []

    def epoch(self, x: torch.Tensor, target: torch.Tensor) -> None:
        start = time.perf_counter()
        self.assistant.train(x, target)
        self.stats.update()
        self.times.append(time.perf_counter() - start)

    @property
    def losses(self) -> list[float]:
        return self.stats.training.loss_log


WINDOW = 10  # epochs: the loss compared is its mean over this many epochs (the loss is noisy)


def window_mean(losses: list[float], end: int) -> float:
    """Mean of the ``WINDOW`` losses (fewer at the start) ending at 1-based epoch ``end``."""
    return statistics.fmean(losses[max(end - WINDOW, 0):end])


#: Relative difference below which two losses count as equal (float rounding of the same computation).
SAME = 1e-4


def reaches(losses: list[float], level: float) -> int | None:
    """First 1-based epoch at which the ``WINDOW``-epoch mean loss is at or below ``level``, or equal to it
    within :data:`SAME` (``None`` if never)."""
    first = min(WINDOW, len(losses))
    return next((end for end in range(first, len(losses) + 1)
                 if window_mean(losses, end) <= level * (1 + SAME)), None)


def train_pair(reference, seed: int, epochs: int, x: torch.Tensor, target: torch.Tensor,
               decay_gradient: str = "exact") -> dict[str, Run]:
    """Train lava_dl (and lava-dl when ``reference`` is given) from one seed, epochs interleaved."""
    runs = {"lava_dl": Run(slayer, seed, decay_gradient=decay_gradient)}
    if reference is not None:
        runs["lava-dl 0.6.0"] = Run(reference, seed, runs["lava_dl"].net.state_dict())
    names = list(runs)
    for epoch in range(epochs):
        for name in names[epoch % len(names):] + names[:epoch % len(names)]:
            runs[name].epoch(x, target)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, one pair of runs each")
    parser.add_argument("--fixtures", type=Path, default=Path(os.environ.get("LAVA_DL_FIXTURES", FIXTURES)))
    parser.add_argument("--decay-gradient", choices=("exact", "lava-dl"), default="exact",
                        help="lava_dl's decay gradient: the exact one (default), or lava-dl's "
                             "(decay_gradient='lava-dl')")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    torch.set_num_threads(1)
    x, target = oxford(args.fixtures)

    with contextlib.redirect_stdout(io.StringIO()):  # lava-dl prints a warning about an optional toolbox
        reference, reason = _lava_dl_ref.import_slayer()
    if reference is None:
        print(f"lava-dl 0.6.0 skipped: {reason}")
    else:
        ours, theirs = Run(slayer, seeds[0]), Run(reference, seeds[0])
        theirs.net.load_state_dict(ours.net.state_dict())
        with torch.no_grad():
            first = ours.net(x), theirs.net(x)
        print(f"initial forward (seed {seeds[0]}): {int(first[0].sum())} output spikes, "
              f"{int((first[0] != first[1]).sum())} differ between lava_dl and lava-dl 0.6.0")
        theirs.epoch(x, target)  # warm-up epochs (compilation, allocator), not counted
    Run(slayer, seeds[0]).epoch(x, target)

    results = {seed: train_pair(reference, seed, args.epochs, x, target, args.decay_gradient)
               for seed in seeds}

    n = args.epochs
    print(f"\nOxford regression: CUBA {NEURONS}-{HIDDEN}-{NEURONS}, T={STEPS}, loss.SpikeTime(), "
          f"Adam lr={LR}, Assistant.train, 1 torch thread, lava_dl's decay_gradient={args.decay_gradient!r},"
          f"\n{n} epochs per run, the two runs of a seed "
          f"interleaved epoch by epoch.\n'last {WINDOW}': mean loss of the last {WINDOW} epochs; 'reaches': "
          f"first epoch at which the run's\n{WINDOW}-epoch mean loss is at or below lava-dl's "
          f"'last {WINDOW}'.")
    header = (f"{'seed':>4s}  {'':14s} {'s/epoch':>8s} {'loss @1':>8s} {f'loss @{n}':>9s} "
              f"{f'last {WINDOW}':>8s} {'best':>7s} {'@':>4s}  {'reaches':>8s}")
    print(header)
    print("-" * len(header))
    ratios, wins = [], 0
    for seed, runs in results.items():
        level = window_mean(runs["lava-dl 0.6.0"].losses, n) if reference is not None else None
        epochs = {}
        for name, run in runs.items():
            best = min(run.losses)
            epochs[name] = reaches(run.losses, level) if level is not None else None
            reach_text = "-" if level is None else "never" if epochs[name] is None else f"{epochs[name]}"
            print(f"{seed:4d}  {name:14s} {statistics.median(run.times):8.4f} {run.losses[0]:8.0f} "
                  f"{run.losses[-1]:9.0f} {window_mean(run.losses, n):8.0f} {best:7.0f} "
                  f"{run.losses.index(best) + 1:4d}  {reach_text:>8s}")
        if reference is not None:
            ours, theirs = runs["lava_dl"], runs["lava-dl 0.6.0"]
            ratios += [b / a for a, b in zip(ours.times, theirs.times)]
            wins += epochs["lava_dl"] is not None and epochs["lava_dl"] <= epochs["lava-dl 0.6.0"]
            pairs = list(zip(ours.losses, theirs.losses))
            agree = next((i for i, (a, b) in enumerate(pairs) if abs(a - b) > SAME * abs(b)), len(pairs))
            print(f"{'':6s}the two losses are equal (rel. {SAME:g}) for the first {agree} epochs")
    if ratios:
        print(f"\nspeed-up: {statistics.median(ratios):.1f}x (median of the per-epoch ratios, all seeds; "
              f"target >= 10x)")
        print(f"lava_dl reaches lava-dl's loss in as many epochs or fewer for {wins} of {len(results)} seeds")
        gaps = [window_mean(runs["lava_dl"].losses, n) / window_mean(runs["lava-dl 0.6.0"].losses, n) - 1
                for runs in results.values()]
        spread = ""
        if len(gaps) > 1:
            spread = f" ± {statistics.stdev(gaps) / len(gaps) ** 0.5:.2%} (standard error)"
        print(f"last-{WINDOW} loss, lava_dl vs lava-dl, mean over the seeds: "
              f"{statistics.fmean(gaps):+.2%}{spread}")
        if args.decay_gradient == "exact":
            print("(the two runs of a seed start identical; lava_dl's decay gradients are the true "
                  "derivatives, lava-dl's\nhave the opposite sign and no 1/4096 factor, so the runs part "
                  "once Adam moves a decay across a\nrounding boundary; --decay-gradient lava-dl gives "
                  "lava_dl lava-dl's)")

if __name__ == "__main__":
    main()
