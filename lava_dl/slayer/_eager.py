"""lava_dl's layers under ``torch.compile``: they run eagerly, with eager mode's results.

Their forward passes run Numba kernels on numpy views of the tensors (numba-cuda on a GPU) and
host-side logic (input checks, memory-layout choices) that TorchDynamo cannot trace. So every
lava_dl layer's ``forward``, every host-side helper a user's own layer may call (the input checks
of :mod:`lava_dl.slayer.checks`) (:func:`eager`) and every autograd Function that runs a kernel
(:class:`KernelFunction`) is a graph break: ``torch.compile(model)`` compiles the user's code
around them (losses, their own torch layers) and calls ours as eager mode does, so outputs and
gradients are eager mode's, bit for bit, and compiling costs little. The disabled forms are made
while Dynamo first traces each function: eager-mode use never imports ``torch._dynamo``.
"""

from __future__ import annotations

import functools
import inspect
import typing as ty

import torch

_F = ty.TypeVar("_F", bound=ty.Callable)

#: What Dynamo reports for these graph breaks (``torch.compile(..., fullgraph=True)`` raises on them).
REASON = ("lava_dl's layers run Numba kernels and host-side checks eagerly, between compiled graphs: "
          "compile without fullgraph=True")

# (older torch releases' torch.compiler.disable takes no reason)
_DISABLE_OPTIONS = ({"reason": REASON} if "reason" in inspect.signature(torch.compiler.disable).parameters
                    else {})
_compiling = getattr(torch.compiler, "is_compiling", lambda: False)
#: ``{function: torch.compiler.disable(function)}``, made while Dynamo first traces a call
_DISABLED: dict = {}


def _disabled(function: ty.Callable) -> ty.Callable:
    """``torch.compiler.disable(function)``, made when first needed: only while Dynamo traces, so that
    importing lava_dl does not import ``torch._dynamo`` (over a second; Dynamo traces this call)."""
    wrapped = _DISABLED.get(function)
    if wrapped is None:
        wrapped = _DISABLED[function] = torch.compiler.disable(function, **_DISABLE_OPTIONS)
    return wrapped


def eager(forward: _F) -> _F:
    """Decorate a layer's ``forward`` (or a host-side helper) to run eagerly under ``torch.compile``:
    in eager mode the function itself is called; while Dynamo traces, its disabled form (a graph
    break)."""

    @functools.wraps(forward)
    def wrapper(*args, **kwargs):
        if _compiling():
            return _disabled(forward)(*args, **kwargs)
        return forward(*args, **kwargs)

    return ty.cast(_F, wrapper)


def _function_apply(cls, *args, **kwargs):
    return torch.autograd.Function.apply.__func__(cls, *args, **kwargs)


class KernelFunction(torch.autograd.Function):
    """A ``torch.autograd.Function`` whose forward and backward run compiled kernels.

    Each call is a graph break under ``torch.compile`` (see the module), so user code that calls it
    directly (a neuron written on lava-dl's extension API, say) compiles too. Its ``backward`` is
    first-order only (:func:`_first_order_only`): the kernels' adjoints are not themselves
    differentiable, so a backward pass that builds a graph for a gradient of a gradient raises
    instead of silently treating them as constants.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        backward = cls.__dict__.get("backward")
        if isinstance(backward, staticmethod):
            cls.backward = staticmethod(_first_order_only(backward.__func__, cls.__name__))

    @classmethod
    def apply(cls, *args, **kwargs):
        if _compiling():
            return _disabled(_function_apply)(cls, *args, **kwargs)
        return super().apply(*args, **kwargs)


def _first_order_only(backward: _F, name: str) -> _F:
    """``backward`` that raises where a graph of the backward pass is being built (``create_graph=True``).

    The kernels' adjoints depend on the forward's inputs and parameters (the surrogate at the membrane
    potential) but are computed outside autograd, so a gradient of these gradients would silently miss
    those terms; ``torch.autograd.function.once_differentiable`` only guards the case where the incoming
    gradients require grad, and a delayed error node would be skipped by ``torch.autograd.grad`` for
    inputs reached another way (a weight's path through its synapse). So the error is raised at once.
    """
    message = (f"lava_dl's {name} has no second derivative: its backward pass runs compiled kernels "
               f"outside autograd, so a backward pass with create_graph=True (a gradient of a gradient: "
               f"gradient penalties, MAML, Hessians) through it is not supported")

    def wrapper(ctx, *grads):
        if torch.is_grad_enabled():  # (autograd runs backward passes in grad mode only with create_graph)
            raise RuntimeError(message)
        return backward(ctx, *grads)

    return ty.cast(_F, functools.wraps(backward)(wrapper))
