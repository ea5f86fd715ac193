"""Device handling of lava_dl.slayer's user-facing code on a CUDA device, run by benchmarks/gpu_check.py.

Each case runs once on CPU tensors and once on ``--device`` tensors (default ``cuda``; ``cpu``
runs the script itself on a machine without a GPU) built from the same values: lava-dl's
functional dynamics (``neuron.dynamics.*``: numpy on the host or CUDA kernels; the leaky
integrator on the CUDA kernels, never the CPU ones), CUBA's integrators one at a time
(``LeakyIntegrator``, ``SpikingIntegrator``) and a CUBA block with a norm trained one step on the
CUDA kernels, axonal delays (the CUDA shift kernels, never the CPU ones), losses and classifiers
with labels left on the CPU, FIR filters,
the spike functions, ``io`` events, plots, the weight conversions, recurrent and KWTA blocks,
a block with an axonal delay, ``export_hdf5`` of a CUDA network and one ``Assistant`` step.
Prints one line per case and exits non-zero when any fails.

Every tensor a case returns from the device run must be on that device. Integer and spike
results (outputs, states, events, exported files) must equal the CPU's bit for bit; gradients
must agree to float rounding (``|dev - cpu| <= GRAD_RTOL * max|cpu|``, per tensor, as in
``tests/_cuda_sim_check.py``) and losses and trained weights to ``LOSS_RTOL``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cuda_sim_check import GRAD_RTOL, _NoCpuKernels  # noqa: E402

from lava_dl import slayer  # noqa: E402
from lava_dl.slayer.neuron.dynamics import (  # noqa: E402
    adaptive_phase_th,
    adaptive_resonator,
    adaptive_threshold,
    leaky_integrator,
    resonator,
)

#: Relative bound (to the largest CPU value) on losses and on weights after an optimizer step:
#: torch's own reductions sum in another order on a GPU.
LOSS_RTOL = 1e-5
S = 4096
CUBA = dict(threshold=0.5, current_decay=0.2, voltage_decay=0.05, tau_grad=0.1, scale_grad=1.0)


def _grid(shape, seed, amplitude=100, density=0.4) -> torch.Tensor:
    """Values on the 1/64 grid (quantized weights times spikes): exact in any summation order."""
    gen = torch.Generator().manual_seed(seed)
    values = torch.randint(-amplitude, amplitude + 1, shape, generator=gen).float() / 64
    return values * (torch.rand(shape, generator=gen) < density)


def _spikes(shape, seed, rate=0.3) -> torch.Tensor:
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < rate).float()


def _leaf(t: torch.Tensor, dev: str) -> torch.Tensor:
    return t.detach().clone().to(dev).requires_grad_(True)


# --------------------------------------------------------------------------
# cases: each takes the device name and returns {name: tensor, array or number}
# --------------------------------------------------------------------------

@contextlib.contextmanager
def _cuda_integrators_only(dev: str):
    """On a device, put CUBA's CPU kernels out of reach of ``neuron.dynamics`` (its integrators must run
    the CUDA kernels, not the CPU ones on a host copy)."""
    from lava_dl.slayer.neuron import dynamics

    cpu_kernels = dynamics._cuba
    if dev != "cpu":
        dynamics._cuba = _NoCpuKernels()
    try:
        yield
    finally:
        dynamics._cuba = cpu_kernels


def functional_leaky(dev: str) -> dict:
    x = _leaf(_grid((2, 3, 40), 1, amplitude=200), dev)
    decay = _leaf(torch.tensor([100.7, 517.2, 2000.9], dtype=torch.float64), dev)  # per channel
    state = torch.tensor([[0.25, -0.5, 0.125], [0.0, 1.0, -0.25]]).to(dev)  # per (batch, neuron)
    with _cuda_integrators_only(dev):
        out = leaky_integrator.dynamics(x, decay, state, S, 0.75)
        (out * torch.arange(40, device=out.device)).sum().backward()
        shared = leaky_integrator.dynamics(x.detach().double(), 517.9, 0.25, S)  # numbers; float64 input
    return {"out": out.detach(), "shared_f64": shared, "grad_x": x.grad, "grad_decay": decay.grad}


def integrators(dev: str) -> dict:
    """``LeakyIntegrator`` and ``SpikingIntegrator`` (graded spikes, a bias) with per-channel decays and
    initial states per row, on a channels-last input (the CUDA path stores the logical order)."""
    from lava_dl.slayer.neuron.dynamics import LeakyIntegrator, SpikingIntegrator, per_row

    shape = (2, 3, 4, 5, 30)
    rows = 2 * 3 * 4 * 5
    conv = _grid(shape, 19, amplitude=150).permute(0, 4, 2, 3, 1).contiguous().permute(0, 4, 2, 3, 1)
    x = conv.to(dev).requires_grad_(True)
    du = _leaf(torch.tensor([100.0, 900.0, 3000.0]), dev)
    dv = _leaf(torch.tensor([0.0, 400.0, 1500.0]), dev)
    gen = torch.Generator().manual_seed(20)
    u0 = torch.randint(-3000, 3000, (rows,), generator=gen)
    v0 = torch.randint(-3000, 3000, (rows,), generator=gen)
    bias = torch.randint(-200, 200, (rows,), generator=gen).numpy()
    vth = np.full(rows, 20 << 6, np.int64)
    with _cuda_integrators_only(dev):
        current = LeakyIntegrator.apply(x, per_row(du, x), u0, float(S))
        spikes, voltage = SpikingIntegrator.apply(current * 8, per_row(dv, x), v0, float(S), bias, vth,
                                                  (20 / 64, 0.3, 1.0), True)
        (spikes * _grid(shape, 21).to(dev)).sum().backward(retain_graph=True)
        (voltage * _grid(shape, 22).to(dev)).sum().backward()
    return {"current": current.detach(), "spikes": spikes.detach(), "voltage": voltage.detach(),
            "grad_x": x.grad, "grad_du": du.grad, "grad_dv": dv.grad}


def cuba_norm_training(dev: str) -> dict:
    """A CUBA Dense block with a norm between current and voltage (the two integrators one at a time)
    and persistent state: two calls, the backward pass and one optimizer step. ``N T`` is a power of
    two, so that the norm's mean is exact in any summation order."""
    from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm

    torch.manual_seed(0)
    net = slayer.block.cuba.Dense(dict(CUBA, norm=MeanOnlyBatchNorm, persistent_state=True), 12, 10,
                                  weight_scale=4).to(dev)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x = _spikes((4, 12, 32), 23).to(dev)
    with _cuda_integrators_only(dev):
        out = torch.cat([net(x), net(x.flip(-1))], -1)
        (out * _grid(tuple(out.shape), 24).to(dev)).sum().backward()
    grads = {f"grad_{name}": p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
    optimizer.step()
    return {"out": out.detach(), **grads, "norm_mean": net.neuron.norm.running_mean.clone(),
            **{f"state_{k}": v for k, v in net.neuron._states.items()},
            **{f"loss_weight_{n}": p.detach() for n, p in net.named_parameters()}}


def functional_resonator(dev: str) -> dict:
    xr, xi = (_leaf(_grid((2, 3, 50), s), dev) for s in (2, 3))
    real, imag = resonator.dynamics(xr, xi, 700.4, 3900.7, 0.25, -0.125, S, threshold=0.4)  # float decays
    (real.sum() + 2 * imag.sum()).backward()
    sin = _leaf(torch.tensor([700.0, 650.0, 820.0]), dev)
    r2, i2 = resonator.dynamics(xr.detach(), xi.detach(), sin, torch.tensor(3900.0).to(dev), 0.0, 0.0, S)
    (r2 - i2).sum().backward()
    return {"real": real.detach(), "imag": imag.detach(), "real_rf": r2.detach(), "imag_rf": i2.detach(),
            "grad_xr": xr.grad, "grad_xi": xi.grad, "grad_sin": sin.grad}


def functional_adaptive_resonator(dev: str) -> dict:
    xr, xi = (_leaf(_grid((2, 3, 60), s, amplitude=120), dev) for s in (4, 5))
    param = torch.nn.Parameter(torch.tensor([100.5, 400.2, 1000.9], dtype=torch.float64).to(dev))
    th_state = torch.tensor([[0.5, 0.75, 0.625], [1.0, 0.5, 0.5625]]).to(dev)
    outs = adaptive_resonator.dynamics(xr, xi, 700.4, torch.tensor([3900.7]).to(dev), param, 600.0, 0.25,
                                       torch.zeros(2, 3).to(dev), 0.0, th_state, 0.25, 0.5, S)
    (outs[0].sum() + outs[1].sum()).backward()
    return {**{k: v.detach() for k, v in zip(("real", "imag", "threshold", "refractory"), outs)},
            "grad_xr": xr.grad, "grad_xi": xi.grad}


def functional_adaptive_threshold(dev: str) -> dict:
    v = _grid((2, 3, 60), 6, amplitude=120).to(dev)
    im = _grid((2, 3, 60), 7, amplitude=120).to(dev)
    decay = torch.nn.Parameter(torch.tensor([2000.2, 50.7, 600.0]).to(dev))
    ref_state = torch.tensor([[0.0, 0.25, 0.5], [0.125, 0.0, 0.0]]).to(dev)
    th, ref = adaptive_threshold.dynamics(v, ref_state, decay, 0.5, torch.tensor(300.0).to(dev), 0.25, 0.5, S)
    th64, ref64 = adaptive_threshold.dynamics(v.double(), 0.0, 400.0, 0.625, 300.0, 0.25, 0.5, S)
    pth, pref = adaptive_phase_th.dynamics(v, im, torch.full((2, 3), -0.25).to(dev), ref_state, decay, 0.5,
                                           100.0, 0.25, 0.5, S)
    return {"threshold": th, "refractory": ref, "threshold_f64": th64, "refractory_f64": ref64,
            "phase_threshold": pth, "phase_refractory": pref}


def axon_delays(dev: str) -> dict:
    import importlib

    axon_delay = importlib.import_module("lava_dl.slayer.axon.delay")  # the package exports delay()
    cpu_kernels = axon_delay._core
    if dev != "cpu":  # CUDA tensors run the CUDA shift kernels, never the CPU ones on a host copy
        axon_delay._core = _NoCpuKernels()
    try:
        x = _leaf(_grid((2, 3, 4, 30), 8), dev)
        fixed = slayer.axon.delay(x, torch.arange(12.0).to(dev), 1)  # one delay per position
        torch.manual_seed(0)
        module = slayer.axon.Delay(max_delay=10, num_channels=3).to(dev)
        with torch.no_grad():
            module.delay.copy_(torch.tensor([0.5, 3.2, 7.9]))
        learned = module(x)
        (fixed * torch.arange(30, device=fixed.device)).sum().backward()
        learned.pow(2).sum().backward()
        ints = slayer.utils.time.shift((torch.arange(24) % 3).reshape(2, 12).to(dev), 2)
        # a convolution's channels-last (N, T, H, W, C) output: the layout is kept, gradients per channel
        conv = _grid((2, 5, 3, 4, 25), 17).permute(0, 4, 2, 3, 1).contiguous().permute(0, 4, 2, 3, 1)
        xc = conv.to(dev).requires_grad_(True)
        module_c = slayer.axon.Delay(max_delay=30, grad_scale=0.5, num_channels=5).to(dev)
        with torch.no_grad():
            module_c.delay.copy_(torch.tensor([0.0, 1.5, 3.2, 7.9, 27.0]))
        learned_c = module_c(xc)
        (learned_c * _grid(tuple(conv.shape), 18).to(dev)).sum().backward()
    finally:
        axon_delay._core = cpu_kernels
    return {"fixed": fixed.detach(), "learned": learned.detach(), "shift_int64": ints, "grad_x": x.grad,
            "grad_delay": module.delay.grad, "channels_last": learned_c.detach(),
            "channels_last_stride": torch.tensor(learned_c.stride()), "grad_channels_last": xc.grad,
            "grad_delay_channels_last": module_c.delay.grad}


def losses_and_classifiers(dev: str) -> dict:
    out = _leaf(_spikes((4, 5, 30), 9), dev)
    label = torch.tensor([0, 3, 1, 4])  # left on the CPU
    target = _spikes((4, 5, 30), 10)
    multi_hot = (torch.rand(4, 5, generator=torch.Generator().manual_seed(11)) < 0.5).float()
    losses = {"loss_rate": slayer.loss.SpikeRate(0.3, 0.05).to(dev)(out, label),
              "loss_rate_window": slayer.loss.SpikeRate(0.3, 0.05, moving_window=5).to(dev)(out, label),
              "loss_max": slayer.loss.SpikeMax(mode="softmax").to(dev)(out, label),
              "loss_moid": slayer.loss.SpikeMoid().to(dev)(out, multi_hot),
              "loss_time": slayer.loss.SpikeTime(time_constant=2, length=10).to(dev)(out, target)}
    sum(losses.values()).backward()
    fir = slayer.utils.filter.FIR(fir_response=torch.tensor([1.0, 0.5, 0.25]).to(dev)).to(dev)
    return {**{k: v.detach() for k, v in losses.items()}, "grad_out": out.grad,
            "rate_predict": slayer.classifier.Rate.predict(out.detach()),
            "window_predict": slayer.classifier.MovingWindow(5).to(dev).predict(out.detach()),
            "loss_fir": fir(out.detach()), "event_rate": slayer.utils.event_rate(out.detach())}


def spike_functions(dev: str) -> dict:
    v = _leaf(_grid((2, 3, 20), 12), dev)
    im = _leaf(_grid((2, 3, 20), 13), dev)
    s = slayer.spike.Spike.apply(v, 0.25, 0.1, 1.0, False, None, 1.0)
    c = slayer.spike.complex.Spike.apply(v, im, 0.125, 0.1, 1.0, True, -0.5, 64.0)
    (s.sum() + c.sum()).backward()
    return {"spike": s.detach(), "complex_spike": c.detach(), "grad_v": v.grad, "grad_im": im.grad}


def io_events_and_plots(dev: str) -> dict:
    spikes = _spikes((2, 3, 4, 25), 14).to(dev)
    event = slayer.io.tensor_to_event(spikes)
    filled = event.fill_tensor(torch.zeros(2, 3, 4, 25, device=dev))
    drawn = "skipped (no matplotlib)"
    try:
        import matplotlib

        matplotlib.use("Agg")
        with tempfile.TemporaryDirectory() as tmp:
            slayer.plot.raster(spikes, path=Path(tmp) / "r.png")
            slayer.plot.state_trace(spikes[0, 0], spikes=spikes[0, 0], path=Path(tmp) / "s.png")
        drawn = "drawn"
    except ImportError:
        pass
    return {"events": np.stack([event.x, event.y, event.c, event.t]), "filled": filled, "plots": drawn}


def _network(dev: str) -> torch.nn.Sequential:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        slayer.block.cuba.Dense(CUBA, 12, 10, weight_scale=4, delay=True),
        slayer.block.cuba.Recurrent(CUBA, 10, 8, weight_scale=4),
        slayer.block.cuba.KWTA(CUBA, 8, 6, num_winners=2, weight_scale=4),
        slayer.block.rf.Dense(dict(threshold=0.3, period=10, decay=0.05), 6, 4, weight_scale=4),
    )
    with torch.no_grad():
        net[0].delay.delay.copy_(torch.arange(10.0) % 4)
    return net.to(dev)


