"""YOLO-KP for event-camera input (lava-dl's ``object_detection.models.yolo_kp_events``).

The YOLO-KP chain (:mod:`lava_dl.slayer.object_detection.models.yolo_kp`) with its first two
convolutions made of CUBA-LIF spiking neurons, which take two-channel (ON/OFF polarity) event
frames directly: no ``Input`` block and no image normalisation. The remaining seven
convolutions are sigma-delta blocks, followed by the conv-synapse + sigma head. The module
structure and parameter names are lava-dl's, so its saved state dicts load (``load_state_dict``,
strict) into this network.

Differences from lava-dl
------------------------
* The head export works (see :mod:`lava_dl.slayer.object_detection.models.yolo_kp`); run one
  forward before :meth:`Network.export_hdf5`.
* The sigma-delta blocks compute in float64, so the outputs are float64.
* :meth:`Network.load_model` loads through ``load_state_dict``, and the head's event rates and
  the 24-bit wrap of the synaptic sums are as in
  :mod:`lava_dl.slayer.object_detection.models.yolo_kp`.
"""

from __future__ import annotations

from types import MappingProxyType

import torch

from lava_dl import slayer
from lava_dl.slayer.object_detection.models.yolo_kp import (
    _ANCHORS,
    _KPBase,
    _quantize_8bit,
    _sdnn_params,
    _sdnn_tail,
)

__all__ = ["Network"]

#: Default CUBA-LIF parameters of the two spiking layers (lava-dl's).
_CUBA_PARAMS = MappingProxyType({"threshold": 0.1, "current_decay": 1, "voltage_decay": 0.1, "tau_grad": 0.1,
                                 "scale_grad": 15})


class Network(_KPBase):
    """YOLO-KP with CUBA-LIF input layers for event frames.

    Parameters
    ----------
    num_classes : int
        Number of object classes, default 80.
    anchors : sequence
        Anchors ``(1, anchors, 2)`` of the single head.
    threshold : float
        Sigma-delta threshold of the sigma-delta neurons, default 0.1.
    tau_grad : float
        Surrogate-gradient relaxation of the delta units, default 0.1.
    scale_grad : float
        Surrogate-gradient scale of the delta units, default 0.1.
    clamp_max : float
        Upper clamp of the raw width/height in the box decoding, default 5.
    cuba_params : dict
        CUBA-LIF neuron arguments of the first two blocks (``threshold``, ``current_decay``,
        ``voltage_decay``, ``tau_grad``, ``scale_grad``; a mean-only batch norm is added).

    Attributes
    ----------
    blocks, heads : torch.nn.ModuleList
        The nine convolution blocks (two CUBA, seven sigma-delta) and the head (conv synapse,
        sigma).
    """

    def __init__(self, num_classes: int = 80, anchors=_ANCHORS, threshold: float = 0.1, tau_grad: float = 0.1,
                 scale_grad: float = 0.1, clamp_max: float = 5.0, cuba_params: dict = _CUBA_PARAMS) -> None:
        super().__init__(num_classes=num_classes, anchors=anchors, clamp_max=clamp_max)
        if self.num_scales != 1:
            raise ValueError(f"yolo_kp_events.Network has one head: anchors must have 1 scale, "
                             f"got {self.num_scales}")
        if not hasattr(cuba_params, "items"):
            raise TypeError(f"yolo_kp_events.Network: cuba_params must be a dict, "
                            f"got {type(cuba_params).__name__}")
        sdnn = _sdnn_params(threshold, tau_grad, scale_grad)
        norm = slayer.neuron.norm.MeanOnlyBatchNorm
        cuba = {**dict(cuba_params), "norm": norm}
        blk = dict(weight_scale=3, weight_norm=True, delay_shift=False, pre_hook_fx=_quantize_8bit)
        self.blocks = torch.nn.ModuleList([
            slayer.block.cuba.Conv(cuba, 2, 16, 3, padding=1, stride=2, **blk),
            slayer.block.cuba.Conv(cuba, 16, 32, 3, padding=1, stride=2, **blk),
            *_sdnn_tail({**sdnn, "norm": norm}, 2),
        ])
        self.heads = self._make_head()

    def forward(self, input: torch.Tensor, sparsity_monitor: slayer.loss.SparsityEnforcer | None = None
                ) -> tuple[torch.Tensor | list[torch.Tensor], torch.Tensor]:
        """Detect objects in a sequence of event frames.

        Parameters
        ----------
        input : torch.Tensor
            Event frames ``(batch, 2, height, width, time)`` (ON/OFF polarity counts).
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
        if input.dim() != 5 or input.shape[1] != 2:
            raise ValueError("yolo_kp_events.Network: expected event frames (batch, 2, height, width, time), "
                             f"got shape {tuple(input.shape)}")
        return self._finish(input, [], sparsity_monitor, input.device)
