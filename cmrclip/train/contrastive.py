"""The contrastive task (CLIP model + loss), its builder, and the cache of frozen text features."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from cmrclip.config import StrictModel
from cmrclip.errors import ConfigError
from cmrclip.models.clip import ClipModel
from cmrclip.models.loss import ClipLoss
from cmrclip.models.registry import build_video_encoder, seeded_init
from cmrclip.models.text import TextConfig, TextEncoder, cache_text_features

__all__ = ["ContrastiveTask", "ModelSection", "TextFeatureCache", "build_clip_model"]

logger = logging.getLogger(__name__)


class ModelSection(StrictModel):
    """The two towers: a video preset (``cmrclip.models.registry.list_models``) and a text tower config."""

    video: str = "tiny"
    video_overrides: dict[str, Any] = Field(default_factory=dict)
    embed_dim: int = 256
    text: TextConfig = TextConfig(source="minilm", pooling="mean", trainable_layers=0, proj_dim=256)


class TextFeatureCache:
    """Pooled features of a frozen text tower, cached per distinct text (computed on first use)."""

    def __init__(self, encoder: TextEncoder, tokenize_fn: Callable[[Any], dict[str, Tensor]]) -> None:
        self.encoder, self.tokenize_fn, self.cache = encoder, tokenize_fn, {}

    def __call__(self, texts: list[str]) -> Tensor:
        """(B, hidden) features of ``texts``, encoding only those not seen before."""
        missing = sorted({t for t in texts if t not in self.cache})
        if missing:
            feats = cache_text_features(self.encoder, self.tokenize_fn, missing)
            self.cache.update(zip(missing, feats, strict=True))
        return torch.stack([self.cache[t] for t in texts])


class ContrastiveTask(nn.Module):
    """The CLIP model plus its loss; ``forward`` returns the loss terms of one (local) batch."""

    def __init__(self, clip: ClipModel, mask_same_patient: bool = True) -> None:
        super().__init__()
        self.clip, self.loss, self.mask_same_patient = clip, ClipLoss(gather=True), mask_same_patient

    def forward(self, video: Tensor, text: dict[str, Tensor], patient_ids: Tensor) -> dict[str, Tensor]:
        """Loss of a batch.

        Args:
            video: (B, 3, T, H, W) normalised clips.
            text: ``{"text_features": (B, hidden)}`` (frozen tower) or ``{"input_ids", "attention_mask"}``.
            patient_ids: (B,) int64 ids; equal ids are never negatives of each other (when masking is on).
        """
        out = self.clip(video, **text)
        keys = patient_ids if self.mask_same_patient else None
        terms = self.loss(out.video.float(), out.text.float(), out.logit_scale.float(), keys)
        return {"loss": terms.loss, "v2t": terms.video_to_text, "t2v": terms.text_to_video, "scale": out.logit_scale}


def build_clip_model(cfg: ModelSection, seed: int = 0) -> ClipModel:
    """The CLIP model of a config, initialised from ``seed`` (the same weights on every rank)."""
    overrides = dict(cfg.video_overrides) | {"proj_dim": cfg.embed_dim}
    video = build_video_encoder(cfg.video, seed=seed, overrides=overrides)
    text_cfg = cfg.text.model_copy(update={"proj_dim": cfg.embed_dim})
    text = seeded_init(lambda: TextEncoder(text_cfg), seed + 1)
    if video.config.normalization != "unit":
        raise ConfigError("pretraining reads [0, 1] clips from the store; use a video preset with normalization: unit")
    return ClipModel(video, text, embed_dim=cfg.embed_dim)
