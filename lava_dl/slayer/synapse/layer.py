"""Dense, convolution, pooling and transposed synapses for training (PyTorch; no Lava imports).

lava-dl's ``slayer.synapse.layer``; its classes are also ``lava_dl.slayer.synapse.Dense`` etc.

The parameters are stored exactly as in lava-dl (a 5-D ``weight`` of shape
``(out, in / groups, kH, kW, 1)``, ``(in, out / groups, kH, kW, 1)`` for
ConvTranspose and ``(1, 1, kH, kW, 1)`` for Pool/Unpool, a unit kernel along time,
no bias unless one is assigned) so state dicts port. The forward pass avoids 3-D
convolutions: Dense is a matrix product over the channel axis, Conv/ConvTranspose fold time
into the batch and run ``conv2d``/``conv_transpose2d``, Pool/Unpool also fold the channels
into the batch.

Tensors are ``N, C, T`` (dense) or ``N, C, H, W, T`` (conv), time last. Outputs
are stored time-major (memory ordered ``N, T, C, ...``, a permuted view; Conv and
ConvTranspose: ``N, T, H, W, C``, channels-last, oneDNN's fast layout), which is
what the matrix products produce and what the next synapse and the neuron kernels
read without a transposing copy. The deployed integer counterparts are
:func:`lava_dl.core.synapse.dense_fixed` and :func:`lava_dl.core.synapse.conv_fixed`
(and the ConvT/Pool/Unpool Processes of :mod:`lava_dl.proc.conv`); see
:func:`conv_weight_to_lava`, :func:`conv_transpose_weight_to_lava`,
:func:`pool_weight_to_lava` and :func:`unpool_weight_to_lava` for the layout conversions.
"""

from __future__ import annotations

import math
import typing as ty

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from lava_dl.core.synapse import kernel_to_lava
from lava_dl.slayer import checks
from lava_dl.slayer._eager import eager
from lava_dl.slayer.io import _to_numpy
from lava_dl.slayer.synapse import _events

IntOrPair = ty.Union[int, ty.Sequence[int]]  # noqa: UP007, UP045
PreHook = ty.Optional[ty.Callable[[torch.Tensor], torch.Tensor]]  # noqa: UP007, UP045


def _pair(value: IntOrPair, name: str, lo: int, where: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) in (1, 2) and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        pair = (int(value[0]), int(value[-1]))
    else:
        raise TypeError(f"{where}: {name} must be an int or an (H, W) pair of ints, got {value!r}")
    if min(pair) < lo:
        raise ValueError(f"{where}: {name} must be >= {lo}, got {pair}")
    return pair


