"""The input recipe of a model: what a stored clip goes through before the network sees it, kept with the weights.

Every path that feeds a video tower (pretraining, fine-tuning, zero-shot, embed, predict, explain, serve) builds its
clip pipeline with :func:`clip_transform` from the recipe stored in the checkpoint it loads, so the same weights
always see the same inputs. The store keeps windowed 8-bit pixels, read as ``[0, 1]``; the ``unit`` normalisation
maps them to ``(x - 0.5) / 0.25`` and ``legacy`` applies the original system's formula to the 8-bit values
(``x * 255``), on every path alike. The recipe also fixes which clips make up a study's bag (views, SAX slices).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch

from cmrclip.config import StrictModel
from cmrclip.data.bags import BagConfig
from cmrclip.data.transforms import AugmentConfig, Compose, build_clip_transform
from cmrclip.models.normalize import Normalization, normalize

__all__ = ["InputRecipe", "clip_transform", "input_normalizer", "recipe_for", "recipe_from"]

logger = logging.getLogger(__name__)


class InputRecipe(StrictModel):
    """Normalisation, clip size and bag of a model's inputs."""

    normalization: Normalization = "unit"
    frames: int = 16
    size: tuple[int, int] = (64, 64)
    """Clip rows and columns after resizing."""
    bags: BagConfig = BagConfig()
    """The clips of a study (``bags.frames`` is kept equal to ``frames``)."""


def input_normalizer(kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The normalisation ``kind`` for clips read from a store in ``[0, 1]`` (``legacy`` on the 8-bit scale)."""
    if kind == "legacy":
        return lambda x: normalize(x * 255.0, "legacy")
    return lambda x: normalize(x, kind)


def clip_transform(recipe: InputRecipe, augment: AugmentConfig | None = None) -> Compose:
    """The one pipeline from a stored clip ``[T, H, W]`` in ``[0, 1]`` to the model's input ``[3, T, H, W]``.

    Args:
        recipe: the model's input recipe.
        augment: training augmentation; ``None`` for every evaluation path.
    """
    return build_clip_transform(recipe.size, augment, input_normalizer(recipe.normalization))


def recipe_for(encoder: Any, bags: BagConfig | None = None, size: tuple[int, int] | None = None) -> InputRecipe:
    """The recipe of a video tower (its preset's normalisation and input size) with the bag it is fed.

    Args:
        encoder: an :class:`~cmrclip.models.video.MViT` (anything with ``config.normalization``/``input_size``).
        bags: the bag config; default: :class:`BagConfig`'s.
        size: clip rows, cols when they differ from the preset's.
    """
    cfg = encoder.config
    frames = int(cfg.input_size[0])
    bag = (bags or BagConfig()).model_copy(update={"frames": frames})
    shape = tuple(size or cfg.input_size[1:])
    return InputRecipe(normalization=cfg.normalization, frames=frames, size=shape, bags=bag)


def recipe_from(stored: Mapping[str, Any] | None, encoder: Any, where: str) -> InputRecipe:
    """The recipe stored with a model, or (older files without one) the encoder's preset with the default bag."""
    if stored:
        return InputRecipe.model_validate(dict(stored))
    logger.warning("%s stores no input recipe; using its preset's normalisation and the default bag", where)
    return recipe_for(encoder)
