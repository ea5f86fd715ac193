"""Generate the lava-dl 0.6.0 reference files in ``tests/fixtures/lava_dl_0.6``.

Every case is a small network built with **lava-dl 0.6.0's own** slayer blocks (on the
CPU, where lava-dl runs its per-time-step torch loops), with seeded random weights on the
8-bit grid lava-dl quantizes to. For each case the script stores

* ``<name>.net``: the file lava-dl's ``export_hdf5`` writes (an h5py file with a ``layer``
  group and ``blocks[i].export_hdf5(layer.create_group(f'{i}'))``, as lava-dl's tutorials do);
* ``<name>.npz``: the input, lava-dl's slayer output and per-block outputs, the parameters
  (lava-dl's ``state_dict``, lava-dl's names), and the gradients of lava-dl's backward for
  the loss ``sum(output * cotangent)`` with respect to every trainable parameter and the input.

lava-dl is needed only to regenerate the files (``python scripts/make_lava_dl_fixtures.py``);
the network definitions below are plain functions of a ``slayer`` module, so the tests
build the same networks with ``lava_dl.slayer`` (lava-dl's import ``lava.lib.dl.slayer``
rewritten) and load the stored parameters into them.

lava-dl 0.6.0 is imported as the benchmarks do (:func:`benchmarks._lava_dl_ref.import_slayer`:
its wheel installed with ``--no-deps`` into the gitignored ``benchmarks/.cache``, plotting and
vision imports stubbed). Two of its bugs are worked around here, and the README says so:
``adrf_iz.Neuron.forward`` passes three arguments to ``spike`` (TypeError), so the ADRF-IZ
case runs ``spike(*dynamics(x))``; and a sigma-delta ``cum_error`` neuron fails on a batch of
one (its error buffer keeps shape ``(1,)``), so every case runs a batch of two.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import pathlib
import sys
import types
import typing as ty

import numpy as np
import torch
import torch.nn.functional as F

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "lava_dl_0.6"
#: Batch size of the stored runs (two samples; see the module docstring).
BATCH = 2
#: Batch size of the first, shape-fixing forward pass (different from BATCH, so that every
#: stateful lava-dl module re-creates its states from zero for the stored run).
INIT_BATCH = 3
LAVA_DL_VERSION = "0.6.0"


@dataclasses.dataclass(frozen=True)
class Case:
    """One fixture: a network definition and how it is driven.

    ``build(slayer)`` returns the ``torch.nn.Sequential`` made with the blocks of the given
    ``slayer`` module (lava-dl's or lava_dl's). ``weights`` maps a block index to the
    standard deviation (integer weight units) of its random weights. ``graded`` selects a
    graded random-walk input on the 1/64 grid (sigma-delta) instead of binary spikes.
    """

    name: str
    doc: str
    build: ty.Callable[[types.ModuleType], torch.nn.Sequential]
    input_shape: tuple[int, ...]
    steps: int
    weights: dict[int, float]
    seed: int
    graded: bool = False
    spike_rate: float = 0.3
    #: block indices whose axonal delays are randomised (whole steps in [0, max_delay])
    delays: tuple[int, ...] = ()
    max_delay: int = 6
    #: block indices whose neuron gets a random norm mean (a bias when deployed)
    norms: tuple[int, ...] = ()


# ---------------------------------------------------------------------------
# Neuron parameters (lava-dl's argument names)
# ---------------------------------------------------------------------------

def _cuba(**extra) -> dict:
    return {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.0625, **extra}


def _alif(**extra) -> dict:
    return {"threshold": 1.0, "threshold_step": 0.5, "current_decay": 0.25, "voltage_decay": 0.0625,
            "threshold_decay": 0.0625, "refractory_decay": 0.125, **extra}


def _rf(**extra) -> dict:
    return {"threshold": 0.5, "period": 9.0, "decay": 0.05, **extra}


def _adrf(**extra) -> dict:
    return {"threshold": 0.5, "threshold_step": 0.25, "period": 9.0, "decay": 0.05, "threshold_decay": 0.0625,
            "refractory_decay": 0.125, **extra}


def _sdnn(**extra) -> dict:
    return {"threshold": 0.125, "activation": F.relu, **extra}


#: Per-channel variants (``shared_param=False``): lava-dl draws each channel's value from
#: the range at the first forward pass (stored with the other parameters).
_PER_CHANNEL_CUBA = dict(shared_param=False, current_decay=(0.1, 0.4), voltage_decay=(0.02, 0.2))
_PER_CHANNEL_ALIF = dict(_PER_CHANNEL_CUBA, threshold_decay=(0.02, 0.2), refractory_decay=(0.05, 0.3))
_PER_CHANNEL_RF = dict(shared_param=False, period=(6.0, 14.0), decay=(0.02, 0.1))
_PER_CHANNEL_ADRF = dict(_PER_CHANNEL_RF, threshold_decay=(0.02, 0.2), refractory_decay=(0.05, 0.3))


# ---------------------------------------------------------------------------
# Network definitions: functions of a slayer module
# ---------------------------------------------------------------------------

def _cuba_dense(slayer):
    b, norm = slayer.block.cuba, slayer.neuron.norm.MeanOnlyBatchNorm
    return torch.nn.Sequential(
        b.Dense(_cuba(norm=norm, requires_grad=True), 12, 10),
        b.Dense(_cuba(**_PER_CHANNEL_CUBA), 10, 6),
    )


def _cuba_conv(slayer):
    b = slayer.block.cuba
    return torch.nn.Sequential(
        b.Conv(_cuba(tau_grad=0.5, scale_grad=2.0), 2, 4, (2, 3), stride=(1, 2), padding=(1, 0),
               dilation=(2, 1), groups=2),
        b.Conv(_cuba(), 4, 3, (3, 1), stride=(2, 1), padding=(0, 1)),
        b.Flatten(),
        b.Dense(_cuba(), 3 * 3 * 6, 5),
    )


def _cuba_pool(slayer):
    b = slayer.block.cuba
    return torch.nn.Sequential(
        b.Conv(_cuba(), 1, 3, 3, padding=1),
        b.Pool(_cuba(threshold=1.0), 2),
        b.Flatten(),
        b.Dense(_cuba(), 3 * 4 * 4, 4),
    )


def _cuba_convt(slayer):
    b = slayer.block.cuba
    return torch.nn.Sequential(
        b.ConvT(_cuba(), 2, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
        b.ConvT(_cuba(), 4, 2, 2, stride=2),
        b.Flatten(),
        b.Dense(_cuba(), 2 * 10 * 12, 5),
    )


def _cuba_unpool(slayer):
    b = slayer.block.cuba
    return torch.nn.Sequential(
        b.Conv(_cuba(), 1, 2, 3, padding=1),
        b.Unpool(_cuba(threshold=1.0), 2),
        b.Flatten(),
        b.Dense(_cuba(), 2 * 8 * 8, 4),
    )


def _cuba_delay(slayer):
    b = slayer.block.cuba
    return torch.nn.Sequential(
        b.Dense(_cuba(), 10, 8, delay=True),
        b.Dense(_cuba(), 8, 5, delay=True),
    )


def _cuba_recurrent(slayer):
    b = slayer.block.cuba
    return torch.nn.Sequential(
        b.Dense(_cuba(), 10, 8),
        b.Recurrent(_cuba(), 8, 7),
        b.Dense(_cuba(), 7, 4),
    )


def _cuba_mask_wnorm(slayer):
    b = slayer.block.cuba
    mask = torch.from_numpy(np.random.default_rng(7).random((8, 10)) < 0.6).float()
    return torch.nn.Sequential(
        b.Dense(_cuba(), 10, 8, mask=mask),
        b.Dense(_cuba(), 8, 5, weight_norm=True),
    )


def _cuba_affine(slayer):
    b = slayer.block.cuba
    return torch.nn.Sequential(
        b.Dense(_cuba(), 10, 8),
        b.Affine(_cuba(), 8, 4, dynamics=True),
    )


def _cuba_affine_nodyn(slayer):
    b = slayer.block.cuba
    return torch.nn.Sequential(
        b.Dense(_cuba(), 10, 8),
        b.Affine(_cuba(), 8, 4, dynamics=False),
    )


def _alif_net(slayer):
    b = slayer.block.alif
    return torch.nn.Sequential(
        b.Conv(_alif(), 1, 3, (3, 2), stride=(1, 2)),
        b.Flatten(),
        b.Dense(_alif(tau_grad=2.0, scale_grad=0.5), 3 * 4 * 3, 8),
        b.Dense(_alif(**_PER_CHANNEL_ALIF), 8, 5),
    )


def _resonator_net(family: str, params, per_channel):
    def build(slayer):
        b = getattr(slayer.block, family)
        return torch.nn.Sequential(
            b.Dense(params(tau_grad=0.5, scale_grad=2.0), 12, 9),
            b.Dense(params(**per_channel), 9, 5),
        )

    return build


def _resonator_grad_net(slayer):
    """RF with learnable rotation (``requires_grad``): lava-dl's decay gradients lack 1/4096."""
    b = slayer.block.rf
    return torch.nn.Sequential(b.Dense(_rf(requires_grad=True), 12, 6))


