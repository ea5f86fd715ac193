"""End-to-end demo: train a CUBA spiking network on scikit-learn's digits, deploy it on Lava.

Run with ``python -m lava_dl.demo`` (the README's first command does it for you).
It trains a 64-128-10 CUBA-LIF network with SLAYER (forward = the deployed integer
kernel), exports it to lava-dl's hdf5 format, builds it with ``lava_dl.netx`` and
runs the whole test set on ``Loihi1SimCfg(select_tag='fixed_pt')``, then prints the
torch accuracy, the Lava accuracy and the share of identical output spikes, and checks that
``netx.simulate`` (the same models outside Lava, the test set as one batch) gives Lava's output.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import h5py
import numpy as np
import torch

import lava_dl  # noqa: F401  (lava-nc Python 3.11 fix before Lava is imported)
from lava_dl import netx, slayer  # netx first: Lava must fix multiprocessing's start method (fork)

STEPS = 24  # time steps per sample


def encode(images: np.ndarray, steps: int = STEPS) -> np.ndarray:
    """Deterministic rate code: pixel intensity 0..16 -> spikes ``(N, 64, steps)``."""
    rate = images.astype(np.float64) / 16.0
    t = np.arange(1, steps + 1)
    counts = np.floor(rate[..., None] * t + 0.5)
    previous = np.concatenate([np.zeros_like(counts[..., :1]), counts[..., :-1]], axis=-1)
    return (counts > previous).astype(np.float32)


class Network(torch.nn.Module):
    """64 -> hidden -> 10 CUBA-LIF network made of slayer blocks."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        params = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03, tau_grad=0.03, scale_grad=3,
                      requires_grad=False)
        self.blocks = torch.nn.ModuleList([
            slayer.block.cuba.Dense(params, 64, hidden, weight_norm=False, weight_scale=2),
            slayer.block.cuba.Dense(params, hidden, 10, weight_norm=False, weight_scale=2),
        ])

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            spikes = block(spikes)
        return spikes

    def export_hdf5(self, path: str) -> None:
        with h5py.File(path, "w") as f:
            layer = f.create_group("layer")
            for i, block in enumerate(self.blocks):
                block.export_hdf5(layer.create_group(str(i)))


def train(net, x_train, y_train, epochs, batch, progress):
    optimizer = torch.optim.Adam(net.parameters(), lr=0.003)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        order = torch.randperm(len(x_train), generator=gen)
        bar = progress(range(0, len(order), batch), desc=f"train epoch {epoch + 1}/{epochs}")
        correct = 0
        for start in bar:
            idx = order[start:start + batch]
            out = net(x_train[idx])
            rate = out.sum(dim=-1)
            loss = torch.nn.functional.cross_entropy(rate, y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            correct += (rate.argmax(-1) == y_train[idx]).sum().item()
        print(f"  epoch {epoch + 1}: loss {loss.item():.3f}, train accuracy {correct / len(order):.3f}")


def run_lava(path: str, x_test: np.ndarray, progress) -> np.ndarray:
    """Stream every test sample through the netx network; return output spikes ``(N, 10, STEPS)``."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi1SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    samples = len(x_test)
    # Samples back to back; each layer is reset when a new sample reaches it.
    stream = np.concatenate(list(x_test), axis=-1)  # (64, samples * STEPS)
    stream = np.concatenate([stream, np.zeros((64, STEPS))], axis=-1)  # drain the pipeline
    total = stream.shape[-1]
    net = netx.hdf5.Network(net_config=path, reset_interval=STEPS)
    print(net)
    source = Source(data=stream)
    sink = Sink(shape=net.out.shape, buffer=total)
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    chunk = STEPS * 20
    cfg = Loihi1SimCfg(select_tag="fixed_pt")
    done = 0
    try:
        for _ in progress(range(0, total, chunk), desc="lava run"):
            steps = min(chunk, total - done)
            net.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
            done += steps
        out = sink.data.get()
    finally:
        net.stop()
    # slayer's output index t of sample k is Lava step k*STEPS + t + 1 (sink column k*STEPS + t).
    out = out[:, : samples * STEPS].reshape(10, samples, STEPS).transpose(1, 0, 2)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--test-samples", type=int, default=360)
    parser.add_argument("--out", default=None, help="where to write the .net file")
    args = parser.parse_args(argv)

    from sklearn.datasets import load_digits
    from tqdm import tqdm

    torch.manual_seed(0)
    torch.set_num_threads(1)
    digits = load_digits()
    spikes = encode(digits.images.reshape(-1, 64))
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))
    test_idx, train_idx = order[: args.test_samples], order[args.test_samples:]
    x_train, y_train = torch.from_numpy(spikes[train_idx]), torch.from_numpy(labels[train_idx])
    x_test, y_test = spikes[test_idx], labels[test_idx]

    start = time.time()
    net = Network()
    print(f"training on {len(train_idx)} digits, T={STEPS} steps")
    train(net, x_train, y_train, args.epochs, args.batch, tqdm)
    net.eval()
    with torch.no_grad():
        torch_out = net(torch.from_numpy(x_test)).numpy()
    torch_acc = float(np.mean(torch_out.sum(-1).argmax(-1) == y_test))

    path = args.out or os.path.join(tempfile.mkdtemp(prefix="lava_dl_demo_"), "digits.net")
    net.export_hdf5(path)
    print(f"exported {path}")
    lava_start = time.time()
    lava_out = run_lava(path, x_test, tqdm)
    lava_time = time.time() - lava_start
    lava_acc = float(np.mean(lava_out.sum(-1).argmax(-1) == y_test))
    identical = float(np.mean(lava_out == torch_out))
    # the same Lava models stepped outside Lava, all samples at once (each a fresh run of STEPS steps)
    sim_start = time.time()
    sim_out = netx.simulate(path, x_test, reset_interval=STEPS)
    sim_time = time.time() - sim_start
    print()
    print(f"torch accuracy            {torch_acc:7.2%}")
    print(f"lava fixed_pt accuracy    {lava_acc:7.2%}")
    print(f"identical output spikes   {identical:7.2%}  ({int(torch_out.sum())} torch spikes, "
          f"{int(lava_out.sum())} lava spikes)")
    print(f"netx.simulate == Lava     {np.array_equal(sim_out, lava_out)!s:>7s}  ({len(x_test)} samples: "
          f"{sim_time:.2f} s, Lava run {lava_time:.1f} s)")
    print(f"total time                {time.time() - start:6.1f} s")
    if identical != 1.0:
        raise SystemExit("torch and Lava outputs differ")
    if not np.array_equal(sim_out, lava_out):
        raise SystemExit("netx.simulate and Lava outputs differ")


if __name__ == "__main__":
    main()
