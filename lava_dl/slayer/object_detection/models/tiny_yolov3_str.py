"""Strided Tiny YOLOv3 as a sigma-delta network (lava-dl's ``object_detection.models.tiny_yolov3_str``).

Tiny YOLOv3 with the max-pooling layers replaced by strided convolutions, so that it maps onto
Loihi 2: a sigma-delta ``Input`` block, a five-layer convolutional backend, and two prediction
heads (a coarse one after four more convolutions, a finer one that upsamples with an ``Unpool``
block and concatenates the backend output). Each head ends in a plain conv synapse and a sigma
integrator, whose output :class:`~lava_dl.slayer.object_detection.yolo_base.YOLOBase` turns into
boxes. The module structure and parameter names are lava-dl's, so its saved state dicts load
(``load_state_dict``, strict) into this network.

The network branches, so it has no hdf5 export (as in lava-dl).

Differences from lava-dl
------------------------
* The sigma-delta blocks compute in float64 (this package's exact Loihi arithmetic), so the
  outputs are float64.
* :meth:`Network.load_model` loads through ``load_state_dict`` (lava-dl's or this package's
  entry names) instead of copying entries one by one, mapped to the network's device (lava-dl's
  failed on a CPU-only machine for its own trained files, saved from CUDA); head weights of
  another class count are skipped as in lava-dl.
* The convolution blocks wrap synaptic sums to 24 bits as Loihi does (see
  :mod:`lava_dl.slayer.block.sigma_delta`); lava-dl did not, so where a sum reaches 32 in
  magnitude (it does with lava-dl's trained weights) the outputs differ from lava-dl's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lava_dl import slayer
from lava_dl.slayer.object_detection.yolo_base import (
    _IMAGENET_MEAN,
    _IMAGENET_STD,
    YOLOBase,
    _event_counts,
    _grad_flow,
    _load_model,
    _normalize,
    _quantize_8bit,
    _run_blocks,
)

__all__ = ["Network"]

_ANCHORS = (
    ((0.28, 0.22), (0.38, 0.48), (0.90, 0.78)),
    ((0.07, 0.15), (0.15, 0.11), (0.14, 0.29)),
)


class Network(YOLOBase):
    """Sigma-delta strided Tiny YOLOv3.

    Parameters
    ----------
    num_classes : int
        Number of object classes, default 80.
    anchors : sequence
        Anchors ``(2, anchors per scale, 2)`` of the coarse and the fine head.
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
    input_blocks, backend_blocks, head1_backend, head1_blocks, head2_backend, head2_blocks
        ``torch.nn.ModuleList`` s of the network's stages (lava-dl's names).
    normalize_mean, normalize_std : torch.Tensor
        ImageNet statistics applied to the input frames (not part of the state dict).
    """

    def __init__(self, num_classes: int = 80, anchors=_ANCHORS, threshold: float = 0.1, tau_grad: float = 0.1,
                 scale_grad: float = 0.1, clamp_max: float = 5.0) -> None:
        super().__init__(num_classes=num_classes, anchors=anchors, clamp_max=clamp_max)
        if self.num_scales != 2:
            raise ValueError(f"tiny_yolov3_str.Network has two heads: anchors must have 2 scales, "
                             f"got {self.num_scales}")
        sdnn = dict(threshold=threshold, tau_grad=tau_grad, scale_grad=scale_grad, requires_grad=False,
                    shared_param=True, activation=F.relu)
        neuron = {**sdnn, "norm": slayer.neuron.norm.MeanOnlyBatchNorm}
        blk = dict(weight_norm=True, delay_shift=False, pre_hook_fx=_quantize_8bit)
        syn = dict(weight_norm=False, pre_hook_fx=_quantize_8bit)
        sd = slayer.block.sigma_delta

        self.normalize_mean = torch.tensor(_IMAGENET_MEAN).reshape(1, 3, 1, 1, 1)
        self.normalize_std = torch.tensor(_IMAGENET_STD).reshape(1, 3, 1, 1, 1)

        def conv(c_in, c_out, k, stride=1, **kwargs):
            return sd.Conv(neuron, c_in, c_out, k, padding=k // 2, stride=stride, **kwargs, **blk)

        self.input_blocks = torch.nn.ModuleList([sd.Input(sdnn)])
        self.backend_blocks = torch.nn.ModuleList([
            conv(3, 16, 3, 2, weight_scale=1),
            conv(16, 32, 3, 2, weight_scale=1),
            conv(32, 64, 3, 2, weight_scale=1),
            conv(64, 128, 3, 2, weight_scale=3),
            conv(128, 256, 3, 1, weight_scale=3),
        ])
        self.head1_backend = torch.nn.ModuleList([
            conv(256, 256, 3, 2),
            conv(256, 512, 3, 1),
            conv(512, 1024, 3, 1),
            conv(1024, 256, 1, 1),
        ])
        self.head1_blocks = torch.nn.ModuleList([
            conv(256, 512, 3, 1),
            slayer.synapse.Conv(512, self.num_output, 1, padding=0, stride=1, **syn),
            slayer.dendrite.Sigma(),
        ])
        self.head2_backend = torch.nn.ModuleList([
            conv(256, 128, 1, 1),
            sd.Unpool(sdnn, kernel_size=2, stride=2, **blk),
        ])
        self.head2_blocks = torch.nn.ModuleList([
            conv(384, 256, 3, 1),
            slayer.synapse.Conv(256, self.num_output, 1, padding=0, stride=1, **syn),
            slayer.dendrite.Sigma(),
        ])

    def forward(self, input: torch.Tensor, sparsity_monitor: slayer.loss.SparsityEnforcer | None = None
                ) -> tuple[torch.Tensor | list[torch.Tensor], torch.Tensor]:
        """Detect objects in a sequence of frames.

        Parameters
        ----------
        input : torch.Tensor
            RGB frames ``(batch, 3, height, width, time)`` in ``[0, 1]``; height and width
            multiples of 32.
        sparsity_monitor : slayer.loss.SparsityEnforcer, optional
            Collects the activations of the neuron layers for a sparsity penalty.

        Returns
        -------
        torch.Tensor or list of torch.Tensor
            Training mode: the raw outputs of the two heads ``(batch, anchors, H, W, 5 + classes,
            time)`` (coarse head first); evaluation mode: the decoded boxes of both heads,
            concatenated, ``(batch, boxes, 5 + classes, time)``.
        torch.Tensor
            Event rate of every layer ``(1, layers)``.
        """
        x = _normalize(self, input)
        count = []
        x = _run_blocks(self.input_blocks, x, count)
        backend = _run_blocks(self.backend_blocks, x, count, sparsity_monitor)
        h1_backend = _run_blocks(self.head1_backend, backend, count, sparsity_monitor)
        head1 = _run_blocks(self.head1_blocks, h1_backend, count, sparsity_monitor, monitor_all=False)
        h2_backend = _run_blocks(self.head2_backend, h1_backend, count, sparsity_monitor)
        if h2_backend.shape[2:4] != backend.shape[2:4]:
            raise ValueError(f"tiny_yolov3_str.Network: input height and width must be multiples of 32, got "
                             f"{tuple(input.shape[2:4])}")
        head2 = _run_blocks(self.head2_blocks, torch.cat([h2_backend, backend], dim=1), count,
                            sparsity_monitor, monitor_all=False)
        head1 = self.yolo_raw(head1)
        head2 = self.yolo_raw(head2)
        if self.training:
            output = [head1, head2]
        else:
            output = torch.cat([self.yolo(head1, self.anchors[0]), self.yolo(head2, self.anchors[1])], dim=1)
        return output, _event_counts(count, input.device)

    def grad_flow(self, path: str) -> list:
        """Gradient norms of the weighted blocks, plotted to ``path + 'gradFlow.png'``.

        Parameters
        ----------
        path : str
            Prefix of the plot file.

        Returns
        -------
        list of float
            Gradient norm per block (backend, head backends, heads).
        """
        blocks = [*self.backend_blocks, *self.head1_backend, *self.head2_backend, *self.head1_blocks,
                  *self.head2_blocks]
        return _grad_flow(blocks, path)

    def load_model(self, model_file: str) -> None:
        """Load a saved state dict, skipping the head weights if the class count differs.

        Parameters
        ----------
        model_file : str
            File written by ``torch.save(net.state_dict(), ...)`` (lava-dl's or this package's).
            Saved entries that were not loaded are printed.
        """
        _load_model(self, model_file, ("head1_blocks.1.weight", "head2_blocks.1.weight"))

