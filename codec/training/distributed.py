"""Process placement for the trainer: device choice, the ``torchrun`` process group, batch transfer."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["DistContext", "setup_distributed", "to_device"]


@dataclass
class DistContext:
    """Where this process runs: its rank among ``world_size`` processes and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def all_true(self, flag: bool) -> bool:
        if not self.distributed:
            return flag
        t = torch.tensor([1 if flag else 0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())


def setup_distributed(device: Literal["auto", "cpu", "cuda"]) -> DistContext:
    """Pick this process's device and join the ``torchrun`` process group (``trainer.device`` is ``device``).

    With ``WORLD_SIZE > 1`` and no group yet, initialises one (NCCL on CUDA, gloo on CPU)
    and marks it as owned, so the caller destroys it when done.
    """
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("trainer.device is 'cuda' but CUDA is not available here")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    owns = False
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    elif world_size > 1:
        # env:// reads MASTER_ADDR/PORT, RANK, WORLD_SIZE set by torchrun (multi-node too).
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
        owns = True
    return DistContext(rank, world_size, local_rank, chosen, owns)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors in (nested) tensors / dicts / lists / tuples / dataclasses to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    if is_dataclass(batch) and not isinstance(batch, type):
        changes = {
            f.name: to_device(getattr(batch, f.name), device) for f in fields(batch) if f.init
        }
        return replace(batch, **changes)
    return batch
