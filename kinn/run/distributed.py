"""Data-parallel training on `torch.distributed`, as launched by `torchrun`.

    torchrun --nproc_per_node=4 -m kinn solve poisson2d --solver kan
    torchrun --nnodes=2 --node_rank=0 --rdzv_endpoint=HOST:29500 --nproc_per_node=8 -m kinn solve ...

Each rank trains on its share of every point set (every world-th point, so shares differ by at most one
point); after each backward pass the gradients and the loss are averaged over the ranks, so every rank
takes the same Adam or L-BFGS step and the parameters stay identical. When a family hook changes the
parameters (a KAN grid refit on the local points), rank 0's new parameters are broadcast. Every rank
scores the same evaluation points; only rank 0 writes the run directory and shows progress. NCCL on
GPUs, gloo on CPUs; a collective that waits longer than `train.dist_timeout` seconds (a rank died) ends
the run with an error instead of hanging.
"""
from __future__ import annotations

import datetime
import os

import numpy as np
import torch
import torch.distributed as dist

from kinn.errors import KinnError


class Group:
    """This process's place in the run: rank, world size, and the collectives the trainer needs."""

    def __init__(self, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, points: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """This rank's share of each point set (normals follow their points)."""
        return points if self.world == 1 else {k: v[self.rank :: self.world] for k, v in points.items()}

    def average(self, loss: torch.Tensor, params: list[torch.nn.Parameter]) -> torch.Tensor:
        """Average the gradients and the loss over the ranks, in one all-reduce; returns the mean loss."""
        if self.world == 1:
            return loss
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads] + [loss.detach().reshape(1)])  # (n_params + 1,)
        _collective(dist.all_reduce, flat)
        flat /= self.world
        offset = 0
        for p, g in zip(params, grads):
            p.grad = flat[offset : offset + g.numel()].view_as(g).clone()
            offset += g.numel()
        return flat[-1]

    def broadcast(self, params) -> None:
        """Rank 0's parameter values to every rank (after a hook refitted them on local points)."""
        if self.world > 1:
            for p in params:
                _collective(dist.broadcast, p.data, 0)


def _collective(op, *args):
    try:
        op(*args)
    except RuntimeError as e:  # gloo and NCCL report a dead peer as a timeout or a closed connection
        raise KinnError(f"distributed run: a collective failed on rank {dist.get_rank()} ({str(e).splitlines()[0]}); "
                        "another rank probably died, see its error") from None


def setup(timeout: float, device: torch.device) -> Group:
    """Join the process group that torchrun describes in the environment (WORLD_SIZE > 1), else a group of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Group()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
    return Group(dist.get_rank(), dist.get_world_size())


def local_device(device: torch.device) -> torch.device:
    """On CUDA, each rank takes the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ and device.index is None:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device
