"""Event-driven forward of a convolution synapse on binary spikes (training, CPU).

A convolution whose input holds only 0s and 1s (the spikes of a non-graded neuron)
and whose weights lie on a coarse binary grid (the neurons' 8-bit quantizer puts
them there) can be computed by adding, for each input spike, the kernel taps it
reaches to the output: far less work than a dense convolution at the event rates
of a spiking network. Every partial sum is then a whole number of grid steps below
``2**24`` (:func:`exact_weights`), so the result is exact in any summation order:
the same float32 values, bit for bit, as the dense ``conv2d`` gives.

:class:`SpikeConvolution` uses it for the forward pass and torch's own
``convolution_backward`` for the gradients (the same call, with the same tensors, as
``conv2d``'s autograd node), so the gradients do not change either. Anything else
(a non-binary input, weights off the grid, too many events) falls back to ``conv2d``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from lava_dl.core.fixed_point import jit
from lava_dl.core.parallel import Blockwise
from lava_dl.slayer import _memory
from lava_dl.slayer._eager import KernelFunction

#: Input channels of the event path: at least ``MIN_CHANNELS``, at most ``MAX_CHANNELS``
#: (with its output from the buffer pool, the event path beats oneDNN even on a 2-channel
#: input at 10 % spikes: 13 vs 16 ms for the benchmark's first layer).
MIN_CHANNELS, MAX_CHANNELS = 1, 64
#: The event path gives up when the images so far average more than this fraction of active
#: inputs (the dense convolution is faster there: the two cost the same near 14 % on one
#: AVX-512 core, both writing into reused memory). Single dense images do not count: redoing a
#: whole batch densely for one of them costs far more than that image's events.
MAX_RATE = 0.14
#: Images' worth of events the running average may be ahead by before the event path gives up.
RATE_SLACK_IMAGES = 8
#: Status codes of :func:`conv_events`.
DONE, NOT_BINARY, TOO_DENSE = 0, 1, 2


@intrinsic
def _trailing_zeros(typingctx, x):
    """Count of trailing zero bits of a non-zero uint64 (LLVM ``cttz``)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


