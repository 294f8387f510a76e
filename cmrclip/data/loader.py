"""Batches for pretraining: collate, a DataLoader set up for few CPU cores, and the loader's throughput."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["LoaderStats", "PretrainCollate", "make_loader", "measure_throughput", "worker_init"]

logger = logging.getLogger(__name__)

Tokenizer = Callable[[list[str]], dict[str, torch.Tensor]]
"""``tokenizer(texts) -> {"input_ids": [B, L], "attention_mask": [B, L]}`` (padded), injected by the caller."""


class PretrainCollate:
    """Stack items into ``{"video": [B, 3, T, H, W], "text": list[str], "study_key", "patient_key", "index"}``.

    With a tokenizer the batch also holds ``"tokens"`` (the tokenizer's dict of padded tensors).
    """

    def __init__(self, tokenizer: Tokenizer | None = None) -> None:
        self.tokenizer = tokenizer

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Collate a list of :class:`~cmrclip.data.dataset.PretrainDataset` items."""
        batch: dict[str, Any] = {
            "video": torch.stack([it["video"] for it in items]),
            "text": [it["text"] for it in items],
            "study_key": [it["study_key"] for it in items],
            "patient_key": [it["patient_key"] for it in items],
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
            "view": [it["view"] for it in items],
        }
        if self.tokenizer is not None:
            batch["tokens"] = self.tokenizer(batch["text"])
        return batch


def worker_init(worker_id: int) -> None:
    """Give each loader worker one intra-op thread, so that workers do not fight the trainer for cores."""
    torch.set_num_threads(1)


def make_loader(
    dataset: torch.utils.data.Dataset,
    batch_size: int,
    sampler: Iterable[int] | None = None,
    num_workers: int = 0,
    tokenizer: Tokenizer | None = None,
    drop_last: bool = True,
    pin_memory: bool = False,
    prefetch_factor: int = 2,
) -> torch.utils.data.DataLoader:
    """A DataLoader over a pretraining dataset.

    Workers are not persistent: each epoch's iterator copies the dataset after ``set_epoch``. Batch order is the
    sampler's (no shuffling by the loader itself; pass a seeded sampler).

    Args:
        dataset: usually a :class:`~cmrclip.data.dataset.PretrainDataset`.
        batch_size: clips per batch (per process).
        sampler: index order (e.g. :class:`~cmrclip.train.distributed.ResumableSampler`); ``None``: in order.
        num_workers: reader processes (0 reads in the main process).
        tokenizer: batch tokenizer for trainable text towers.
        drop_last: drop a final short batch (training: contrastive batches keep their size).
        pin_memory: pin host memory for faster GPU copies.
        prefetch_factor: batches fetched ahead per worker.
    """
    extra: dict[str, Any] = {}
    if num_workers > 0:
        extra = {"worker_init_fn": worker_init, "prefetch_factor": prefetch_factor, "persistent_workers": False}
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=PretrainCollate(tokenizer),
        drop_last=drop_last,
        pin_memory=pin_memory,
        **extra,
    )


@dataclass(frozen=True)
class LoaderStats:
    """Throughput of a loader: ``clips`` read in ``seconds`` over ``batches``."""

    batches: int
    clips: int
    seconds: float

    @property
    def clips_per_s(self) -> float:
        """Clips per second."""
        return self.clips / self.seconds if self.seconds > 0 else float("inf")


def measure_throughput(loader: Iterable[dict[str, Any]], max_batches: int = 20) -> LoaderStats:
    """Time how fast ``loader`` yields batches (worker start-up included), reading at most ``max_batches``."""
    start = time.perf_counter()
    batches = clips = 0
    for batch in loader:
        batches += 1
        clips += int(batch["video"].shape[0])
        if batches >= max_batches:
            break
    stats = LoaderStats(batches, clips, time.perf_counter() - start)
    logger.info("loader: %d clips in %.2f s (%.1f clips/s)", stats.clips, stats.seconds, stats.clips_per_s)
    return stats