def blocks_and_export(dev: str) -> dict:
    import h5py

    net = _network(dev)
    x = _spikes((3, 12, 40), 15).to(dev)
    hidden = net[2](net[1](net[0](x)))
    out = net[3](hidden)
    (hidden.sum() + out.sum()).backward()
    grads = {f"grad_{name}": p.grad for name, p in net.named_parameters() if p.grad is not None}
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for i, block in enumerate(net):
            block.export_hdf5(f.create_group(str(i)))
    exported = {}
    with h5py.File(buffer, "r") as f:
        f.visititems(lambda name, obj: exported.__setitem__(f"hdf5 {name}", np.asarray(obj[()]))
                     if isinstance(obj, h5py.Dataset) else None)
    frequency = net[3].neuron.frequency
    weight = slayer.synapse.conv_weight_to_lava(slayer.block.cuba.Conv(CUBA, 2, 3, 3).to(dev).synapse.weight)
    return {"hidden": hidden.detach(), "out": out.detach(), **grads, **exported, "rf_frequency": frequency,
            "conv_weight": weight}


def assistant_step(dev: str) -> dict:
    torch.manual_seed(0)
    net = torch.nn.Sequential(slayer.block.cuba.Dense(CUBA, 12, 5, weight_scale=4)).to(dev)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    stats = slayer.utils.LearningStats()
    assistant = slayer.utils.Assistant(net, slayer.loss.SpikeRate(0.3, 0.05).to(dev), optimizer, stats,
                                       classifier=slayer.classifier.Rate.predict)
    out = assistant.train(_spikes((4, 12, 30), 16), torch.tensor([0, 3, 1, 4]))  # CPU data
    return {"out": out.detach(), "loss_stat": torch.tensor(stats.training.loss),
            "correct": stats.training.correct_samples,
            **{f"loss_weight_{n}": p.detach() for n, p in net.named_parameters()}}