def _sdnn_dense(slayer):
    b, norm = slayer.block.sigma_delta, slayer.neuron.norm.MeanOnlyBatchNorm
    return torch.nn.Sequential(
        b.Input(_sdnn(), weight=1.5, bias=0.25),
        b.Dense(_sdnn(norm=norm, requires_grad=True, tau_grad=0.5, scale_grad=2.0), 6, 8),
        b.Output(_sdnn(), 8, 3),
    )


def _sdnn_cum_error(slayer):
    b = slayer.block.sigma_delta
    return torch.nn.Sequential(
        b.Input(_sdnn(cum_error=True)),
        b.Conv(_sdnn(cum_error=True), 2, 3, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
        b.Flatten(),
        b.Dense(_sdnn(cum_error=True), 3 * 3 * 4, 6),
        b.Output(_sdnn(), 6, 3),
    )


CASES: dict[str, Case] = {c.name: c for c in (
    Case("cuba_dense", "CUBA Dense 12-10-6: MeanOnlyBatchNorm (bias) and learnable decays in block 0, "
         "per-channel decays (shared_param=False) in block 1", _cuba_dense, (12,), 40, {0: 40, 1: 50},
         seed=1, norms=(0,)),
    Case("cuba_conv", "CUBA Conv (kernel (2,3), stride (1,2), padding (1,0), dilation (2,1), groups 2) -> "
         "Conv (kernel (3,1), stride (2,1), padding (0,1)) -> Flatten -> Dense",
         _cuba_conv, (2, 7, 9), 30, {0: 90, 1: 80, 3: 110}, seed=2),
    Case("cuba_pool", "CUBA Conv 3x3 -> Pool 2x2 -> Flatten -> Dense", _cuba_pool, (1, 8, 8), 30,
         {0: 60, 3: 40}, seed=3),
    Case("cuba_delay", "CUBA Dense with axonal delays (delay=True) -> Dense with delays", _cuba_delay,
         (10,), 40, {0: 60, 1: 70}, seed=4, delays=(0, 1)),
    Case("cuba_recurrent", "CUBA Dense -> Recurrent (dense_rec) -> Dense", _cuba_recurrent, (10,), 40,
         {0: 60, 1: 60, 2: 60}, seed=5),
    Case("cuba_mask_wnorm", "CUBA Dense with a connectivity mask -> Dense with weight_norm", _cuba_mask_wnorm,
         (10,), 40, {0: 70, 1: 0}, seed=6),
    Case("cuba_affine", "CUBA Dense -> Affine(dynamics=True): output = the readout's voltage", _cuba_affine,
         (10,), 30, {0: 60, 1: 40}, seed=7),
    Case("cuba_affine_nodyn", "CUBA Dense -> Affine(dynamics=False): output = the synaptic input",
         _cuba_affine_nodyn, (10,), 30, {0: 60, 1: 40}, seed=8),
    Case("cuba_convt", "CUBA ConvT (kernel (3,2), stride (2,1), padding (1,0), dilation (1,2), groups 2) -> "
         "ConvT (kernel 2, stride 2) -> Flatten -> Dense", _cuba_convt, (2, 3, 4), 30,
         {0: 90, 1: 80, 3: 60}, seed=17),
    Case("cuba_unpool", "CUBA Conv 3x3 -> Unpool 2x2 -> Flatten -> Dense", _cuba_unpool, (1, 4, 4), 30,
         {0: 40, 3: 20}, seed=21),
    Case("alif", "ALIF Conv (kernel (3,2), stride (1,2)) -> Flatten -> Dense -> Dense (per-channel decays)",
         _alif_net, (1, 6, 6), 40, {0: 70, 2: 50, 3: 60}, seed=9),
    Case("rf", "RF (phase spiking) Dense 12-9 -> Dense 9-5 (per-channel rotation)",
         _resonator_net("rf", _rf, _PER_CHANNEL_RF), (12,), 50, {0: 60, 1: 70}, seed=10),
    Case("rf_iz", "RF-IZ Dense 12-9 -> Dense 9-5 (per-channel rotation)",
         _resonator_net("rf_iz", _rf, _PER_CHANNEL_RF), (12,), 50, {0: 60, 1: 70}, seed=11),
    Case("adrf", "ADRF Dense 12-9 -> Dense 9-5 (per-channel rotation and decays)",
         _resonator_net("adrf", _adrf, _PER_CHANNEL_ADRF), (12,), 50, {0: 60, 1: 70}, seed=12),
    Case("adrf_iz", "ADRF-IZ Dense 12-9 -> Dense 9-5 (per-channel rotation and decays); lava-dl's "
         "forward is broken, run as spike(*dynamics(x))",
         _resonator_net("adrf_iz", _adrf, _PER_CHANNEL_ADRF), (12,), 50, {0: 60, 1: 70}, seed=13),
    Case("rf_grad", "RF Dense 12-6 with learnable rotation (requires_grad=True)", _resonator_grad_net,
         (12,), 50, {0: 60}, seed=14),
    Case("sdnn_dense", "Sigma-delta Input (weight 1.5, bias 0.25) -> Dense (norm, learnable threshold) -> "
         "Output", _sdnn_dense, (6,), 30, {1: 60, 2: 50}, seed=15, graded=True, norms=(1,)),
    Case("sdnn_cum_error", "Sigma-delta with cum_error=True: Input -> Conv (kernel (3,2), stride (2,1), "
         "padding (1,0), dilation (1,2)) -> Flatten -> Dense -> Output", _sdnn_cum_error, (2, 5, 6), 30,
         {1: 60, 3: 50, 4: 50}, seed=16, graded=True),
)}


# ---------------------------------------------------------------------------
# Inputs shared by the generator and the tests
# ---------------------------------------------------------------------------

def make_input(case: Case) -> np.ndarray:
    """The case's input ``(BATCH, *input_shape, steps)`` (float32): spikes or a graded walk."""
    rng = np.random.default_rng(1000 + case.seed)
    shape = (BATCH, *case.input_shape, case.steps)
    if not case.graded:
        return (rng.random(shape) < case.spike_rate).astype(np.float32)
    steps = rng.integers(-12, 13, shape) * (rng.random(shape) < 0.4)
    walk = np.clip(np.cumsum(steps, axis=-1), -150, 150)  # on the 1/64 grid, within +-2.4
    return (walk / 64).astype(np.float32)


# ---------------------------------------------------------------------------
# Generation (needs lava-dl)
# ---------------------------------------------------------------------------

def _synapses(block) -> list:
    out = []
    for name in ("synapse", "input_synapse", "recurrent_synapse"):
        syn = getattr(block, name, None)
        if syn is None:
            continue
        out += [syn.real, syn.imag] if hasattr(syn, "imag") else [syn]
    return out


def _even_weights(rng, shape, std) -> torch.Tensor:
    """Real weights ``w_int / 64`` with ``w_int`` even in [-256, 254] (lava-dl's 8-bit grid)."""
    w = 2 * np.round(rng.normal(0, std, shape) / 2)
    return torch.from_numpy(np.clip(w, -256, 254) / 64).float()


def _randomise(case: Case, net, rng) -> None:
    with torch.no_grad():
        for i, block in enumerate(net):
            for syn in _synapses(block):
                if "weight_v" in dict(syn.named_parameters()):  # weight_norm: direction and norm
                    syn.weight_v.copy_(torch.from_numpy(rng.normal(0, 1, syn.weight_v.shape)).float())
                    syn.weight_g.copy_(torch.from_numpy(rng.uniform(1.5, 3, syn.weight_g.shape)).float())
                elif i in case.weights:
                    syn.weight.copy_(_even_weights(rng, syn.weight.shape, case.weights[i]))
            if i in case.delays:
                block.delay.delay.copy_(torch.from_numpy(
                    rng.integers(0, case.max_delay + 1, block.delay.delay.shape)).float())
            if i in case.norms:  # one mean per channel, as training leaves it (on the weight grid)
                channels = int(block.neuron.shape[0])
                mean = 2 * rng.integers(-4, 5, channels) / 64
                block.neuron.norm.running_mean = torch.from_numpy(mean).float()


#: The expression of lava-dl's delta unit that fails on every torch since 1.2 (``-`` on a bool
#: tensor), and its evident meaning (clear the error where a message was sent).
_CUM_ERROR_BUG = ("error *= 1 - (torch.abs(output[..., t]) > 0)",
                  "error *= ~(torch.abs(output[..., t]) > 0)")


def _patch_lava_dl(slayer) -> None:
    """Work around two lava-dl 0.6.0 bugs that make a forward pass raise (module docstring).

    ``adrf_iz.Neuron.forward`` becomes ``spike(*dynamics(x))``; the one failing expression of
    ``axon.delta`` (``cum_error=True``) is rewritten in its source and the module re-executed.
    """
    neuron = slayer.neuron.adrf_iz.Neuron

    def forward(self, input):  # noqa: A002 (lava-dl's argument name)
        return self.spike(*self.dynamics(input))

    neuron.forward = forward

    import inspect

    delta = sys.modules[slayer.axon.delta.__name__]
    source = inspect.getsource(delta)
    bad, good = _CUM_ERROR_BUG
    if source.count(bad) != 1:
        raise RuntimeError(f"unexpected lava-dl source: {bad!r} not found once in {delta.__file__}")
    fixed = types.ModuleType(delta.__name__ + "_fixed")
    fixed.__dict__["__package__"] = delta.__package__
    exec(compile(source.replace(bad, good), delta.__file__, "exec"), fixed.__dict__)  # noqa: S102
    delta._DeltaUnit = fixed._DeltaUnit


def generate(case: Case, slayer, out_dir: pathlib.Path) -> dict:
    """Build, run, differentiate and export one case with lava-dl; return a summary."""
    import h5py

    torch.manual_seed(case.seed)
    rng = np.random.default_rng(case.seed)
    net = case.build(slayer)
    net.eval()  # norms use their running mean (deployed as the bias)
    with torch.no_grad():  # fixes shapes and draws per-channel parameters
        net(torch.zeros(INIT_BATCH, *case.input_shape, case.steps))
    _randomise(case, net, rng)
    params = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}

    x = torch.from_numpy(make_input(case)).requires_grad_(True)
    outputs, y = [], x
    for block in net:
        y = block(y)
        outputs.append(y)
    cotangent = torch.from_numpy(np.random.default_rng(2000 + case.seed).normal(0, 1, y.shape)).float()
    (y * cotangent).sum().backward()
    grads = {f"grad/{k}": p.grad.numpy().copy() for k, p in net.named_parameters() if p.grad is not None}
    grads["grad/input"] = x.grad.numpy().copy()

    extra = {}
    if case.name == "sdnn_cum_error":  # what the file deploys: lava-dl exports no cum_error
        for module in net.modules():
            if hasattr(module, "cum_error"):
                module.cum_error = False
        with torch.no_grad():
            extra["output_without_cum_error"] = net(x.detach()).numpy()

    path = out_dir / f"{case.name}.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(net):
            block.export_hdf5(layer.create_group(f"{i}"))
    arrays = {"meta/lava_dl": np.array(LAVA_DL_VERSION), "meta/torch": np.array(torch.__version__),
              "input": x.detach().numpy(), "output": y.detach().numpy(), "cotangent": cotangent.numpy(),
              **{f"block/{i}": o.detach().numpy() for i, o in enumerate(outputs)},
              **{f"param/{k}": v for k, v in params.items()}, **grads, **extra}
    np.savez_compressed(out_dir / f"{case.name}.npz", **arrays)
    out = y.detach().numpy()
    return {"name": case.name, "output_sum": float(np.abs(out).sum()),
            "active": float((out != 0).mean()),
            "block_activity": [float((o.detach().numpy() != 0).mean()) for o in outputs]}