def _positive_int(value, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive int, got {value!r}")
    return int(value)


#: Instance attribute of a synapse holding the effective weight of its last forward (detached).
_FORWARD_WEIGHT = "_forward_weight"


def take_forward_weight(synapse: nn.Module) -> torch.Tensor | ty.Callable[[], torch.Tensor]:
    """The effective weight that ``synapse``'s last forward used, handed over once.

    A block calls this right after its synapse's forward, to bound the synapse output
    (:func:`lava_dl.slayer.checks.bound_linear_output`) without quantizing the weight a second
    time; the kept weight is dropped, so a later call cannot see it. Without one (a synapse
    that keeps none, or one already taken) returns ``synapse.effective_weight`` itself, to be
    called when needed.

    Parameters
    ----------
    synapse : torch.nn.Module
        A synapse of this module (or any module with ``effective_weight``).

    Returns
    -------
    torch.Tensor or callable
        The detached weight ``pre_hook_fx(weight)`` of the last forward, or the method
        computing it.
    """
    weight = synapse.__dict__.pop(_FORWARD_WEIGHT, None)
    return synapse.effective_weight if weight is None else weight


def forget_forward_weight(synapse: nn.Module) -> None:
    """Drop the weight kept by ``synapse``'s last forward (:func:`take_forward_weight`), so that
    the next one hands over only what the next forward keeps."""
    synapse.__dict__.pop(_FORWARD_WEIGHT, None)


class _Synapse(nn.Module):
    """Shared parameter handling: init, pre-hook, weight norm, an optional bias.

    As lava-dl's synapses (``torch.nn.Conv3d`` there), every synapse has a ``bias`` parameter
    that is None; a bias assigned to it (``synapse.bias = nn.Parameter(b)``, one value per
    output channel, or one for all) is added to every output step and trained. Such a bias has
    no hdf5 form: block export refuses a nonzero one (lava-dl's export dropped it).
    """

    weight: torch.Tensor
    #: Not complex (lava-dl's flag; :mod:`lava_dl.slayer.synapse.complex` sets it).
    complex = False
    #: lava-dl's ``nn.Conv3d`` attributes: zero padding, no output padding.
    padding_mode = "zeros"

    def _init_weight(self, shape: tuple[int, ...], weight_scale: float, weight_norm: bool,
                     pre_hook_fx: PreHook) -> None:
        self.weight = nn.Parameter(torch.empty(shape))
        # torch's default Conv/Linear initialisation (fan-in uniform), then lava-dl's weight_scale
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        with torch.no_grad():
            self.weight.mul_(weight_scale)
        self._init_hooks(weight_norm, pre_hook_fx)

    def _init_hooks(self, weight_norm: bool, pre_hook_fx: PreHook) -> None:
        self.pre_hook_fx = pre_hook_fx
        self._weight_norm = False
        if weight_norm:
            self.enable_weight_norm()
        self.register_parameter("bias", None)
        self.register_forward_hook(_add_bias)

    @property
    def _pre_hook_fx(self) -> PreHook:
        """lava-dl's private name of :attr:`pre_hook_fx` (code that subclasses its synapses reads it)."""
        return self.pre_hook_fx

    @_pre_hook_fx.setter
    def _pre_hook_fx(self, fx: PreHook) -> None:
        self.pre_hook_fx = fx

    @property
    def transposed(self) -> bool:
        """Whether the synapse is a transposed convolution (lava-dl's ``nn.Conv3d`` attribute)."""
        return bool(getattr(self, "_transposed", False))

    @property
    def output_padding(self) -> tuple[int, int, int]:
        """lava-dl's ``nn.Conv3d`` attribute: no output padding."""
        return (0, 0, 0)

    @property
    def weight_norm(self) -> bool:
        """Whether the weight is currently weight-normalised."""
        return self._weight_norm

    def enable_weight_norm(self) -> None:
        """Reparametrise ``weight`` with torch's weight norm (per output channel, ``dim=0``)."""
        if not self._weight_norm:
            nn.utils.parametrizations.weight_norm(self, name="weight", dim=0)
            self._weight_norm = True

    def disable_weight_norm(self) -> None:
        """Remove weight norm, keeping the current effective weight as a plain parameter (before export)."""
        if self._weight_norm:
            parametrize.remove_parametrizations(self, "weight", leave_parametrized=True)
            self._weight_norm = False

    @property
    def weight_norm_enabled(self) -> bool:
        """lava-dl's name for :attr:`weight_norm`."""
        return self._weight_norm

    @property
    def grad_norm(self) -> float:
        """Gradient flow monitor (lava-dl's): the norm of the weight's gradient divided by its number
        of entries (with weight norm, of the magnitude ``g``'s gradient); 0 before any gradient."""
        if self._weight_norm:
            weight = self.parametrizations.weight.original0
        else:
            weight = self.weight
        grad = weight.grad
        return 0 if grad is None else torch.linalg.vector_norm(grad).item() / grad.numel()

    @property
    def shape(self) -> torch.Size:
        """Shape of the synapse (lava-dl's): the shape of its 5-D ``weight``.

        Returns
        -------
        torch.Size
            ``(out, in / groups, kH, kW, 1)`` (Dense: ``(out, c, y, x, 1)``), ``(in, out / groups,
            kH, kW, 1)`` for ConvTranspose, ``(1, 1, kH, kW, 1)`` for Pool/Unpool; the same with
            weight norm enabled (the reparametrised weight keeps its shape).
        """
        return self.weight.shape

    def effective_weight(self) -> torch.Tensor:
        """The weight used by ``forward``: ``pre_hook_fx(weight)`` (or ``weight`` without a hook)."""
        weight = self.weight
        return weight if self.pre_hook_fx is None else self.pre_hook_fx(weight)

    def _weight_for(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`effective_weight` in the dtype of a float64 input (graded payloads sum exactly).

        Also kept (detached, in its own dtype) for :func:`take_forward_weight`.
        """
        weight = self.effective_weight()
        self.__dict__[_FORWARD_WEIGHT] = weight.detach()
        if x.dtype == torch.float64 and weight.dtype != torch.float64:
            weight = weight.to(torch.float64)
        return weight

    def _check_input(self, x: torch.Tensor, ndim: int, layout: str, channels: bool = True) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__}: expected a torch.Tensor, got {type(x).__name__}")
        if x.dim() != ndim:
            raise ValueError(f"{type(self).__name__}: expected a {ndim}-D input {layout} (time last), "
                             f"got shape {tuple(x.shape)}")
        if channels and x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: expected {self.in_channels} input channels (axis 1), "
                             f"got shape {tuple(x.shape)}")


def _add_bias(synapse: _Synapse, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
    """Forward hook of every synapse: add its bias (if one was assigned) to every output step."""
    bias = synapse.bias
    if bias is None:
        return None
    if bias.numel() not in (1, output.shape[1]):
        raise ValueError(f"{type(synapse).__name__}: a bias of {bias.numel()} values does not fit "
                         f"{output.shape[1]} output channels")
    return output + bias.reshape(1, -1, *(1,) * (output.dim() - 2)).to(output.dtype)


#: lava-dl's name for the base class of the synapses (``isinstance`` checks of lava-dl code).
GenericLayer = _Synapse


class Dense(_Synapse):
    """Fully connected synapse ``y[n, :, t] = W @ x[n, :, t]`` (lava-dl ``slayer.synapse.Dense``).

    Parameters
    ----------
    in_neurons : int or tuple of int
        Input size. A tuple ``(x, y[, c])`` connects a whole ``(C, H=y, W=x)`` input
        (as lava-dl: kernel ``(y, x, 1)``); the input must then be ``N, c, y, x, T``.
    out_neurons : int
        Output size.
    weight_scale : float, default 1
        Multiplies torch's default initial weights.
    weight_norm : bool, default False
        Train with weight normalisation (remove with :meth:`disable_weight_norm`).
    pre_hook_fx : callable, optional
        Applied to the weight at every forward (e.g. the neuron's 8-bit quantizer).

    Attributes
    ----------
    weight : torch.nn.Parameter
        ``(out_neurons, c, y, x, 1)`` (``(out, in, 1, 1, 1)`` for an int ``in_neurons``).
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups
        As lava-dl (``kernel_size`` is ``(H, W)``; the rest are ``(1, 1)``, ``(0, 0)``,
        ``(1, 1)`` and 1).
    """

    def __init__(self, in_neurons: int | ty.Sequence[int], out_neurons: int, weight_scale: float = 1,
                 weight_norm: bool = False, pre_hook_fx: PreHook = None) -> None:
        super().__init__()
        where = "Dense"
        if isinstance(in_neurons, (tuple, list)):
            if len(in_neurons) not in (2, 3):
                raise ValueError(f"{where}: in_neurons must be an int or (x, y[, c]), got {in_neurons!r}")
            sizes = [_positive_int(v, "in_neurons", where) for v in in_neurons]
            kx, ky = sizes[0], sizes[1]
            in_c = sizes[2] if len(sizes) == 3 else 1
        else:
            in_c, kx, ky = _positive_int(in_neurons, "in_neurons", where), 1, 1
        self.spatial = isinstance(in_neurons, (tuple, list))
        self.in_channels = in_c
        self.out_channels = _positive_int(out_neurons, "out_neurons", where)
        self.kernel_size = (ky, kx)
        self.stride, self.padding, self.dilation, self.groups = (1, 1), (0, 0), (1, 1), 1
        self._init_weight((self.out_channels, in_c, ky, kx, 1), weight_scale, weight_norm, pre_hook_fx)

    @eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """``N, C, T`` -> ``N, out, T`` (spatial ``in_neurons``: ``N, c, y, x, T`` -> ``N, out, 1, 1, T``)."""
        weight = self._weight_for(input).reshape(self.out_channels, -1)
        if self.spatial:
            self._check_input(input, 5, "N, C, H, W, T")
            if tuple(input.shape[2:4]) != self.kernel_size:
                raise ValueError(f"Dense: expected spatial size (H, W) = {self.kernel_size}, "
                                 f"got shape {tuple(input.shape)}")
            n, _, _, _, t = input.shape
            y = F.linear(input.reshape(n, -1, t).transpose(1, 2), weight).transpose(1, 2)
            return y.reshape(n, self.out_channels, 1, 1, t)
        if input.dim() == 5 and input.shape[2] == 1 and input.shape[3] == 1:  # N, C, 1, 1, T (lava-dl)
            n, c, _, _, t = input.shape
            return self.forward(input.reshape(n, c, t)).reshape(n, self.out_channels, 1, 1, t)
        self._check_input(input, 3, "N, C, T")
        # (N, T, C) @ W^T: time-major memory in and out, so no operand is transposed in memory
        rows = input.transpose(1, 2)
        if _events.linear_usable(rows, weight, checks.marked_binary(input)):  # the same values, faster
            return _events.BinaryLinear.apply(rows, weight).transpose(1, 2)
        return F.linear(rows, weight).transpose(1, 2)


class _Windowed(_Synapse):
    """A synapse sliding a ``kernel_size`` window: forward (``conv2d``) or transposed."""

    #: Transposed (``conv_transpose2d``; ConvTranspose weight ``(in, out / groups, ...)``).
    _transposed = False
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]

    def output_size(self, input_size: IntOrPair) -> tuple[int, int]:
        """Output ``(H, W)`` for an input ``(H, W)``; raises ValueError naming the axis if it is empty
        (forward: if the padded input is smaller than the dilated kernel)."""
        size = _transpose_size if self._transposed else _forward_size
        return size(type(self).__name__, input_size, self.kernel_size, self.stride, self.padding,
                    self.dilation)


class _Convolution(_Windowed):
    """Convolution-like synapse with its own weights: :class:`Conv`, or :class:`ConvTranspose`."""

    def __init__(self, in_features: int, out_features: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1, weight_scale: float = 1,
                 weight_norm: bool = False, pre_hook_fx: PreHook = None) -> None:
        super().__init__()
        where = type(self).__name__
        self.in_channels = _positive_int(in_features, "in_features", where)
        self.out_channels = _positive_int(out_features, "out_features", where)
        self.kernel_size = _pair(kernel_size, "kernel_size", 1, where)
        self.stride = _pair(stride, "stride", 1, where)
        self.padding = _pair(padding, "padding", 0, where)
        self.dilation = _pair(dilation, "dilation", 1, where)
        self.groups = _positive_int(groups, "groups", where)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{where}: in_features ({self.in_channels}) and out_features "
                             f"({self.out_channels}) must be divisible by groups ({self.groups})")
        channels = ((self.in_channels, self.out_channels // self.groups) if self._transposed
                    else (self.out_channels, self.in_channels // self.groups))
        self._init_weight((*channels, *self.kernel_size, 1), weight_scale, weight_norm, pre_hook_fx)

    @eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """``N, C, H, W, T`` -> ``N, out, H', W', T`` (time folded into the batch)."""
        self._check_input(input, 5, "N, C, H, W, T")
        n, c, h, w, t = input.shape
        self.output_size((h, w))
        weight = self._weight_for(input)[..., 0]
        op = F.conv_transpose2d if self._transposed else F.conv2d
        # channels-last images: oneDNN's fast layout (about 2x on one thread, no hidden copies in
        # the backward); the output stays channels-last (memory N, T, H', W', C'), which the neuron
        # kernels read as it is or copy once
        images = input.permute(0, 4, 2, 3, 1).reshape(n * t, h, w, c).permute(0, 3, 1, 2)
        if not self._transposed and input.dtype == torch.float32 \
                and images.is_contiguous(memory_format=torch.channels_last) \
                and _events.usable(images, weight, self.groups):
            # spikes from a neuron layer (stored so already): event-driven forward, the same values
            y = _events.SpikeConvolution.apply(images, weight, self.stride, self.padding, self.dilation)
            return y.reshape(n, t, *y.shape[1:]).permute(0, 2, 3, 4, 1)
        images = images.contiguous(memory_format=torch.channels_last)  # at most one copy in all
        y = op(images, weight, stride=self.stride, padding=self.padding, dilation=self.dilation,
               groups=self.groups)
        return y.reshape(n, t, *y.shape[1:]).permute(0, 2, 3, 4, 1)


class Conv(_Convolution):
    """2-D convolution synapse applied at every time step (lava-dl ``slayer.synapse.Conv``).

    Cross-correlation with torch semantics; geometry in ``(H, W)`` order.

    Parameters
    ----------
    in_features, out_features : int
        Input and output channels.
    kernel_size : int or (int, int)
        Kernel ``(kH, kW)``.
    stride, padding, dilation : int or (int, int)
        Geometry, defaults 1, 0, 1.
    groups : int, default 1
        Channel groups (must divide both channel counts).
    weight_scale : float, default 1
        Multiplies torch's default initial weights.
    weight_norm : bool, default False
        Train with weight normalisation (remove with :meth:`disable_weight_norm`).
    pre_hook_fx : callable, optional
        Applied to the weight at every forward.

    Attributes
    ----------
    weight : torch.nn.Parameter
        ``(out, in / groups, kH, kW, 1)``.
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups
        As lava-dl; pairs are ``(H, W)``.
    """


def conv_weight_to_lava(weight: np.ndarray | torch.Tensor) -> np.ndarray:
    """slayer conv weight ``(out, in/groups, kH, kW[, 1])`` -> Lava ``(out, kx, ky, in/groups)``.

    ``weight`` is an array or a tensor (on any device, e.g. a CUDA parameter).

    Both spatial axes are flipped (Lava convolves, torch correlates) and the result
    is transposed ``(0, 3, 2, 1)``. Inputs go ``(C, H, W) -> (x, y, c)`` with
    ``transpose(2, 1, 0)``, and stride/padding/dilation are reversed to ``(x, y)``.
    """
    weight = _to_numpy(weight)  # a tensor on any device, with or without gradient
    if weight.ndim == 5:
        if weight.shape[4] != 1:
            raise ValueError(f"conv_weight_to_lava: expected a unit time kernel, got shape {weight.shape}")
        weight = weight[..., 0]
    if weight.ndim != 4:
        raise ValueError(f"conv_weight_to_lava: expected a 4-D or 5-D weight, got shape {weight.shape}")
    return kernel_to_lava(weight)


def _forward_size(where: str, input_size: IntOrPair, kernel: tuple[int, int], stride: tuple[int, int],
                  padding: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """Floor-mode output ``(H, W)`` of a convolution-like window (no implicit padding)."""
    size = _pair(input_size, "input_size", 1, where)
    out = []
    for i, axis in enumerate("HW"):
        span = dilation[i] * (kernel[i] - 1) + 1
        padded = size[i] + 2 * padding[i]
        if padded < span:
            raise ValueError(f"{where}: input {axis}={size[i]} (+ 2*padding {padding[i]}) is smaller "
                             f"than the dilated kernel ({span})")
        out.append((padded - span) // stride[i] + 1)
    return out[0], out[1]


def _transpose_size(where: str, input_size: IntOrPair, kernel: tuple[int, int], stride: tuple[int, int],
                    padding: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """Output ``(H, W)`` of a transposed convolution: ``(n - 1) * s - 2 * p + d * (k - 1) + 1``."""
    size = _pair(input_size, "input_size", 1, where)
    out = []
    for i, axis in enumerate("HW"):
        full = (size[i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1
        if full <= 2 * padding[i]:
            raise ValueError(f"{where}: no output along {axis}: input {axis}={size[i]} gives {full} "
                             f"positions before padding, not more than 2*padding {2 * padding[i]}")
        out.append(full - 2 * padding[i])
    return out[0], out[1]


class _SharedKernel(_Windowed):
    """Pool/Unpool: one fixed kernel shared by every channel, applied channel by channel."""

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0,
                 dilation: IntOrPair = 1, weight_scale: float = 1, weight_norm: bool = False,
                 pre_hook_fx: PreHook = None) -> None:
        super().__init__()
        where = type(self).__name__
        self.kernel_size = _pair(kernel_size, "kernel_size", 1, where)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", 1, where)
        self.padding = _pair(padding, "padding", 0, where)
        self.dilation = _pair(dilation, "dilation", 1, where)
        # one fixed (not trained) kernel, as lava-dl
        self.weight = nn.Parameter(torch.full((1, 1, *self.kernel_size, 1), float(weight_scale)),
                                   requires_grad=False)
        self._init_hooks(weight_norm, pre_hook_fx)

    @eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """``N, C, H, W, T`` -> ``N, C, H', W', T``: the kernel applied to every ``(n, t, c)`` image."""
        self._check_input(input, 5, "N, C, H, W, T", channels=False)
        n, c, h, w, t = input.shape
        self.output_size((h, w))
        weight = self._weight_for(input)[..., 0]
        images = input.permute(0, 4, 1, 2, 3).reshape(n * t, c, h, w)  # a view of time-major input
        y = self._uniform(images, weight)
        if y is None:
            op = F.conv_transpose2d if self._transposed else F.conv2d
            y = op(images.reshape(n * t * c, 1, h, w), weight, stride=self.stride, padding=self.padding,
                   dilation=self.dilation)
        return y.reshape(n, t, c, *y.shape[2:]).permute(0, 2, 3, 4, 1)

    def _uniform(self, images: torch.Tensor, weight: torch.Tensor) -> torch.Tensor | None:
        """The same result without a convolution when the kernel is one fixed value (the default):
        a window sum times it (pool), or each input copied into its block times it (unpool with
        stride = kernel); None where that does not apply."""
        first = weight.reshape(-1)[0]
        if weight.requires_grad or self.dilation != (1, 1) or not bool((weight == first).all()):
            return None
        if not self._transposed:
            if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
                return None
            sums = F.avg_pool2d(images, self.kernel_size, self.stride, self.padding, divisor_override=1)
            return sums * first
        if self.stride != self.kernel_size or self.padding != (0, 0):
            return None
        k_h, k_w = self.kernel_size
        return images.repeat_interleave(k_h, 2).repeat_interleave(k_w, 3) * first


class Pool(_SharedKernel):
    """Sum pooling with one kernel shared by every channel (lava-dl ``slayer.synapse.Pool``).

    ``y[n, c, :, :, t]`` is the cross-correlation of ``x[n, c, :, :, t]`` with the shared
    kernel (``weight_scale`` times ones unless changed): a weighted window sum per
    channel, computed at every time step. Geometry in ``(H, W)`` order.

    Unlike lava-dl, the output size is torch's floor-mode size
    ``H' = (H + 2 p - d (k - 1) - 1) // s + 1``, the same as :class:`Conv` and the Lava
    ``Pool`` Process, and every channel is pooled on its own. lava-dl folds the channels
    into the depth axis of one 3-D convolution, so windows cross from one channel into
    the next wherever padding or a stride other than the kernel size meets a channel
    boundary, and it zero-pads an input whose size is not a multiple of the kernel by
    ``size % kernel`` rows/columns, which gives other output sizes than the deployed
    network (lava-dl issues 293 and 101). Nothing is padded implicitly here.

    Parameters
    ----------
    kernel_size : int or (int, int)
        Window ``(kH, kW)``.
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (non-overlapping windows).
    padding, dilation : int or (int, int)
        Defaults 0 and 1.
    weight_scale : float, default 1
        Value of every kernel tap.
    weight_norm : bool, default False
        Weight-normalise the (fixed) kernel, as lava-dl allows.
    pre_hook_fx : callable, optional
        Applied to the weight at every forward (e.g. the 8-bit quantizer).

    Attributes
    ----------
    weight : torch.nn.Parameter
        ``(1, 1, kH, kW, 1)``, ``requires_grad=False``.
    kernel_size, stride, padding, dilation : tuple of int
        ``(H, W)`` pairs. Pooling is channel-agnostic: there are no channel attributes.
    """



class ConvTranspose(_Convolution):
    """2-D transposed convolution synapse at every time step (lava-dl ``slayer.synapse.ConvTranspose``).

    torch's ``conv_transpose2d`` semantics without output padding; geometry in
    ``(H, W)`` order. Output size ``H' = (H - 1) s - 2 p + d (k - 1) + 1``.

    Parameters
    ----------
    in_features, out_features : int
        Input and output channels.
    kernel_size : int or (int, int)
        Kernel ``(kH, kW)``.
    stride, padding, dilation : int or (int, int)
        Geometry, defaults 1, 0, 1.
    groups : int, default 1
        Channel groups (must divide both channel counts).
    weight_scale : float, default 1
        Multiplies torch's default initial weights.
    weight_norm : bool, default False
        Train with weight normalisation (``dim=0``, the input channel, as lava-dl).
    pre_hook_fx : callable, optional
        Applied to the weight at every forward.

    Attributes
    ----------
    weight : torch.nn.Parameter
        ``(in, out / groups, kH, kW, 1)`` (torch's ``ConvTranspose3d`` layout).
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups
        As lava-dl; pairs are ``(H, W)``.
    """

    _transposed = True


class Unpool(_SharedKernel):
    """Unpooling: a transposed sum pool with one shared kernel (lava-dl ``slayer.synapse.Unpool``).

    Every channel is transposed-convolved (``conv_transpose2d``, no output padding) with
    the shared kernel: with the default ``stride = kernel_size`` every input is copied,
    times the kernel, into its own ``kH x kW`` block. Output size
    ``H' = (H - 1) s - 2 p + d (k - 1) + 1``. Unlike lava-dl (which folds the channels
    into the depth axis) the channels are kept apart explicitly.

    Parameters
    ----------
    kernel_size : int or (int, int)
        Kernel ``(kH, kW)``.
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding, dilation : int or (int, int)
        Defaults 0 and 1.
    weight_scale : float, default 1
        Value of every kernel tap.
    weight_norm : bool, default False
        Weight-normalise the (fixed) kernel.
    pre_hook_fx : callable, optional
        Applied to the weight at every forward.

    Attributes
    ----------
    weight : torch.nn.Parameter
        ``(1, 1, kH, kW, 1)``, ``requires_grad=False``.
    kernel_size, stride, padding, dilation : tuple of int
        ``(H, W)`` pairs (no channel attributes).
    """

    _transposed = True


def conv_transpose_weight_to_lava(weight: np.ndarray) -> np.ndarray:
    """ConvTranspose weight ``(in, out/groups, kH, kW[, 1])`` -> Lava ConvT ``(in, kx, ky, out/groups)``.

    The same flip and transpose as :func:`conv_weight_to_lava`: the Lava ``ConvT`` is the
    adjoint of the Lava ``Conv`` with the same array, as ``conv_transpose2d`` is that of
    ``conv2d``.
    """
    try:
        return conv_weight_to_lava(weight)
    except ValueError as err:
        raise ValueError(str(err).replace("conv_weight_to_lava", "conv_transpose_weight_to_lava")) from None


def pool_weight_to_lava(weight: np.ndarray | torch.Tensor) -> np.ndarray:
    """Pool weight ``(1, 1, kH, kW[, 1])`` (or ``(kH, kW)``) -> the Lava Pool kernel ``(kx, ky)``.

    Flipped and transposed like :func:`conv_weight_to_lava` (the Lava Pool convolves
    like the Lava Conv).
    """
    weight = _to_numpy(weight)  # a tensor on any device, with or without gradient
    if weight.ndim in (4, 5) and weight.shape[:2] == (1, 1) and (weight.ndim == 4 or weight.shape[4] == 1):
        weight = weight.reshape(weight.shape[2:4])
    if weight.ndim != 2:
        raise ValueError(f"pool_weight_to_lava: expected a (1, 1, kH, kW[, 1]) or (kH, kW) weight, "
                         f"got shape {weight.shape}")
    return kernel_to_lava(weight)


def unpool_weight_to_lava(weight: np.ndarray) -> np.ndarray:
    """Unpool weight ``(1, 1, kH, kW[, 1])`` -> the Lava Unpool kernel ``(kx, ky)``.

    The same conversion as :func:`pool_weight_to_lava`: the Lava Unpool is the adjoint of
    the Lava Pool with the same kernel.
    """
    return pool_weight_to_lava(weight)
