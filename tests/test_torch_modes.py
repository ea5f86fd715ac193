"""Whole-model torch modes users apply to slayer networks: ``torch.inference_mode`` and
``torch.compile``, each giving eager mode's outputs (and, compiled, its gradients), bit for bit."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from lava_dl import slayer
from tests.test_parity import FAMILIES, _active_output, _randomise
from tests.test_parity_layers import KINDS, _network


def _random_network(kind: str, family: str):
    """A random network of ``kind`` (tests/test_parity_layers.py) whose output spikes for its input: the
    first of a fixed series of seeds that gives one (torch's global generator included, which the
    layers' initialisation draws from, so the network does not depend on the tests run before)."""
    for seed in range(20):
        torch.manual_seed(seed)
        rng = np.random.default_rng(3 + seed)
        net, shape = _network(kind, family, rng)
        _randomise(net, rng, False)
        generator = torch.Generator().manual_seed(5 + seed)
        x = (torch.rand(2, *shape, 16, generator=generator) < 0.4).float()
        if _active_output(net, x).any():
            return net, x
    raise AssertionError(f"no seed gave a {kind} {family} network whose output spikes")


def _sigma_delta_network():
    torch.manual_seed(2)
    params = dict(threshold=0.05, activation=torch.relu)
    blocks = slayer.block.sigma_delta
    net = torch.nn.Sequential(blocks.Input(params), blocks.Conv(params, 2, 4, 3), blocks.Flatten(),
                              blocks.Dense(params, 4 * 6 * 6, 10), blocks.Output(params, 10, 3))
    return net, torch.rand(2, 2, 8, 8, 12)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", KINDS)
def test_inference_mode_equals_no_grad(kind, family):
    """Every block kind and family runs under ``torch.inference_mode`` (whose tensors have no version
    counter) with the outputs of ``torch.no_grad``, on the caller's tensor and on an inference tensor;
    the network then still trains."""
    net, x = _random_network(kind, family)
    with torch.no_grad():
        expected = net(x)
    assert expected.any()
    with torch.inference_mode():
        assert torch.equal(net(x), expected)
        inference_input = x.clone()
        assert inference_input.is_inference()
        assert torch.equal(net(inference_input), expected)
    net(x).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_inference_mode_sigma_delta():
    net, x = _sigma_delta_network()
    with torch.no_grad():
        expected = net(x)
    assert expected.any()
    with torch.inference_mode():
        assert torch.equal(net(x.clone()), expected)


def _gradients(net) -> list[torch.Tensor]:
    return [p.grad.clone() for p in net.parameters() if p.grad is not None]


@pytest.fixture
def quiet_dynamo():
    """Dynamo's graph-break warnings (expected: the kernels run eagerly) kept out of the log."""
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = logging.getLogger("torch._dynamo").level
        logging.getLogger("torch._dynamo").setLevel(logging.ERROR)
        try:
            yield
        finally:
            logging.getLogger("torch._dynamo").setLevel(previous)
            torch._dynamo.reset()


class _UserModel(torch.nn.Module):
    """A user's model: their own torch code (a learnable input gain, a loss) around a slayer network."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self.gain = torch.nn.Parameter(torch.tensor(1.25))

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out = self.net(x * self.gain)
        return torch.nn.functional.mse_loss(out.flatten(1).mean(-1), target)


def _eager_and_compiled(model, net, *inputs):
    """The loss and the gradients of ``net``'s parameters (within ``model``) in eager mode, then with
    ``model`` compiled; with the gradient of every other parameter of ``model`` (the user's code)."""
    results = []
    ours = {id(p) for p in net.parameters()}
    for run in (model, torch.compile(model)):
        model.zero_grad()
        loss = run(*inputs)
        loss.backward()
        others = [p.grad.clone() for p in model.parameters() if id(p) not in ours]
        results.append((loss.detach(), _gradients(net), others))
    return results


@pytest.mark.parametrize("case", ["pool-cuba", "convT-adrf", "recurrent-alif", "delay_dense-rf", "kwta-rf_iz",
                                  "sigma_delta"])
def test_torch_compile_equals_eager(case, quiet_dynamo):
    """``torch.compile`` of a model holding a slayer network runs (lava_dl's layers eagerly, the user's
    code compiled around them) with eager mode's loss and the network's parameter gradients, exactly;
    the user's own parameter (whose gradient sum Inductor may order differently) to float rounding."""
    if case == "sigma_delta":
        net, x = _sigma_delta_network()
    else:
        net, x = _random_network(*case.split("-"))
    model = _UserModel(net)
    eager_run, compiled_run = _eager_and_compiled(model, net, x, torch.rand(2))
    assert torch.equal(compiled_run[0], eager_run[0])
    assert len(compiled_run[1]) == len(eager_run[1]) > 0
    for got, want in zip(compiled_run[1], eager_run[1]):
        assert torch.equal(got, want)
    (gain_grad,), (eager_gain_grad,) = compiled_run[2], eager_run[2]
    assert eager_gain_grad != 0
    torch.testing.assert_close(gain_grad, eager_gain_grad, rtol=1e-5, atol=0)


class _LowLevelModel(torch.nn.Module):
    """lava-dl's low-level style: a synapse and a neuron module, and the functional dynamics."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.synapse = slayer.synapse.Dense(12, 8, weight_scale=2)
        self.neuron = slayer.neuron.cuba.Neuron(threshold=0.5, current_decay=0.3, voltage_decay=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spikes = self.neuron(self.synapse(x))
        trace = slayer.neuron.dynamics.leaky_integrator.dynamics(spikes, 512.0, 0.0, 64)
        return trace.square().sum()


def test_torch_compile_low_level_modules_and_functional_dynamics(quiet_dynamo):
    """lava-dl's low-level modules and functional dynamics in a compiled model: eager mode's gradients
    exactly (the compiled sum of squares, reduced in Inductor's order, to float rounding)."""
    x = (torch.rand(3, 12, 20, generator=torch.Generator().manual_seed(6)) < 0.4).float()
    model = _LowLevelModel()
    (loss, grads, _), (compiled_loss, compiled_grads, _) = _eager_and_compiled(model, model, x)
    assert loss > 0
    torch.testing.assert_close(compiled_loss, loss, rtol=1e-6, atol=0)
    assert len(compiled_grads) == len(grads) > 0
    for got, want in zip(compiled_grads, grads):
        assert torch.equal(got, want)


@pytest.mark.parametrize("case", ["cuba", "alif", "rf", "sigma_delta", "delay"])
def test_second_order_gradients_raise(case):
    """The kernels' backward passes are not differentiable themselves: a backward pass that builds a
    graph (``create_graph=True``: gradient penalties, MAML, Hessians) raises a named error instead of
    silently treating their adjoints as constants; a plain backward pass still works after it."""
    torch.manual_seed(7)
    if case == "sigma_delta":
        net, x = _sigma_delta_network()
    elif case == "delay":
        params = dict(threshold=0.5, current_decay=0.5, voltage_decay=0.1)
        net = slayer.block.cuba.Dense(params, 20, 10, delay=True)
        x = (torch.rand(2, 20, 15) < 0.3).float()
    else:
        net, x = _random_network("recurrent", case)
    x = x.clone().requires_grad_(True)
    out = net(x)
    loss = (out * torch.arange(out.shape[-1], dtype=out.dtype)).sum()
    with pytest.raises(RuntimeError, match="has no second derivative"):
        torch.autograd.grad(loss, x, create_graph=True)
    (grad,) = torch.autograd.grad(net(x).sum(), x)
    assert not grad.requires_grad and grad.abs().sum() > 0


def test_torch_compile_fullgraph_names_the_reason(quiet_dynamo):
    """One graph for the whole model cannot hold the kernels: Dynamo's error gives our reason."""
    net, x = _random_network("pool", "cuba")
    with pytest.raises(Exception, match="compile without fullgraph=True"):
        torch.compile(net, fullgraph=True)(x)


def test_eager_use_does_not_import_dynamo():
    """The graph breaks are made only once Dynamo traces: importing lava_dl and training in eager mode
    leave ``torch._dynamo`` (over a second to import) unimported."""
    code = ("import sys, torch\n"
            "from lava_dl import slayer\n"
            "params = dict(threshold=0.5, current_decay=0.5, voltage_decay=0.1)\n"
            "net = torch.nn.Sequential(slayer.block.cuba.Dense(params, 4, 3), slayer.block.alif.Dense(\n"
            "    dict(params, threshold_step=0.1, threshold_decay=0.1, refractory_decay=0.1), 3, 2))\n"
            "net((torch.rand(1, 4, 5) < 0.5).float()).sum().backward()\n"
            "print('torch._dynamo' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
