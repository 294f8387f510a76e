"""Study-level heads: pool a bag of clip embeddings into LVEF (and other measures) and condition logits.

The pooling is the gated-attention MIL of Ilse et al. (2018) as the original system used it (REFERENCE.md §3), with
a mean-pooling baseline. Padded clips are masked out of the softmax, so bags of different sizes share a batch. A
:class:`StudyModel` is encoder + projection + head; :func:`configure_trainable` sets what trains in each mode and
returns optimizer groups that provably hold every trainable parameter (the original lost its head's parameters).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BeforeValidator
from torch import nn

from cmrclip.config import StrictModel
from cmrclip.errors import ConfigError, DataError

__all__ = [
    "LEGACY_MODES",
    "REGRESSION_DEFAULTS",
    "GatedAttentionMIL",
    "HeadConfig",
    "LossTerms",
    "MeanPool",
    "Mode",
    "StudyModel",
    "StudyOutput",
    "configure_trainable",
    "pos_weights",
    "study_embedding",
    "study_loss",
]

logger = logging.getLogger(__name__)

LEGACY_MODES = {"transfer": "finetune"}
"""Former mode names -> current ones (accepted with a warning). Before, ``finetune`` trained only the projection
(now ``projection``) and ``transfer`` trained everything (now ``finetune``)."""


def _current_mode(value: Any) -> Any:
    if value in LEGACY_MODES:
        logger.warning("mode %r is now called %r (it trains the whole encoder)", value, LEGACY_MODES[value])
        return LEGACY_MODES[value]
    return value


Mode = Annotated[Literal["linear", "projection", "finetune", "scratch"], BeforeValidator(_current_mode)]
"""``linear``: frozen encoder and projection, the head trains; ``projection``: the projection and head train;
``finetune``: everything trains, the pretrained encoder at ``encoder_lr``; ``scratch``: a random encoder, all
trained. The former names (:data:`LEGACY_MODES`) are accepted with a warning."""

REGRESSION_DEFAULTS: dict[str, tuple[float, float]] = {
    "lvef": (57.0, 10.0),
    "rvef": (55.0, 10.0),
    "lvedv_ml": (150.0, 40.0),
    "lvesv_ml": (65.0, 30.0),
    "lv_mass_g": (110.0, 30.0),
}
"""Typical value and spread of each numeric target: outputs start at the typical value and move in spread units."""


class HeadConfig(StrictModel):
    """The study head: pooling, widths, dropout and how outputs are shared."""

    pooling: Literal["gated_attention", "mean"] = "gated_attention"
    hidden: int = 256
    attention_dim: int = 128
    dropout: float = 0.25
    per_target: bool = False
    """One pooling head and output per target (the original's one-model-per-label) instead of one shared head."""
    prompt_prior: bool = False
    """Add to each condition logit a linear layer on the study embedding (the mean of its clips' normalised
    projections) that starts as the zero-shot prompt classifier (:func:`cmrclip.models.prompts.prompt_classifier`)
    and trains with the head: with no labels the model is the zero-shot model; labels correct it."""


class GatedAttentionMIL(nn.Module):
    """Linear->ReLU->Dropout x2, gated attention (tanh x sigmoid, D=attention_dim), masked softmax, weighted sum."""

    def __init__(self, in_dim: int, hidden: int = 256, attention_dim: int = 128, dropout: float = 0.25) -> None:
        super().__init__()
        self.embed = _mlp(in_dim, hidden, dropout)
        self.attention_v = nn.Linear(hidden, attention_dim)
        self.attention_u = nn.Linear(hidden, attention_dim)
        self.attention_w = nn.Linear(attention_dim, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool ``x [B, N, D]`` over valid clips (``mask [B, N]``); return ``([B, hidden], weights [B, N])``."""
        h = self.embed(x)
        scores = self.attention_w(torch.tanh(self.attention_v(h)) * torch.sigmoid(self.attention_u(h))).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return self.dropout((weights.unsqueeze(-1) * h).sum(dim=1)), weights


class MeanPool(nn.Module):
    """The same MLP as :class:`GatedAttentionMIL`, then the mean over valid clips (uniform weights)."""

    def __init__(self, in_dim: int, hidden: int = 256, dropout: float = 0.25, **_: Any) -> None:
        super().__init__()
        self.embed = _mlp(in_dim, hidden, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Average ``x [B, N, D]`` over valid clips; return ``([B, hidden], weights [B, N])``."""
        weights = mask.float() / mask.float().sum(dim=1, keepdim=True).clamp_min(1.0)
        return self.dropout((weights.unsqueeze(-1) * self.embed(x)).sum(dim=1)), weights


def _mlp(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
    )


@dataclass
class StudyOutput:
    """What a :class:`StudyModel` returns.

    Attributes:
        regression: ``[B, R]`` numeric targets in their units (LVEF in percent), in ``StudyModel.regression`` order.
        logits: ``[B, K]`` condition logits, in ``StudyModel.targets`` order.
        attention: ``[B, N]`` clip weights (mean over heads when there is one head per target); 0 on padding.
        attention_per_head: ``[B, H, N]``.
        embeddings: ``[B, N, E]`` clip embeddings after the projection.
    """

    regression: torch.Tensor
    logits: torch.Tensor
    attention: torch.Tensor
    attention_per_head: torch.Tensor
    embeddings: torch.Tensor

    @property
    def lvef(self) -> torch.Tensor:
        """LVEF in percent (the first regression output)."""
        return self.regression[:, 0]


class StudyModel(nn.Module):
    """Clip encoder + projection + study head.

    Args:
        encoder: module with ``features(x [M, 3, T, H, W]) -> [M, D]`` (e.g. :class:`cmrclip.models.video.MViT`).
        projection: maps ``[M, D] -> [M, E]`` (the encoder's ``video_proj``, which may live inside ``encoder``);
            ``None`` for identity (E = D).
        feature_dim: D.
        head: the head config.
        targets: condition keys (and ``normal``), one logit each.
        regression: numeric targets (``lvef`` first if present), see :data:`REGRESSION_DEFAULTS`.
        prompt_weights: ``[len(targets), E]`` initial weights of the prompt prior (``head.prompt_prior``); zeros
            when omitted (a bundle's state dict then fills them).

    Raises:
        ConfigError: if there is no target, or the prompt weights do not match the targets and embedding width.
    """

    def __init__(
        self,
        encoder: nn.Module,
        projection: nn.Module | None,
        feature_dim: int,
        head: HeadConfig,
        targets: Sequence[str],
        regression: Sequence[str] = ("lvef",),
        prompt_weights: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection = projection if projection is not None else nn.Identity()
        self.head_config, self.targets, self.regression = head, list(targets), list(regression)
        self.feature_dim = feature_dim
        embed_dim = _out_dim(self.projection, feature_dim)
        n_out = len(self.regression) + len(self.targets)
        if n_out == 0:
            raise ConfigError("StudyModel needs at least one target; set targets or regression in the config")
        n_heads = n_out if head.per_target else 1
        pool_cls = GatedAttentionMIL if head.pooling == "gated_attention" else MeanPool
        self.pools = nn.ModuleList(
            pool_cls(embed_dim, head.hidden, attention_dim=head.attention_dim, dropout=head.dropout)
            for _ in range(n_heads)
        )
        self.outputs = nn.ModuleList(nn.Linear(head.hidden, 1 if head.per_target else n_out) for _ in range(n_heads))
        for out in self.outputs:  # start near the typical value / prior, but keep gradients flowing to the pools
            nn.init.normal_(out.weight, std=0.01)
            nn.init.zeros_(out.bias)
        center = [REGRESSION_DEFAULTS.get(r, (0.0, 1.0))[0] for r in self.regression]
        scale = [REGRESSION_DEFAULTS.get(r, (0.0, 1.0))[1] for r in self.regression]
        self.register_buffer("reg_center", torch.tensor(center, dtype=torch.float32))
        self.register_buffer("reg_scale", torch.tensor(scale, dtype=torch.float32))
        self.prompt_prior = _prompt_layer(head, embed_dim, len(self.targets), prompt_weights)
        self.frozen_encoder = False

    def set_regression_stats(self, center: Sequence[float], scale: Sequence[float]) -> None:
        """Start the numeric outputs at ``center`` (e.g. the training mean) and move them in ``scale`` units."""
        self.reg_center.copy_(torch.as_tensor(center, dtype=torch.float32))
        self.reg_scale.copy_(torch.as_tensor(scale, dtype=torch.float32).clamp_min(1e-3))

    def train(self, mode: bool = True) -> StudyModel:
        """Set training mode; a frozen encoder stays in eval mode (no dropout, fixed statistics)."""
        super().train(mode)
        if self.frozen_encoder:
            self.encoder.eval()
        return self

    def encode_clips(self, clips: torch.Tensor, clip_mask: torch.Tensor) -> torch.Tensor:
        """Encoder features ``[B, N, D]`` of the valid clips of ``clips [B, N, 3, T, H, W]`` (zeros on padding)."""
        flat = self.encoder.features(clips[clip_mask])
        out = flat.new_zeros((*clip_mask.shape, flat.shape[-1]))
        out[clip_mask] = flat
        return out

    def forward(
        self, clip_mask: torch.Tensor, clips: torch.Tensor | None = None, features: torch.Tensor | None = None
    ) -> StudyOutput:
        """Predict from raw ``clips [B, N, 3, T, H, W]`` or cached encoder ``features [B, N, D]``."""
        if features is None:
            if clips is None:
                raise DataError("StudyModel.forward needs clips or features")
            features = self.encode_clips(clips, clip_mask)
        if not bool(clip_mask.any(dim=1).all()):
            raise DataError("a study in the batch has no valid clip; drop it before batching")
        emb = self.projection(features)
        pooled = [pool(emb, clip_mask) for pool in self.pools]
        raw = torch.cat([out(p) for out, (p, _) in zip(self.outputs, pooled, strict=True)], dim=-1)
        weights = torch.stack([w for _, w in pooled], dim=1)
        n_reg = len(self.regression)
        logits = raw[:, n_reg:]
        if self.prompt_prior is not None:
            logits = logits + self.prompt_prior(study_embedding(emb, clip_mask))
        return StudyOutput(
            regression=self.reg_center + self.reg_scale * raw[:, :n_reg],
            logits=logits,
            attention=weights.mean(dim=1),
            attention_per_head=weights,
            embeddings=emb,
        )


def study_embedding(emb: torch.Tensor, clip_mask: torch.Tensor | None = None, normalize: bool = True) -> torch.Tensor:
    """``[B, E]``: the mean of the valid clips' L2-normalised embeddings ``emb [B, N, E]``, normalised again.

    The one definition of a study's embedding for retrieval, zero-shot and the prompt prior. ``clip_mask [B, N]``
    marks the valid clips (all when None); ``normalize=False`` returns the mean before the final normalisation.
    """
    unit = F.normalize(emb, dim=-1)
    if clip_mask is None:
        mean = unit.mean(dim=1)
    else:
        mean = (unit * clip_mask.unsqueeze(-1)).sum(dim=1) / clip_mask.sum(dim=1, keepdim=True).clamp_min(1)
    return F.normalize(mean, dim=-1) if normalize else mean


def _prompt_layer(head: HeadConfig, embed_dim: int, n_targets: int, weights: torch.Tensor | None) -> nn.Linear | None:
    if not head.prompt_prior:
        return None
    if n_targets == 0:
        raise ConfigError("head.prompt_prior needs condition targets")
    layer = nn.Linear(embed_dim, n_targets)
    nn.init.zeros_(layer.bias)
    if weights is None:
        nn.init.zeros_(layer.weight)
    elif tuple(weights.shape) != (n_targets, embed_dim):
        raise ConfigError(
            f"prompt weights of shape {tuple(weights.shape)} do not fit {n_targets} targets x {embed_dim}-d "
            "embeddings; use the CLIP checkpoint the encoder was pretrained with"
        )
    else:
        layer.weight.data.copy_(weights)
    return layer


def _out_dim(projection: nn.Module, feature_dim: int) -> int:
    if isinstance(projection, nn.Identity):
        return feature_dim
    with torch.no_grad():
        p = next(projection.parameters())
        return int(projection(torch.zeros(1, feature_dim, dtype=p.dtype, device=p.device)).shape[-1])


def configure_trainable(model: StudyModel, mode: Mode, lr: float, encoder_lr: float | None = None) -> list[dict]:
    """Freeze what ``mode`` keeps fixed and return optimizer parameter groups for the rest.

    ``linear``: head only; ``projection``: projection + head; ``finetune``: everything, the encoder at
    ``encoder_lr`` (default ``lr / 10``); ``scratch``: everything at ``lr`` (the encoder is randomly initialised by
    the builder). A former name (``transfer``) is mapped with a warning.

    Raises:
        ConfigError: for an unknown mode.
        RuntimeError: if a trainable parameter is missing from the groups (a bug, never silently ignored).
    """
    match _current_mode(mode):
        case "linear":
            train_encoder, train_projection, enc_lr = False, False, 0.0
        case "projection":
            train_encoder, train_projection, enc_lr = False, True, 0.0
        case "finetune":
            train_encoder, train_projection, enc_lr = True, True, encoder_lr if encoder_lr is not None else lr / 10
        case "scratch":
            train_encoder, train_projection, enc_lr = True, True, lr
        case _:
            raise ConfigError(f"unknown mode {mode!r}; use linear, projection, finetune or scratch")
    model.encoder.requires_grad_(train_encoder)
    model.projection.requires_grad_(train_projection)
    model.frozen_encoder = not train_encoder
    head = [*model.pools.parameters(), *model.outputs.parameters()]
    if model.prompt_prior is not None:
        head += list(model.prompt_prior.parameters())
    groups = [{"name": "head", "params": head, "lr": lr}]
    if train_projection:
        groups.append({"name": "projection", "params": list(model.projection.parameters()), "lr": lr})
    if train_encoder:
        in_projection = {id(p) for p in model.projection.parameters()}
        encoder_params = [p for p in model.encoder.parameters() if id(p) not in in_projection]
        groups.append({"name": "encoder", "params": encoder_params, "lr": enc_lr})
    groups = [g for g in groups if g["params"]]
    in_groups = {id(p) for g in groups for p in g["params"]}
    left_out = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in in_groups]
    if left_out:
        raise RuntimeError(f"trainable parameters missing from the optimizer groups: {left_out[:5]}")
    model.train(model.training)
    return groups


def pos_weights(labels: torch.Tensor, mask: torch.Tensor, max_weight: float = 100.0) -> torch.Tensor:
    """Per-label BCE positive weight negatives/positives over known labels (1 where a label has no positive)."""
    pos = (labels * mask).sum(dim=0)
    neg = ((1 - labels) * mask).sum(dim=0)
    return torch.where(pos > 0, neg / pos.clamp_min(1), torch.ones_like(pos)).clamp(1.0 / max_weight, max_weight)


@dataclass
class LossTerms:
    """Named loss terms: ``total`` = ``regression`` + ``classification``."""

    total: torch.Tensor
    regression: torch.Tensor
    classification: torch.Tensor


def study_loss(
    out: StudyOutput,
    batch: dict[str, Any],
    model: StudyModel,
    pos_weight: torch.Tensor | None = None,
    huber_delta: float = 1.0,
    regression_weight: float = 1.0,
) -> LossTerms:
    """Huber loss on the numeric targets (in ``scale`` units) + masked BCE with per-label ``pos_weight``.

    Unknown labels (``target_mask``/``regression_mask`` False) contribute nothing; a term with no known label is 0.
    """
    zero = out.logits.new_zeros(())
    reg = zero
    if model.regression:
        rmask = batch["regression_mask"].float()
        err = F.huber_loss(
            out.regression / model.reg_scale, batch["regression"] / model.reg_scale, delta=huber_delta, reduction="none"
        )
        reg = (err * rmask).sum() / rmask.sum().clamp_min(1.0)
    cls = zero
    if model.targets:
        tmask = batch["target_mask"].float()
        bce = F.binary_cross_entropy_with_logits(out.logits, batch["targets"], pos_weight=pos_weight, reduction="none")
        cls = (bce * tmask).sum() / tmask.sum().clamp_min(1.0)
    return LossTerms(total=regression_weight * reg + cls, regression=reg, classification=cls)
