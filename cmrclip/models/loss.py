"""Contrastive objective: all-gather with gradient across ranks and the symmetric InfoNCE (CLIP) loss.

Only maths: no optimiser, no logging of metrics. Under DDP every rank gathers every rank's embeddings (with their
gradients flowing back to the rank that made them), computes the loss over the global batch, and DDP's gradient
averaging then yields exactly the single-process gradients of the combined batch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ClipLoss", "ClipLossOutput", "gather_features", "key_ids"]

logger = logging.getLogger(__name__)


def key_ids(keys: Sequence[str | int]) -> Tensor:
    """Map keys (patient or study keys) to int64 ids that are equal across processes for equal keys.

    Args:
        keys: one key per sample.

    Returns:
        (B,) int64 tensor; equal keys give equal ids (a 64-bit BLAKE2b hash, so collisions are negligible).
    """
    ids = [
        int.from_bytes(hashlib.blake2b(str(k).encode(), digest_size=8).digest(), "little", signed=True) for k in keys
    ]
    return torch.tensor(ids, dtype=torch.int64)


class _GatherWithGrad(torch.autograd.Function):
    """Concatenate every rank's tensor; the backward sums the global gradient and returns this rank's slice."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.size = dist.get_rank(), x.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.size : (ctx.rank + 1) * ctx.size]


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _check_equal_sizes(x: Tensor) -> None:
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.int64))
    if len({int(s) for s in sizes}) != 1:
        raise ValueError(f"gather_features needs equal per-rank batch sizes, got {[int(s) for s in sizes]}")


def gather_features(video: Tensor, text: Tensor, keys: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """All-gather both embeddings (with gradient) and the keys (without) from every rank, in rank order.

    Without an initialised process group of more than one rank, the inputs come back unchanged.

    Args:
        video: (B, D) video embeddings of this rank.
        text: (B, D) text embeddings of this rank.
        keys: (B,) int64 patient ids of this rank, or None.

    Returns:
        (W*B, D) video, (W*B, D) text and (W*B,) keys (or None).
    """
    if not _distributed():
        return video, text, keys
    _check_equal_sizes(video)
    all_video, all_text = _GatherWithGrad.apply(video), _GatherWithGrad.apply(text)
    all_keys = None
    if keys is not None:
        parts = [torch.empty_like(keys) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, keys.contiguous())
        all_keys = torch.cat(parts)
    return all_video, all_text, all_keys


@dataclass
class ClipLossOutput:
    """Named terms of the symmetric InfoNCE loss (each a scalar tensor)."""

    loss: Tensor
    video_to_text: Tensor
    text_to_video: Tensor

    def as_dict(self) -> dict[str, float]:
        """The terms as floats, for logging."""
        return {name: float(getattr(self, name).detach()) for name in ("loss", "video_to_text", "text_to_video")}


class ClipLoss(nn.Module):
    """Symmetric InfoNCE over (video, text) pairs; pair i is the only positive of row i and column i.

    With ``keys`` (e.g. :func:`key_ids` of patient keys), pairs that share a key with row i other than pair i itself
    (another study of the same patient, or the same study drawn twice) are removed from its negatives.
    """

    def __init__(self, gather: bool = True) -> None:
        super().__init__()
        self.gather = gather

    def forward(self, video: Tensor, text: Tensor, logit_scale: Tensor, keys: Tensor | None = None) -> ClipLossOutput:
        """Compute the loss over the (gathered) global batch.

        Args:
            video: (B, D) L2-normalised video embeddings.
            text: (B, D) L2-normalised text embeddings.
            logit_scale: scalar, the inverse temperature (already exponentiated and clamped).
            keys: (B,) int64 group ids (same id = never negatives of each other), or None.
        """
        if self.gather:
            video, text, keys = gather_features(video, text, keys)
        logits = logit_scale * video @ text.T
        if keys is not None:
            same = keys[:, None] == keys[None, :]
            same.fill_diagonal_(False)
            logits = logits.masked_fill(same, float("-inf"))
        target = torch.arange(logits.shape[0], device=logits.device)
        v2t = F.cross_entropy(logits, target)
        t2v = F.cross_entropy(logits.T, target)
        return ClipLossOutput(loss=(v2t + t2v) / 2, video_to_text=v2t, text_to_video=t2v)