@jit
def conv_plan(height, width, channels, k_h, k_w, s_h, s_w, p_h, p_w, d_h, d_w, out_h, out_w):
    """Index tables of :func:`conv_events` for one geometry.

    Returns ``(targets, class_taps, class_tap_count, keys, pixels)``: ``targets[j, pixel]``
    is the output pixel that tap ``j`` of an input pixel reaches (-1: none); the input
    pixels fall into ``s_h * s_w`` classes (their position modulo the stride), and
    ``class_taps[cls, :class_tap_count[cls]]`` are the taps that can reach an output from
    class ``cls``; ``keys[i]`` and ``pixels[i]`` are the event list (class, channel) and the
    pixel of input element ``i`` (in ``(H, W, C)`` order).
    """
    taps = k_h * k_w
    targets = np.full((taps, height * width), -1, np.int32)
    for h in range(height):
        for kh in range(k_h):
            p = h + p_h - kh * d_h
            if p < 0 or p % s_h != 0 or p // s_h >= out_h:
                continue
            for w in range(width):
                for kw in range(k_w):
                    q = w + p_w - kw * d_w
                    if q < 0 or q % s_w != 0 or q // s_w >= out_w:
                        continue
                    targets[kh * k_w + kw, h * width + w] = (p // s_h) * out_w + q // s_w
    classes = s_h * s_w
    class_taps = np.zeros((classes, taps), np.int64)
    class_tap_count = np.zeros(classes, np.int64)
    for cls in range(classes):
        a, b = cls // s_w, cls % s_w
        for j in range(taps):
            if (a + p_h - (j // k_w) * d_h) % s_h == 0 and (b + p_w - (j % k_w) * d_w) % s_w == 0:
                class_taps[cls, class_tap_count[cls]] = j
                class_tap_count[cls] += 1
    size = height * width * channels
    keys = np.empty(size, np.int32)
    pixels = np.empty(size, np.int32)
    for i in range(size):
        pixel = i // channels
        h, w = pixel // width, pixel % width
        keys[i] = ((h % s_h) * s_w + w % s_w) * channels + i % channels
        pixels[i] = pixel
    return targets, class_taps, class_tap_count, keys, pixels


@jit
def conv_events(x, weight, targets, class_taps, class_tap_count, keys, pixels, max_events, out):
    """Convolution of binary images by scattering each input spike's taps.

    ``x`` is ``(images, H * W * C)`` (each image channels-last), ``weight`` is
    ``(taps, C, O)``, ``out`` is ``(images, H' * W' * O)`` (channels-last); the tables come
    from :func:`conv_plan`. Per image: the active inputs are listed by (pixel class,
    channel), then each list adds the weight row of every tap its class reaches to the
    output pixels the tap hits. Returns :data:`DONE`, or :data:`NOT_BINARY` / :data:`TOO_DENSE`
    (``out`` is then incomplete) when an input is neither 0 nor 1 / the images so far have more
    than ``max_events`` active inputs on average, beyond :data:`RATE_SLACK_IMAGES` images' worth.
    """
    images, size = x.shape
    channels, outs = weight.shape[1], weight.shape[2]
    lists = class_tap_count.size * channels
    words = (size + 7) // 8
    flags = np.zeros(words * 8, np.uint8)
    flag_words = flags.view(np.uint64)
    events = np.empty((lists, size // channels), np.int32)
    counts = np.empty(lists, np.int64)
    total = 0
    for n in range(images):
        xi = x[n]
        bad = 0
        active = 0
        for i in range(size):
            v = xi[i]
            flags[i] = v != 0
            active += v != 0
            bad += (v != 0) & (v != 1)
        if bad:
            return NOT_BINARY
        total += active
        if total > max_events * (n + 1 + RATE_SLACK_IMAGES):
            return TOO_DENSE
        counts[:] = 0
        for q in range(words):
            m = flag_words[q]
            while m != 0:
                i = q * 8 + (_trailing_zeros(m) >> np.uint64(3))
                m &= m - np.uint64(1)
                key = keys[i]
                events[key, counts[key]] = pixels[i]
                counts[key] += 1
        o = out[n]
        o[:] = 0.0
        for key in range(lists):
            cls, c = key // channels, key % channels
            listed = events[key, :counts[key]]
            for a in range(class_tap_count[cls]):
                j = class_taps[cls, a]
                row = weight[j, c]
                hits = targets[j]
                for e in range(listed.size):
                    target = hits[listed[e]]
                    if target >= 0:
                        base = target * outs
                        for k in range(outs):
                            o[base + k] += row[k]
    return DONE


#: :func:`conv_events` over ``torch.get_num_threads()`` threads, on disjoint ranges of images (the
#: same values: each image is computed by itself); the status is the largest of the ranges'.
conv_events_blocks = Blockwise(conv_events, "x", "out")


def exact_weights(weight: torch.Tensor) -> bool:
    """Whether any sum of a subset of each output channel's weights is exact in float32.

    True if the weights are whole multiples of some ``2**-e`` (``e`` <= 40) and each output
    channel's absolute weights add up to at most ``2**24`` such steps: every partial sum
    of a convolution of binary inputs is then representable, whatever the order.
    """
    w = weight.detach()
    if w.dtype != torch.float32 or not bool(torch.isfinite(w).all()):
        return False
    for e in range(41):
        scaled = w * float(2.0**e)
        if torch.equal(scaled, torch.round(scaled)):
            return bool(scaled.abs().reshape(w.shape[0], -1).sum(1).max() <= float(1 << 24))
    return False


_PLANS: dict[tuple, tuple] = {}


def _plan(key: tuple) -> tuple:
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) > 64:
            _PLANS.clear()
        plan = _PLANS[key] = conv_plan(*key)
    return plan


def usable(images: torch.Tensor, weight: torch.Tensor, groups: int) -> bool:
    """Whether :class:`SpikeConvolution` may run the event path on ``images`` (``N, C, H, W``)."""
    return (groups == 1 and images.dtype == torch.float32 and weight.dtype == torch.float32
            and images.device.type == "cpu" and MIN_CHANNELS <= images.shape[1] <= MAX_CHANNELS
            and images.is_contiguous(memory_format=torch.channels_last) and images.numel() > 0
            and exact_weights(weight))


class SpikeConvolution(KernelFunction):
    """``conv2d`` of channels-last binary images, forward by events (:func:`conv_events`).

    ``forward(images, weight, stride, padding, dilation)``: ``images`` is ``N, C, H, W``
    stored channels-last, ``weight`` is ``(O, C, kH, kW)`` and passes :func:`exact_weights`.
    The output is the channels-last tensor ``conv2d`` gives, with the same values; when the
    input is not binary (or too dense) ``conv2d`` itself computes it. The backward pass is
    ``conv2d``'s: ``convolution_backward`` on the saved input and weight.
    """

    @staticmethod
    def forward(ctx, images, weight, stride, padding, dilation):
        ctx.save_for_backward(images, weight)
        ctx.geometry = (list(stride), list(padding), list(dilation))
        n, c, h, w = images.shape
        o, _, k_h, k_w = weight.shape
        with torch.no_grad(), torch.profiler.record_function("spike_conv2d"):
            out_h = (h + 2 * padding[0] - dilation[0] * (k_h - 1) - 1) // stride[0] + 1
            out_w = (w + 2 * padding[1] - dilation[1] * (k_w - 1) - 1) // stride[1] + 1
            # the output from the kernels' buffer pool (no fresh pages to fault in at every call),
            # channels-last; permuted in numpy so that it is no torch view
            stored = _memory.empty((n, out_h, out_w, o), np.float32)
            plan = _plan((h, w, c, k_h, k_w, *stride, *padding, *dilation, out_h, out_w))
            x = images.detach().permute(0, 2, 3, 1).numpy().reshape(n, -1)
            taps = weight.detach().permute(2, 3, 1, 0).reshape(k_h * k_w, c, o).contiguous().numpy()
            status = max(conv_events_blocks(x, taps, *plan, int(MAX_RATE * h * w * c), stored.reshape(n, -1),
                                            threads=torch.get_num_threads()))
            if status == DONE:
                out = torch.from_numpy(stored.transpose(0, 3, 1, 2))
            else:
                out = F.conv2d(images, weight, stride=stride, padding=padding, dilation=dilation)
        return out

    @staticmethod
    def backward(ctx, grad):
        images, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.geometry
        mask = [bool(ctx.needs_input_grad[0]), bool(ctx.needs_input_grad[1]), False]
        grad_images, grad_weight, _ = torch.ops.aten.convolution_backward(
            grad, images, weight, None, stride, padding, dilation, False, [0, 0], 1, mask)
        return grad_images, grad_weight, None, None, None


def linear_usable(x: torch.Tensor, weight: torch.Tensor, binary: bool) -> bool:
    """Whether :class:`BinaryLinear` applies: ``x`` is a CPU float32 ``(N, T, K)`` tensor stored so
    (time-major activations) holding only 0s and 1s (``binary``: its producer marked it so, see
    :func:`lava_dl.slayer.checks.marked_binary`), and ``weight`` passes :func:`exact_weights`."""
    return (binary and x.dtype == torch.float32 and weight.dtype == torch.float32 and x.device.type == "cpu"
            and x.dim() == 3 and x.is_contiguous() and x.numel() > 0 and exact_weights(weight))


class BinaryLinear(KernelFunction):
    """``F.linear(x, weight)`` of a binary ``(N, T, K)`` input, ``weight`` ``(O, K)`` on a grid
    (:func:`linear_usable`).

    Every output is then a sum of a subset of a weight row, exact in any order, so the
    forward may take the faster product ``weight @ x^T`` (a wide output instead of ten
    columns: about 1.6x on one core for 8192 -> 10) and still give ``F.linear``'s values bit
    for bit. The backward makes the very calls of ``F.linear``'s autograd (``grad @ weight``
    and ``grad^T @ x`` on the same strides; the first into a pooled buffer), so the
    gradients do not change either.
    """

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        n, steps, k = x.shape
        with torch.no_grad():
            out = torch.mm(weight, x.reshape(n * steps, k).t()).t().contiguous()
        return out.reshape(n, steps, weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        n, steps, k = x.shape
        rows = grad.reshape(n * steps, weight.shape[0])
        grad_x = None
        if ctx.needs_input_grad[0]:  # into a pooled buffer (no fresh pages to fault in)
            grad_x = torch.from_numpy(_memory.empty((n * steps, k), np.float32))
            torch.mm(rows.to(weight.dtype), weight, out=grad_x)
            grad_x = grad_x.reshape(n, steps, k)
        grad_weight = torch.mm(rows.t(), x.reshape(n * steps, k)) if ctx.needs_input_grad[1] else None
        return grad_x, grad_weight
