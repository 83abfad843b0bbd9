"""Data-parallel training under torchrun: this process's rank, sums over the ranks, and a digest of the
weights that shows the ranks stayed identical."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class _Dist:
    """This process's place under torchrun (rank 0 of 1 without it); ``local_rank`` picks its GPU."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """True on rank 0, the one that logs, prints and writes checkpoints."""
        return self.rank == 0


def _init_distributed(device: str) -> _Dist:
    """Join torchrun's process group (nccl on CUDA, each rank on its ``LOCAL_RANK``'s GPU; gloo otherwise)
    when ``WORLD_SIZE`` > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return _Dist()
    import torch.distributed as dist

    cuda = torch.device(device).type == "cuda"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:  # "cuda" then means this rank's GPU (model, batches and DDP's device_ids alike)
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), local_rank)


def _all_sum(values: list[float], d: _Dist) -> list[float]:
    """``values`` summed over the ranks (in float64; returned unchanged on a single process)."""
    if d.world == 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def _digest(model: nn.Module) -> str:
    """SHA-256 (hex) of the parameters (BatchNorm statistics excluded: each rank keeps its own last
    update)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _finish_distributed(model: nn.Module, out, d: _Dist) -> None:
    """Write ``OUT/rank<r>_final.json`` with this rank's digest (so that the ranks' identity can be
    checked), wait for every rank and leave the process group. Nothing on a single process."""
    if d.world == 1:
        return
    import json

    import torch.distributed as dist

    digest = {"rank": d.rank, "params_sha256": _digest(model)}
    (out / f"rank{d.rank}_final.json").write_text(json.dumps(digest))
    dist.barrier()
    dist.destroy_process_group()
