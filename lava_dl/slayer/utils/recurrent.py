"""Run a neuron with recurrent feedback step by step (lava-dl's ``slayer.utils.recurrent``).

``s[t] = neuron(z[t] + R s[t-1])`` with ``s[-1] = 0``: the recurrence of
:class:`lava_dl.slayer.block.base.Recurrent`, using its stepping machinery (the
neuron's states carried from step to step within a call). Gradients reach ``z``, ``R``
and the neuron's parameters through the spikes' surrogate gradients, not through the
neuron states from one step to the next (as in lava-dl).

lava-dl had one fast version (:func:`custom_recurrent`, a hand-written autograd
function) and two slower "ground truth" versions; here all three run the same loop
under autograd and differ only in how the feedback is computed (matrix product or
the synapse's own forward), so they agree exactly.

Differences from lava-dl: the neuron's states start from zero at each call and are
carried across the steps of the call whether or not the neuron has
``persistent_state`` (lava-dl needed ``persistent_state=True``: without it every step
restarted the neuron from zero); with ``persistent_state`` they continue from the
previous call, as before.
"""

from __future__ import annotations

import typing as ty

import torch

from lava_dl.slayer.block.base import _matvec, _stepping


def _recurrent_matrix(recurrent_synapse) -> torch.Tensor:
    """The synapse's square ``(C, C)`` weight matrix after its ``pre_hook_fx``."""
    weight = recurrent_synapse.weight
    hook = getattr(recurrent_synapse, "pre_hook_fx", None)
    if hook is not None:
        weight = hook(weight)
    out_size, in_size = weight.shape[:2]
    if out_size != in_size or weight[0, 0].numel() != 1:
        raise ValueError(f"recurrent: the recurrent synapse must be a square dense synapse, got a weight "
                         f"of shape {tuple(weight.shape)}")
    return weight.reshape(out_size, in_size)


def _run(z: torch.Tensor, neuron: torch.nn.Module, feedback: ty.Callable[[torch.Tensor], torch.Tensor],
         channels: int) -> torch.Tensor:
    if not isinstance(z, torch.Tensor) or z.dim() != 3 or z.shape[1] != channels:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"recurrent: expected z of shape (N, {channels}, T), got {shape}")
    spikes = torch.zeros(z.shape[0], channels, dtype=z.dtype, device=z.device)
    outputs = []
    with _stepping(neuron):
        for t in range(z.shape[-1]):
            out = neuron((z[..., t] + feedback(spikes)).unsqueeze(-1))
            outputs.append(out)
            spikes = out[..., 0]
    return torch.cat(outputs, dim=-1)


def custom_recurrent(z: torch.Tensor, neuron: torch.nn.Module, recurrent_synapse) -> torch.Tensor:
    """Spikes of ``neuron`` driven by ``z`` plus the recurrent synapse's feedback of its own spikes.

    Parameters
    ----------
    z : torch.Tensor
        Feed-forward drive ``N, C, T``.
    neuron : torch.nn.Module
        A slayer neuron of ``C`` channels.
    recurrent_synapse : lava_dl.slayer.synapse.Dense
        ``C -> C`` dense synapse (its ``pre_hook_fx``, e.g. the neuron's quantizer, applies).

    Returns
    -------
    torch.Tensor
        ``N, C, T`` spikes: ``s[t] = neuron(z[t] + R s[t-1])``, ``s[-1] = 0``.
    """
    matrix = _recurrent_matrix(recurrent_synapse)
    return _run(z, neuron, lambda spikes: _matvec(spikes, matrix, None), matrix.shape[0])


def custom_recurrent_ground_truth_1(z: torch.Tensor, neuron: torch.nn.Module,
                                    recurrent_synapse) -> torch.Tensor:
    """:func:`custom_recurrent` with the feedback computed by the synapse's own forward pass.

    Parameters and return value as for :func:`custom_recurrent`.
    """
    channels = _recurrent_matrix(recurrent_synapse).shape[0]
    return _run(z, neuron, lambda spikes: recurrent_synapse(spikes.unsqueeze(-1))[..., 0], channels)


def custom_recurrent_ground_truth_2(z: torch.Tensor, neuron: torch.nn.Module,
                                    recurrent_synapse) -> torch.Tensor:
    """:func:`custom_recurrent` with the feedback as an explicit ``spikes @ R.T`` product.

    Parameters and return value as for :func:`custom_recurrent`.
    """
    matrix = _recurrent_matrix(recurrent_synapse)
    return _run(z, neuron, lambda spikes: torch.matmul(spikes, matrix.to(spikes.dtype).transpose(0, 1)),
                matrix.shape[0])


class CustomRecurrent:
    """lava-dl's ``CustomRecurrent.apply(z, neuron, recurrent_mat)`` call, given the matrix ``R`` itself.

    ``CustomRecurrent.apply(z, neuron, R)`` returns :func:`custom_recurrent`'s spikes for the
    ``(C, C)`` matrix ``R`` (used as given: no pre-hook). It is a plain autograd loop rather
    than lava-dl's hand-written ``torch.autograd.Function``; the gradients are the same.
    """

    @staticmethod
    def apply(z: torch.Tensor, neuron: torch.nn.Module, recurrent_mat: torch.Tensor) -> torch.Tensor:
        """Spikes ``s[t] = neuron(z[t] + R s[t-1])`` (``N, C, T``)."""
        if recurrent_mat.dim() != 2 or recurrent_mat.shape[0] != recurrent_mat.shape[1]:
            raise ValueError(f"CustomRecurrent: recurrent_mat must be square (C, C), got shape "
                             f"{tuple(recurrent_mat.shape)}")
        return _run(z, neuron, lambda spikes: _matvec(spikes, recurrent_mat, None), recurrent_mat.shape[0])