def _import_lava_dl():
    spec = importlib.util.spec_from_file_location("_lava_dl_ref", REPO / "benchmarks" / "_lava_dl_ref.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    slayer, reason = module.import_slayer()
    if slayer is None:
        raise SystemExit(f"lava-dl {LAVA_DL_VERSION} is not available: {reason}")
    return slayer


def main(argv: ty.Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=FIXTURES, help="output directory")
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(CASES),
                        help="cases to generate (default: all); the README is rewritten whenever "
                             "every case's files are present in --out")
    args = parser.parse_args(argv)
    slayer = _import_lava_dl()
    _patch_lava_dl(slayer)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or CASES:
        summary = generate(CASES[name], slayer, args.out)
        print(summary)
    if all((args.out / f"{name}.{ext}").is_file() for name in CASES for ext in ("net", "npz")):
        (args.out / "README.md").write_text(readme(args.out))


_README_HEAD = f"""# lava-dl {LAVA_DL_VERSION} reference files

Written by `scripts/make_lava_dl_fixtures.py` (run it to regenerate; it needs lava-dl
{LAVA_DL_VERSION}, which it installs with `--no-deps` into the gitignored `benchmarks/.cache` through
`benchmarks/_lava_dl_ref.py`). Each network is built with **lava-dl {LAVA_DL_VERSION}'s own** slayer
blocks on the CPU (lava-dl's per-time-step torch loops), torch {{torch}}, in `eval()` mode, with
seeded random weights on lava-dl's 8-bit grid (even integers in [-256, 254], divided by 64).
Used by `tests/test_lava_dl_files.py`.

Per case:

* `<name>.net`: written by lava-dl's `export_hdf5`, as its tutorials do (h5py file, `layer`
  group, `blocks[i].export_hdf5(layer.create_group(f'{{i}}'))`);
* `<name>.npz`: `input` (batch {BATCH}, slayer layout `N, C[, H, W], T`), `output` (lava-dl's
  slayer output), `block/<i>` (each block's output), `param/<key>` (lava-dl's `state_dict`,
  lava-dl's names, taken before the run), `cotangent` and `grad/<key>`, `grad/input` (lava-dl's
  backward of `sum(output * cotangent)`), `meta/lava_dl`, `meta/torch`.

The networks are defined in the script as functions of a `slayer` module, so the tests build
the same networks with `lava_dl.slayer` and load `param/*` into them.

| case | network | input | T | files (bytes) |
|---|---|---|---|---|
"""