CASES = (functional_leaky, integrators, cuba_norm_training, functional_resonator,
         functional_adaptive_resonator, functional_adaptive_threshold, axon_delays, losses_and_classifiers,
         spike_functions, io_events_and_plots, blocks_and_export, assistant_step)


# --------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------

def compare(cpu: dict, other: dict, device: str) -> list[str]:
    """Mismatches between a case's CPU and device results (see the module docstring)."""
    errors = []
    if cpu.keys() != other.keys():
        return [f"results differ in names: {sorted(cpu.keys() ^ other.keys())}"]
    nonzero = False
    for name, a in cpu.items():
        b = other[name]
        if isinstance(a, torch.Tensor):
            if not isinstance(b, torch.Tensor) or b.device.type != torch.device(device).type:
                errors.append(f"{name}: not a tensor on {device} ({getattr(b, 'device', type(b).__name__)})")
                continue
            a, b = a.detach(), b.detach().cpu()
            nonzero |= bool((a != 0).any())
            if a.shape != b.shape or a.dtype != b.dtype:
                errors.append(f"{name}: {tuple(a.shape)}/{a.dtype} vs {tuple(b.shape)}/{b.dtype}")
            elif name.startswith(("grad", "loss")):
                rtol = GRAD_RTOL if name.startswith("grad") else LOSS_RTOL
                bound = rtol * float(a.abs().max()) + 1e-30
                err = float((a.double() - b.double()).abs().max())
                if err > bound:
                    errors.append(f"{name}: max error {err:.3g} > {bound:.3g}")
            elif not torch.equal(a, b):
                errors.append(f"{name}: {int((a != b).sum())} of {a.numel()} values differ")
        else:
            nonzero |= bool(np.any(np.asarray(a) != 0)) if np.asarray(a).dtype.kind in "biuf" else False
            if type(a) is not type(b) or not np.array_equal(np.asarray(a), np.asarray(b)):
                errors.append(f"{name}: {a!r:.60} vs {b!r:.60}")
    if not nonzero:
        errors.append("every result is zero: the case tests nothing")
    return errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="device of the second run (cuda; cpu: a dry run)")
    args = parser.parse_args(argv)
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # float32 sums
    failed = 0
    try:
        for case in CASES:
            try:
                errors = compare(case("cpu"), case(args.device), args.device)
            except Exception:  # noqa: BLE001 - report the case and go on
                errors = ["raised " + traceback.format_exc().strip().splitlines()[-1]]
                traceback.print_exc()
            print(("ok   " if not errors else "FAIL ") + f"device {case.__name__} on {args.device}"
                  + (": " + "; ".join(errors) if errors else ""), flush=True)
            failed += bool(errors)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
