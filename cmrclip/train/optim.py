"""AdamW over every trainable parameter, with a linear warm-up then cosine decay per optimizer step."""

from __future__ import annotations

import logging
import math

import torch
from pydantic import Field
from torch import nn

from cmrclip.config import StrictModel
from cmrclip.errors import ConfigError

__all__ = ["OptimConfig", "build_optimizer", "build_scheduler", "check_optimizer_covers", "cosine_with_warmup"]

logger = logging.getLogger(__name__)


class OptimConfig(StrictModel):
    """AdamW and its schedule (``warmup_steps``/total steps count optimizer steps, not micro-batches)."""

    lr: float = 5e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    warmup_steps: int = 20
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0
    lr_by_prefix: dict[str, float] = Field(default_factory=lambda: {"text.bert.": 2e-5})
    """Peak learning rate of the parameters whose name starts with a prefix (first match wins); the rest get ``lr``.
    A pretrained text backbone trained jointly (``model.text.trainable_layers``) forgets what it knows at the video
    tower's rate; BERT-like models are fine-tuned at 1e-5 to 5e-5."""


_NO_DECAY_HINTS = ("bias", "norm", "logit_scale", "pos_embed", "cls_token", "positional", "embeddings.")


def _decays(name: str, param: nn.Parameter) -> bool:
    """Weight decay for matrices and kernels only; none for biases, norms, embeddings and the temperature."""
    return param.ndim >= 2 and not any(h in name.lower() for h in _NO_DECAY_HINTS)


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW whose groups (learning rate x decay / no decay) together hold every parameter with ``requires_grad``.

    Raises:
        ConfigError: if the model has no trainable parameter.
    """
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            lr = next((v for k, v in cfg.lr_by_prefix.items() if name.startswith(k)), cfg.lr)
            groups.setdefault((lr, _decays(name, param)), []).append(param)
    if not groups:
        raise ConfigError("the model has no trainable parameter; check the freeze settings of the config")
    params = [
        {"params": ps, "lr": lr, "weight_decay": cfg.weight_decay if decays else 0.0}
        for (lr, decays), ps in groups.items()
    ]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    check_optimizer_covers(model, opt)
    tensors = [p for ps in groups.values() for p in ps]
    n = sum(p.numel() for p in tensors)
    logger.info("optimizer: %d trainable tensors (%d parameters) in %d groups", len(tensors), n, len(groups))
    return opt


def check_optimizer_covers(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Raise if any trainable parameter of ``model`` is missing from ``optimizer`` (the original's MIL-head bug).

    Raises:
        ConfigError: naming the parameters left out.
    """
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [name for name, p in model.named_parameters() if p.requires_grad and id(p) not in held]
    if missing:
        raise ConfigError(f"optimizer leaves out {len(missing)} trainable parameter(s): {missing[:10]}")


def cosine_with_warmup(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """LR multiplier at optimizer step ``step``: linear from 1/(warmup+1) to 1, then cosine down to ``min_ratio``."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following :func:`cosine_with_warmup`; call ``step()`` once per optimizer step."""
    if total_steps < 1:
        raise ConfigError(f"total optimizer steps must be >= 1, got {total_steps}; raise train.steps")
    warm = min(cfg.warmup_steps, max(0, total_steps - 1))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: cosine_with_warmup(s, warm, total_steps, cfg.min_lr_ratio)
    )
