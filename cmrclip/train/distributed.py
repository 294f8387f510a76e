"""torch DDP set-up from ``torchrun``'s environment (CPU gloo, GPU nccl) and a resumable seeded sampler.

Run on one machine with ``cmrclip pretrain``; on several processes with
``torchrun --nproc-per-node N -m cmrclip.cli pretrain ...`` (multi-node: add ``--nnodes``/``--rdzv-endpoint``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["DistEnv", "ResumableSampler", "cleanup", "init_distributed"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: ``rank`` of ``world_size``, ``local_rank`` on its node, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # noqa: RUF009

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the process that writes files)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistEnv:
    """Join the process group described by ``torchrun``'s variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).

    Without them (a plain run) this is a single process and no group is created.

    Args:
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
    """
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(f"cuda:{local}" if world > 1 else "cuda") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        logger.info("joined process group: rank %d of %d on %s", rank, world, dev)
    return DistEnv(rank=rank, world_size=world, local_rank=local, device=dev)


def cleanup() -> None:
    """Leave the process group, if one was joined, once every rank has got here.

    Without the barrier a rank that finishes first (the others still writing outputs) tears gloo down under them,
    which can hang or abort the run under load.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class ResumableSampler(torch.utils.data.Sampler[int]):
    """Seeded, per-epoch shuffled indices split across ranks, that can start part-way through an epoch.

    Like ``DistributedSampler`` (the permutation depends only on ``seed`` and ``epoch``; each rank takes every
    ``world_size``-th index; padding by repetition so all ranks get the same count), plus ``skip(n)`` to resume
    after ``n`` of this rank's indices were consumed, and ``state_dict``/``load_state_dict``.
    """

    def __init__(
        self, n: int, world_size: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True, drop_last: bool = False
    ) -> None:
        if not 0 <= rank < world_size or n < 1:
            raise ValueError(f"invalid sampler: n={n}, rank={rank}, world_size={world_size}")
        self.n, self.world_size, self.rank = n, world_size, rank
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.epoch, self.start = 0, 0

    @property
    def per_rank(self) -> int:
        """Indices each rank gets per epoch."""
        if self.drop_last:
            return self.n // self.world_size
        return math.ceil(self.n / self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's permutation and start from its beginning."""
        self.epoch, self.start = int(epoch), 0

    def skip(self, consumed: int) -> None:
        """Start the current epoch after ``consumed`` of this rank's indices."""
        self.start = int(consumed)

    def epoch_indices(self) -> list[int]:
        """This rank's indices of the current epoch, from the beginning."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        total = self.per_rank * self.world_size
        if total > self.n:
            order = np.resize(order, total)
        return [int(i) for i in order[:total][self.rank :: self.world_size]]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices()[self.start :])

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start)

    def state_dict(self) -> dict[str, int]:
        """Return ``{"epoch", "start", "seed"}``."""
        return {"epoch": self.epoch, "start": self.start, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.epoch, self.start, self.seed = int(state["epoch"]), int(state["start"]), int(state["seed"])
