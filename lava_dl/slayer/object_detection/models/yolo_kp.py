"""YOLO-KP: a single-head sigma-delta YOLO for the 8-chip Loihi 2 Kapoho Point board
(lava-dl's ``object_detection.models.yolo_kp``).

A redesign of Tiny YOLOv3 as one chain of layers: a sigma-delta ``Input`` block, nine
convolution blocks, then a conv synapse and a sigma integrator (the head). Being a chain, it
exports to hdf5 (:meth:`Network.export_hdf5`) and runs under ``lava_dl.netx``. The module
structure and parameter names are lava-dl's, so its saved state dicts load (``load_state_dict``,
strict) into this network.

Differences from lava-dl
------------------------
* lava-dl's :meth:`Network.export_hdf5_head` read ``device_params`` of its ``dendrite.Sigma``,
  which has none, so its export failed; here the head is written as a ``conv`` record with a
  ``sigma_output`` neuron that netx deploys as Lava's ``Sigma``. The export needs the layer
  shapes: run one forward first.
* The sigma-delta blocks compute in float64 (this package's exact Loihi arithmetic), so the
  outputs are float64.
* The last three convolutions use the quantizer lava-dl named ``quantize_5bit``, which quantizes
  to 8 bits as lava-dl's does (kept: trained models depend on it).
* :meth:`Network.load_model` loads through ``load_state_dict`` (lava-dl's or this package's
  entry names) instead of copying entries one by one, mapped to the network's device (lava-dl's
  failed on a CPU-only machine for its own trained files, saved from CUDA); a head of another
  class count is skipped as in lava-dl.
* The event rate logged for the two head stages is the fraction of nonzero outputs; lava-dl's
  ``torch.abs(x > 0)`` fails on current torch (no ``abs`` for booleans).
* The convolution blocks wrap synaptic sums to 24 bits as Loihi does (see
  :mod:`lava_dl.slayer.block.sigma_delta`); lava-dl did not, so where a sum reaches 32 in
  magnitude (it does with lava-dl's trained weights) the outputs differ from lava-dl's.
"""

from __future__ import annotations

import h5py
import torch
import torch.nn.functional as F

from lava_dl import slayer
from lava_dl.slayer.object_detection.yolo_base import (
    _IMAGENET_MEAN,
    _IMAGENET_STD,
    YOLOBase,
    _event_counts,
    _export_sigma_head,
    _grad_flow,
    _load_model,
    _normalize,
    _quantize_8bit,
    _run_blocks,
)

__all__ = ["Network"]

_ANCHORS = (((0.28, 0.22), (0.38, 0.48), (0.90, 0.78)),)

#: lava-dl's ``quantize_5bit`` quantized to 8 bits as well (see the module notes).
_quantize_5bit = _quantize_8bit


def _sdnn_params(threshold: float, tau_grad: float, scale_grad: float) -> dict:
    """lava-dl's sigma-delta neuron arguments of the KP models."""
    return dict(threshold=threshold, tau_grad=tau_grad, scale_grad=scale_grad, requires_grad=False,
                shared_param=True, activation=F.relu)


def _sdnn_tail(neuron: dict, first: int) -> list:
    """Sigma-delta conv blocks ``first`` ... 8 of the KP chain (``(in, out, kernel, stride, weight_scale,
    quantizer)`` as lava-dl's)."""
    layers = [
        (3, 16, 3, 2, 1, _quantize_8bit), (16, 32, 3, 2, 1, _quantize_8bit),
        (32, 64, 3, 2, 1, _quantize_8bit),
        (64, 128, 3, 2, 3, _quantize_8bit), (128, 256, 3, 1, 3, _quantize_8bit),
        (256, 256, 3, 2, 3, _quantize_8bit), (256, 512, 3, 1, 3, _quantize_5bit),
        (512, 256, 1, 1, 3, _quantize_5bit), (256, 512, 3, 1, 3, _quantize_5bit),
    ]
    return [slayer.block.sigma_delta.Conv(neuron, c_in, c_out, k, padding=k // 2, stride=s, weight_scale=ws,
                                          weight_norm=True, delay_shift=False, pre_hook_fx=q)
            for c_in, c_out, k, s, ws, q in layers[first:]]


