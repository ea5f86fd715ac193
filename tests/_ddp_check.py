"""DistributedDataParallel (gloo, CPU) on a CUBA block network: two spawned ranks, one step each.

Run as a script by ``tests/test_multi_device.py`` (spawned ranks, one torch thread each: a forked
child whose parent has used torch's OpenMP threads can hang in its first parallel region, a torch
limitation that has nothing to do with lava_dl). Each rank takes half of the batch; the script
checks that every rank's output equals the single-process output of its half exactly (integer
neuron model), and that the all-reduced gradients equal the single-process gradients of the whole
batch divided by the world size, to float32 rounding. Prints ``ddp ok`` on success.
"""

from __future__ import annotations

import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD = 2
PARAMS = dict(threshold=0.5, current_decay=0.3, voltage_decay=0.1, requires_grad=True)


def network() -> torch.nn.Module:
    from lava_dl import slayer

    torch.manual_seed(0)
    return torch.nn.Sequential(slayer.block.cuba.Dense(PARAMS, 20, 30, weight_scale=4),
                               slayer.block.cuba.Dense(PARAMS, 30, 10, weight_scale=4))


def batch() -> torch.Tensor:
    return (torch.rand(8, 20, 30, generator=torch.Generator().manual_seed(1)) < 0.3).float()


def rank_main(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        model = torch.nn.parallel.DistributedDataParallel(network())
        out = model(batch().chunk(WORLD)[rank])
        out.sum().backward()
        torch.save({"out": out.detach(), "grads": [p.grad for p in model.parameters()]},
                   os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()
    except BaseException:
        dist.destroy_process_group()
        raise
    # Every collective has completed and the results are saved. gloo's teardown at exit can abort a
    # rank ("terminate called without an active exception", about one run in five on a loaded
    # machine), so the rank leaves without it.
    sys.stdout.flush()
    os._exit(0)


def main() -> int:
    torch.set_num_threads(1)
    out_dir = tempfile.mkdtemp()
    mp.spawn(rank_main, args=(os.path.join(out_dir, "init"), out_dir), nprocs=WORLD, join=True)
    reference = network()
    ref_out = reference(batch())
    ref_out.sum().backward()
    names = [name for name, _ in reference.named_parameters()]
    weights = [p for n, p in reference.named_parameters() if n.endswith("weight")]
    if not all(float(p.grad.abs().max()) > 0 for p in weights):
        print("the reference weight gradients are zero: nothing to compare")
        return 1
    for rank in range(WORLD):
        got = torch.load(os.path.join(out_dir, f"rank{rank}.pt"))
        if not torch.equal(got["out"], ref_out.detach().chunk(WORLD)[rank]):
            print(f"rank {rank}: output differs from the single-process output of its half")
            return 1
        for name, grad, param in zip(names, got["grads"], reference.parameters()):
            expected = param.grad / WORLD  # DDP averages; the loss is a sum over the batch
            atol = 1e-6 * float(expected.abs().max())
            if grad is None or not torch.allclose(grad, expected, rtol=1e-5, atol=atol):
                print(f"rank {rank}: gradient of {name} differs from the single-process gradient / {WORLD}")
                return 1
    print("ddp ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