_README_TAIL = """
Unless noted, neurons use `tau_grad = scale_grad = 1`; some blocks set other values so that
lava-dl's gradients pin how they combine with its surrogate multipliers (`cuba_conv` block 0,
`alif` block 2, the resonators' block 0, `sdnn_dense` block 1). Binary inputs are Bernoulli
spikes; sigma-delta inputs are random walks on the 1/64 grid.

lava-dl bugs met while generating (worked around here, stated in the tests):

* `adrf_iz.Neuron.forward` calls `spike` with three arguments (TypeError): the ADRF-IZ case
  runs `spike(*dynamics(x))`, what lava-dl's own tests do.
* The delta unit's `cum_error` branch evaluates `1 - bool_tensor` (an error on every torch since
  1.2), and with a batch of one its error buffer keeps shape `(1,)`. The script rewrites that one
  expression to `~(...)` (clear the error where a message was sent) and runs batches of two.
  lava-dl's export drops `cum_error` anyway: `sdnn_cum_error.npz` also stores
  `output_without_cum_error`, what lava-dl's file deploys.
* Per-channel decays (`shared_param=False`) fail in a conv block on the CPU (the `(C,)` decay
  broadcasts against the last axis, W), so they appear in dense blocks only. Complex (RF/ADRF)
  conv and recurrent blocks cannot be exported by lava-dl, and sigma-delta per-channel
  thresholds cannot either.
"""


def readme(out_dir: pathlib.Path) -> str:
    """The fixtures' README: a table of the cases with their file sizes."""
    rows = []
    total = 0
    for case in CASES.values():
        sizes = [(out_dir / f"{case.name}.{ext}").stat().st_size for ext in ("net", "npz")]
        total += sum(sizes)
        kind = "graded walk" if case.graded else f"spikes p={case.spike_rate}"
        shape = "x".join(str(s) for s in case.input_shape)
        rows.append(f"| `{case.name}` | {case.doc} | {shape}, {kind} | {case.steps} | "
                    f"{sizes[0]} + {sizes[1]} |")
    head = _README_HEAD.replace("{torch}", torch.__version__)
    return head + "\n".join(rows) + f"\n\nTotal: {total} bytes.\n" + _README_TAIL


if __name__ == "__main__":
    sys.exit(main())