class _KPBase(YOLOBase):
    """The head, forward tail, export and utilities shared by YOLO-KP and its event version."""

    blocks: torch.nn.ModuleList
    heads: torch.nn.ModuleList

    def _make_head(self) -> torch.nn.ModuleList:
        return torch.nn.ModuleList([
            slayer.synapse.Conv(512, self.num_output, 1, padding=0, stride=1, weight_norm=False,
                                pre_hook_fx=_quantize_8bit),
            slayer.dendrite.Sigma(),
        ])

    def _finish(self, x: torch.Tensor, count: list, sparsity_monitor, device):
        x = _run_blocks(self.blocks, x, count, sparsity_monitor)
        for head in self.heads:
            x = head(x)
            count.append(torch.mean((x.abs() > 0).to(x.dtype)).item())
        raw = self.yolo_raw(x)
        output = [raw] if self.training else self.yolo(raw, self.anchors[0])
        return output, _event_counts(count, device)

    def export_hdf5_head(self, handle: h5py.Group, clip_weights: bool = False) -> None:
        """Write the head (conv synapse + sigma integrator) as a ``conv`` record with a sigma output.

        Parameters
        ----------
        handle : h5py.Group
            Empty group ``layer/<i>``.
        clip_weights : bool
            Write weights beyond the quantizer's range clamped (as the forward uses them) instead
            of raising, default False.
        """
        _export_sigma_head(handle, self.heads[0], self.heads[1], clip_weights=clip_weights)

    def _export_layers(self):
        return [*getattr(self, "input_blocks", []), *self.blocks]

    def export_hdf5(self, filename: str, clip_weights: bool = False) -> None:
        """Export the network as an hdf5 description (``lava_dl.netx.hdf5.Network`` loads it).

        Parameters
        ----------
        filename : str
            Output file. Run one forward before, so that the layer shapes are known; weight norm
            is removed from the blocks (the effective weights are kept).
        clip_weights : bool
            Write weights and norm biases beyond the quantizers' range clamped, as the training
            forward uses them, instead of raising (this package's extension; default False).
        """
        with h5py.File(filename, "w") as h:
            layer = h.create_group("layer")
            blocks = self._export_layers()
            for i, block in enumerate(blocks):
                block.export_hdf5(layer.create_group(f"{i}"), clip_weights=clip_weights)
            self.export_hdf5_head(layer.create_group(f"{len(blocks)}"), clip_weights=clip_weights)

    def grad_flow(self, path: str) -> list:
        """Gradient norms of the weighted blocks, plotted to ``path + 'gradFlow.png'``.

        Parameters
        ----------
        path : str
            Prefix of the plot file.

        Returns
        -------
        list of float
            Gradient norm per block.
        """
        return _grad_flow(self.blocks, path)

    def load_model(self, model_file: str) -> None:
        """Load a saved state dict, skipping the head weight if the class count differs.

        Parameters
        ----------
        model_file : str
            File written by ``torch.save(net.state_dict(), ...)`` (lava-dl's or this package's).
            Saved entries that were not loaded are printed.
        """
        _load_model(self, model_file, ("heads.0.weight",))


class Network(_KPBase):
    """Sigma-delta YOLO-KP.

    Parameters
    ----------
    num_classes : int
        Number of object classes, default 80.
    anchors : sequence
        Anchors ``(1, anchors, 2)`` of the single head.
    threshold : float
        Sigma-delta threshold of every neuron, default 0.1.
    tau_grad : float
        Surrogate-gradient relaxation of the delta units, default 0.1.
    scale_grad : float
        Surrogate-gradient scale of the delta units, default 0.1.
    clamp_max : float
        Upper clamp of the raw width/height in the box decoding, default 5.

    Attributes
    ----------
    input_blocks, blocks, heads : torch.nn.ModuleList
        Input encoder, the nine convolution blocks, and the head (conv synapse, sigma).
    normalize_mean, normalize_std : torch.Tensor
        ImageNet statistics applied to the input frames (not part of the state dict).
    """

    def __init__(self, num_classes: int = 80, anchors=_ANCHORS, threshold: float = 0.1, tau_grad: float = 0.1,
                 scale_grad: float = 0.1, clamp_max: float = 5.0) -> None:
        super().__init__(num_classes=num_classes, anchors=anchors, clamp_max=clamp_max)
        if self.num_scales != 1:
            raise ValueError(f"yolo_kp.Network has one head: anchors must have 1 scale, "
                             f"got {self.num_scales}")
        sdnn = _sdnn_params(threshold, tau_grad, scale_grad)
        self.normalize_mean = torch.tensor(_IMAGENET_MEAN).reshape(1, 3, 1, 1, 1)
        self.normalize_std = torch.tensor(_IMAGENET_STD).reshape(1, 3, 1, 1, 1)
        self.input_blocks = torch.nn.ModuleList([slayer.block.sigma_delta.Input(sdnn)])
        self.blocks = torch.nn.ModuleList(
            _sdnn_tail({**sdnn, "norm": slayer.neuron.norm.MeanOnlyBatchNorm}, 0))
        self.heads = self._make_head()

    def forward(self, input: torch.Tensor, sparsity_monitor: slayer.loss.SparsityEnforcer | None = None
                ) -> tuple[torch.Tensor | list[torch.Tensor], torch.Tensor]:
        """Detect objects in a sequence of frames.

        Parameters
        ----------
        input : torch.Tensor
            RGB frames ``(batch, 3, height, width, time)`` in ``[0, 1]``.
        sparsity_monitor : slayer.loss.SparsityEnforcer, optional
            Collects the activations of the convolution blocks for a sparsity penalty.

        Returns
        -------
        torch.Tensor or list of torch.Tensor
            Training mode: ``[raw]``, the raw head output ``(batch, anchors, H, W, 5 + classes,
            time)``; evaluation mode: the decoded boxes ``(batch, boxes, 5 + classes, time)``.
        torch.Tensor
            Event rate of every layer ``(1, layers)``.
        """
        x = _normalize(self, input)
        count = []
        x = _run_blocks(self.input_blocks, x, count)
        return self._finish(x, count, sparsity_monitor, input.device)
