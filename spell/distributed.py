"""The data-parallel group a training process belongs to (issue 14: several ranks share a step).

Started by `torchrun` (or DeepSpeed's launcher) every rank runs the same loop with the same seeds;
what differs is the work it does: `owns(slot)` splits a generation batch's question slots across
the ranks, `gather` gives every rank every rank's results (in rank order), `sum` / `max` reduce
numbers. A plain process is a group of one, where each of these is the identity, so the loop has
one code path whatever the world size.

The collectives go over torch.distributed's default group (NCCL on GPUs, gloo on CPU), which the
DeepSpeed trainer initialises; objects travel as pickles (`all_gather_object`), numbers as one
float64 tensor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class DataParallel:
    rank: int = 0
    world: int = 1

    @classmethod
    def from_environment(cls) -> "DataParallel":
        """(RANK, WORLD_SIZE) as the launcher set them; a plain process is rank 0 of 1."""
        rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))
        return cls(rank, int(os.environ.get("WORLD_SIZE", "1")))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.world > 1

    def owns(self, slot: int) -> bool:
        """Whether this rank does the work of a generation batch's question slot `slot`."""
        return slot % self.world == self.rank

    # -- collectives (identities for a group of one) ------------------------------------------

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        if not self.several:
            return [value]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank."""
        if not self.several:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, values: Sequence[float]) -> list[float]:
        return self._reduce(values, "sum")

    def max(self, values: Sequence[float]) -> list[float]:
        return self._reduce(values, "max")

    def barrier(self) -> None:
        if self.several:
            import torch.distributed as dist

            dist.barrier()

    def _reduce(self, values: Sequence[float], op: str) -> list[float]:
        if not self.several:
            return [float(v) for v in values]
        import torch
        import torch.distributed as dist

        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return [float(v) for v in tensor.tolist()]


SINGLE = DataParallel()


def balanced_shards(lengths: Sequence[int], keys: Sequence[Any], world: int) -> list[list[int]]:
    """Split items (their token `lengths`) into `world` shards of about equal tokens, keeping items
    with the same key (a responder group's shared prompt) on one shard: largest key-group first,
    each to the shard with the fewest tokens so far (ties: the lowest rank). Deterministic, so
    every rank computes the same split without talking. Returns each shard's item indices."""
    groups: dict[Any, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    order = sorted(groups.values(), key=lambda g: (-sum(lengths[i] for i in g), g[0]))
    shards: list[list[int]] = [[] for _ in range(world)]
    load = [0] * world
    for group in order:
        target = min(range(world), key=lambda r: (load[r], r))
        shards[target].extend(group)
        load[target] += sum(lengths[i] for i in group)
    return [sorted(s) for s in shards]
