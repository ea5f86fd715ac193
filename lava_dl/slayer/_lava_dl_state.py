"""Loading state dicts that lava-dl 0.6 saved (``torch.save(net.state_dict())`` of its blocks) into
the same network built with lava_dl, strictly: the entries whose names or forms differ here are
translated while they load (load pre-hooks, registered by every block and neuron).

* ``neuron.delta.threshold`` (lava-dl's sigma-delta encoder) is ``neuron.delta_threshold`` here;
  lava-dl's ``Output`` block kept an encoder and a norm it never applied, whose entries are dropped
  (the neuron's ``lava_dl_unused_state`` prefixes).
* ``neuron.bias`` (lava-dl's sigma-delta ``set_bias``; zero unless set, and never exported) is
  dropped when zero; a nonzero one is an error, as no lava_dl neuron has that bias.
* ``spike_state`` (an unused buffer of lava-dl's recurrent blocks) is dropped.
* ``synapse.*`` of lava-dl's ``KWTA`` is the block's ``input_synapse`` here (and the other way
  round for an abstract block whose subclass named its input synapse ``synapse``).
* ``mask`` (lava-dl kept a Dense block's connectivity mask as a buffer) is copied into the block's
  mask; a block built without one reports an error.
* A sigma-delta ``Input`` block that lava-dl built without ``weight``/``bias`` saved neither; the
  block gets the identity transform (weight 1, bias 0) that lava-dl applied. (A CUBA ``Input``'s
  entries carry no lava-dl name to tell them apart: load those with ``strict=False``, the block
  keeping its own transform.)
* ``synapse.weight_g``/``weight_v`` (lava-dl's ``torch.nn.utils.weight_norm``) load through
  torch's own compatibility hook of the parametrized weight norm.
"""

from __future__ import annotations

import torch
from torch import nn


def _owns(module: nn.Module, name: str) -> bool:
    """Whether ``module`` holds a parameter or buffer ``name`` (one registered as ``None`` does not count)."""
    return module._parameters.get(name) is not None or module._buffers.get(name) is not None


def neuron_pre_hook(neuron: nn.Module, state_dict: dict, prefix: str, local_metadata, strict: bool,
                    missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
    """Translate a neuron's lava-dl entries (see the module)."""
    for unused in getattr(neuron, "lava_dl_unused_state", ()):
        for key in [k for k in state_dict if k.startswith(prefix + unused)]:
            del state_dict[key]
    old = prefix + "delta.threshold"
    if old in state_dict and _owns(neuron, "delta_threshold"):
        value = state_dict.pop(old)
        target = neuron.delta_threshold
        state_dict[prefix + "delta_threshold"] = (value.reshape(target.shape)
                                                  if value.numel() == target.numel() else value)
    key = prefix + "bias"
    if key in state_dict and not _owns(neuron, "bias"):
        value = state_dict.pop(key)
        if torch.count_nonzero(value):
            first = value.flatten()[:4].tolist()
            error_msgs.append(f"{key}: lava-dl's sigma-delta set_bias bias is nonzero ({first}...), which no "
                              "lava_dl neuron holds (lava-dl never exported it either)")


def block_pre_hook(block: nn.Module, state_dict: dict, prefix: str, local_metadata, strict: bool,
                   missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
    """Translate a block's lava-dl entries (see the module)."""
    if not _owns(block, "spike_state"):
        state_dict.pop(prefix + "spike_state", None)
    # a recurrent block's input synapse: lava-dl's KWTA named it ``synapse``, its Recurrent
    # ``input_synapse``; lava_dl's blocks name it ``input_synapse``, an abstract block what its
    # subclass chose
    for saved, here in (("synapse.", "input_synapse."), ("input_synapse.", "synapse.")):
        if block._modules.get(here[:-1]) is not None and block._modules.get(saved[:-1]) is None:
            for key in [k for k in state_dict if k.startswith(prefix + saved)]:
                state_dict[prefix + here + key[len(prefix + saved):]] = state_dict.pop(key)
    key = prefix + "mask"
    if key in state_dict and not _owns(block, "mask"):
        mask = state_dict.pop(key)
        ours = getattr(block, "mask", None)
        if ours is None:
            error_msgs.append(f"{key}: the saved block has a connectivity mask; build this one with mask=")
        elif mask.numel() != ours.numel():
            error_msgs.append(f"{key}: the saved mask has {mask.numel()} entries, this block's "
                              f"{ours.numel()}")
        else:
            with torch.no_grad():
                ours.copy_(mask.reshape(ours.shape))
    # torch calls the hooks with strict=True whatever the load's strictness: only a state dict that
    # names its entries as lava-dl does (its sigma-delta threshold) gets the identity transform
    if (_owns(block, "weight") and _owns(block, "bias") and not hasattr(block, "synapse")
            and prefix + "neuron.delta.threshold" in state_dict
            and prefix + "weight" not in state_dict and prefix + "bias" not in state_dict):
        state_dict[prefix + "weight"] = torch.ones_like(block.weight)
        state_dict[prefix + "bias"] = torch.zeros_like(block.bias)
