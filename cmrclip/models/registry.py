"""Named model presets (YAML in ``cmrclip/configs/models/``) and the builders that turn them into modules."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from cmrclip.config import StrictModel, packaged_yaml
from cmrclip.errors import ConfigError
from cmrclip.models.video import MViT, MViTConfig

__all__ = [
    "build_video_encoder",
    "list_models",
    "load_preset",
    "register_builder",
    "seeded_init",
]

logger = logging.getLogger(__name__)

_BUILDERS: dict[str, Callable[[Any], nn.Module]] = {}


def register_builder(kind: str) -> Callable[[Callable[[Any], nn.Module]], Callable[[Any], nn.Module]]:
    """Register a function ``config -> nn.Module`` under ``kind`` (``"mvit"`` is built in)."""

    def decorate(fn: Callable[[Any], nn.Module]) -> Callable[[Any], nn.Module]:
        _BUILDERS[kind] = fn
        return fn

    return decorate


register_builder("mvit")(MViT)


def list_models() -> list[str]:
    """Names of the packaged video presets (``tiny``, ``small``, ``mvit_b_16x4``, ...), sorted."""
    folder = resources.files("cmrclip").joinpath("configs", "models")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str, overrides: dict[str, Any] | None = None) -> MViTConfig:
    """Load a packaged video preset, optionally changing some fields.

    Raises:
        ConfigError: if the preset is unknown or an override does not validate.
    """
    if name not in list_models():
        raise ConfigError(f"unknown video model {name!r}; choose one of {list_models()}")
    data = packaged_yaml(f"models/{name}.yaml") | dict(overrides or {})
    try:
        return MViTConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"video model {name!r} with overrides {overrides}: {exc}") from exc


def seeded_init(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Run ``build`` with torch's RNG seeded by ``seed``, leaving the caller's global RNG state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def build_video_encoder(
    name_or_config: str | MViTConfig | dict[str, Any], seed: int = 0, overrides: dict[str, Any] | None = None
) -> MViT:
    """Build a randomly initialised (seeded) MViT video tower from a preset name, a config or a dict.

    Raises:
        ConfigError: if the preset is unknown or the config does not validate.
    """
    if isinstance(name_or_config, str):
        cfg = load_preset(name_or_config, overrides)
    else:
        base = name_or_config.model_dump() if isinstance(name_or_config, StrictModel) else dict(name_or_config)
        try:
            cfg = MViTConfig.model_validate(base | dict(overrides or {}))
        except ValidationError as exc:
            raise ConfigError(f"invalid video model config: {exc}") from exc
    model = seeded_init(lambda: _BUILDERS["mvit"](cfg), seed)
    logger.info(
        "built video encoder %s (%.1f M parameters)", cfg.name, sum(p.numel() for p in model.parameters()) / 1e6
    )
    return model
