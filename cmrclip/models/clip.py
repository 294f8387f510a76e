"""The CLIP model: a video tower and a text tower projected into one space, and the learnable temperature."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmrclip.errors import ConfigError
from cmrclip.models.heads import study_embedding
from cmrclip.models.text import TextEncoder
from cmrclip.models.video import MViT

__all__ = ["LOGIT_SCALE_MAX", "ClipModel", "ClipOutput"]

logger = logging.getLogger(__name__)

LOGIT_SCALE_MAX = 100.0
"""Largest inverse temperature ``exp(logit_scale)`` (CLIP's clamp)."""


@dataclass
class ClipOutput:
    """What :meth:`ClipModel.forward` returns.

    Attributes:
        video: (B, D) L2-normalised video embeddings.
        text: (B, D) L2-normalised text embeddings.
        logit_scale: scalar inverse temperature, ``exp(logit_scale)`` clamped at :data:`LOGIT_SCALE_MAX`.
    """

    video: Tensor
    text: Tensor
    logit_scale: Tensor


class ClipModel(nn.Module):
    """Video tower + text tower (each with its own projection) and ``logit_scale`` (init ``log(1/0.07)``).

    Args:
        video: the MViT tower; its ``video_proj`` maps into the joint space.
        text: the text tower, or None for a video-only model (zero-shot against stored text embeddings).
        embed_dim: width of the joint space; both projections must produce it.

    Raises:
        ConfigError: if a tower's projection width differs from ``embed_dim``.
    """

    def __init__(self, video: MViT, text: TextEncoder | None, embed_dim: int = 512) -> None:
        super().__init__()
        if video.config.proj_dim != embed_dim:
            raise ConfigError(f"video tower projects to {video.config.proj_dim}, the CLIP space is {embed_dim}")
        if text is not None and text.config.proj_dim != embed_dim:
            raise ConfigError(f"text tower projects to {text.config.proj_dim}, the CLIP space is {embed_dim}")
        self.video, self.text, self.embed_dim = video, text, embed_dim
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def scale(self) -> Tensor:
        """The inverse temperature ``exp(logit_scale)``, clamped at :data:`LOGIT_SCALE_MAX`."""
        return self.logit_scale.exp().clamp(max=LOGIT_SCALE_MAX)

    @torch.no_grad()
    def clamp_logit_scale_(self) -> None:
        """Clamp the parameter itself into ``[0, log(100)]`` (call after each optimiser step)."""
        self.logit_scale.clamp_(0.0, math.log(LOGIT_SCALE_MAX))

    def encode_video(self, x: Tensor, normalize: bool = True) -> Tensor:
        """(B, 3, T, H, W) normalised clips -> (B, embed_dim).

        A batch of studies ``(B, K, 3, T, H, W)`` (K clips each) gives one embedding per study: the mean of its
        clips' L2-normalised embeddings (as zero-shot and retrieval pool a study), normalised again by default.
        """
        if x.ndim != 6:
            return self.video.encode(x, normalize=normalize)
        b, k = x.shape[:2]
        return study_embedding(self.video.encode(x.flatten(0, 1)).view(b, k, -1), normalize=normalize)

    def _text(self) -> TextEncoder:
        if self.text is None:
            raise ConfigError("this CLIP model has no text tower; encode text with the model that made the bank")
        return self.text

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor, normalize: bool = True) -> Tensor:
        """(B, L) token ids and mask -> (B, embed_dim)."""
        return self._text().encode(input_ids, attention_mask, normalize=normalize)

    def encode_text_features(self, features: Tensor, normalize: bool = True) -> Tensor:
        """(B, hidden) cached pooled text features (frozen tower) -> (B, embed_dim)."""
        return self._text().project(features, normalize=normalize)

    def forward(
        self,
        video: Tensor,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        text_features: Tensor | None = None,
    ) -> ClipOutput:
        """Embed a batch of (clip, report) pairs; the text comes as tokens or as cached pooled features.

        Raises:
            ConfigError: if neither or both of tokens and cached features are given.
        """
        if (input_ids is None) == (text_features is None):
            raise ConfigError("ClipModel.forward needs either input_ids/attention_mask or text_features")
        if text_features is not None:
            text = self.encode_text_features(text_features)
        else:
            mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
            text = self.encode_text(input_ids, mask)
        return ClipOutput(video=self.encode_video(video), text=F.normalize(text, dim=-1), logit_scale=self.scale())
