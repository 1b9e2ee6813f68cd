"""Deterministic, rank-sharded data order of the trainer.

Datasets are indexed by keys ``(item_index, item_seed)``: the batch of step ``s`` on rank
``r`` is a pure function of ``(seed, s, r, world_size, len(dataset))``, and datasets draw
any randomness (crops, gains) from ``item_seed``, so a resumed run reads exactly the
batches an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["ItemKey", "StepBatchSampler", "mix_seed", "validation_keys"]

ItemKey = tuple[int, int]  # (item_index, item_seed)


def mix_seed(*values: int | str) -> int:
    """A 63-bit seed from a tuple of values, stable across processes and platforms."""
    text = ",".join(str(v) for v in values).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


class StepBatchSampler:
    """Batch sampler yielding the keys of this rank's batch for each step in a range.

    Global position ``p = step * batch_size * world_size + rank * batch_size + j`` reads item
    ``perm_e[p % N]`` of epoch ``e = p // N``, where ``perm_e`` is a permutation seeded by
    ``(seed, e)``; its item seed is derived from ``(seed, e, index)`` so crops differ between
    epochs. Starting at ``start_step`` continues exactly where a run stopped.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
        end_step: int = 0,
    ) -> None:
        if num_items < 1:
            raise ValueError("the training dataset is empty")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.start_step, self.end_step = start_step, end_step
        self._perms: dict[int, Tensor] = {}

    def _perm(self, epoch: int) -> Tensor:
        if epoch not in self._perms:
            if len(self._perms) >= 2:  # a batch spans at most two epochs
                self._perms.pop(min(self._perms))
            gen = torch.Generator().manual_seed(mix_seed(self.seed, "epoch", epoch))
            self._perms[epoch] = torch.randperm(self.num_items, generator=gen)
        return self._perms[epoch]

    def keys(self, step: int) -> list[ItemKey]:
        """The ``(item_index, item_seed)`` keys of this rank's batch at ``step``."""
        first = (step * self.world_size + self.rank) * self.batch_size
        out = []
        for pos in range(first, first + self.batch_size):
            epoch, offset = divmod(pos, self.num_items)
            index = int(self._perm(epoch)[offset])
            out.append((index, mix_seed(self.seed, "item", epoch, index)))
        return out

    def __iter__(self) -> Iterator[list[ItemKey]]:
        for step in range(self.start_step, self.end_step):
            yield self.keys(step)

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)


def validation_keys(
    num_items: int, batch_size: int, num_batches: int, seed: int
) -> list[list[ItemKey]]:
    """A fixed subset of the validation set (same items and seeds at every validation)."""
    gen = torch.Generator().manual_seed(mix_seed(seed, "valid"))
    order = torch.randperm(num_items, generator=gen)[: batch_size * num_batches].tolist()
    keys = [(i, mix_seed(seed, "valid-item", i)) for i in order]
    return [keys[i : i + batch_size] for i in range(0, len(keys), batch_size)]
