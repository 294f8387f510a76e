"""Clip transforms: MONAI's transforms, with one random draw per clip seeded from an explicit generator.

A clip ``[T, H, W]`` goes through MONAI's 2D transforms with its frames in the channel axis, so one call draws one set
of parameters (crop box, angle, gamma, …) and applies it to every frame: the anatomy moves as one rigid picture and
the motion of the heart is kept. A study's views share a draw through MONAI's dict transforms (``keys=[...]``) or by
seeding it from generators in the same state (:func:`seed_from`). Randomness comes only from
``np.random.Generator``s: :meth:`Compose.apply` seeds every random transform through MONAI's
``Randomizable.set_random_state`` and then applies. Random transforms fire with probability ``prob`` (MONAI's
convention); :class:`AugmentConfig` rejects a probability outside ``[0, 1]``.

What MONAI does not provide stays here, in its style: :class:`RandTemporalJitter` (frame indices within a cardiac
cycle) and :class:`AntialiasedResize` (torch's antialiased bilinear resize; MONAI's ``Resize(anti_aliasing=True)``
smooths with a Gaussian first and made the training pipeline 2.5-4x slower on CPU, see ``benchmarks/RESULTS.md``).
There are no vertical (or horizontal) flips: flipping breaks the anatomy (situs) that a report describes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.data.meta_obj import get_track_meta, set_track_meta
from monai.transforms import Compose as MonaiCompose
from monai.transforms import (
    EnsureChannelFirst,
    Identity,
    Lambda,
    OneOf,
    RandAdjustContrast,
    RandGaussianNoise,
    RandomizableTransform,
    RandRotate,
    RandScaleCrop,
    RandScaleIntensity,
    RandShiftIntensity,
    RepeatChannel,
)
from monai.transforms.transform import Randomizable, Transform
from pydantic import Field

from cmrclip.config import StrictModel

__all__ = [
    "AntialiasedResize",
    "AugmentConfig",
    "Compose",
    "RandTemporalJitter",
    "build_clip_transform",
    "seed_from",
]

logger = logging.getLogger(__name__)

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class AugmentConfig(StrictModel):
    """Augmentation strengths for training clips (all act on ``[0, 1]`` intensities).

    The crop keeps a fraction of each side drawn independently from ``[sqrt(lo), sqrt(hi)]`` of ``crop_scale``, so the
    kept area lies in ``crop_scale`` and the aspect ratio in ``[sqrt(lo / hi), sqrt(hi / lo)]`` (0.84-1.20 for the
    defaults). Noise draws one standard deviation per clip from ``[0, noise_std]``.
    """

    crop_prob: Probability = 1.0
    crop_scale: tuple[float, float] = (0.7, 1.0)
    rotate_prob: Probability = 0.5
    rotate_degrees: float = 10.0
    gamma_prob: Probability = 0.5
    gamma: tuple[float, float] = (0.7, 1.4)
    intensity_prob: Probability = 0.5
    intensity_scale: tuple[float, float] = (0.9, 1.1)
    intensity_shift: tuple[float, float] = (-0.05, 0.05)
    noise_prob: Probability = 0.3
    noise_std: float = 0.03
    temporal_jitter_prob: Probability = 0.3
    temporal_jitter_frames: int = 1


def seed_from(transform: Randomizable, rng: np.random.Generator) -> Randomizable:
    """Make ``transform`` (for a :class:`Compose`, each random transform in it) draw from ``rng``; returns it.

    MONAI's ``set_random_state(state=...)`` with a ``RandomState`` over ``rng``'s bit generator: the draws advance
    ``rng`` itself, so a seeded item is reproducible and consecutive items differ.
    """
    return transform.set_random_state(state=np.random.RandomState(rng.bit_generator))


@contextmanager
def _plain_tensors() -> Iterator[None]:
    """Run MONAI transforms on plain tensors (no ``MetaTensor`` bookkeeping: clips carry no affine here)."""
    tracking = get_track_meta()
    set_track_meta(False)
    try:
        yield
    finally:
        set_track_meta(tracking)


class Compose(MonaiCompose):
    """MONAI's ``Compose`` for one clip (or one study dict), with :meth:`apply` drawing from an explicit generator."""

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> Compose:
        """MONAI's, except that a given ``state`` is shared by every random transform (drawn from in order)."""
        if state is None:
            return super().set_random_state(seed=seed)
        Randomizable.set_random_state(self, state=state)
        for t in self.transforms:
            if isinstance(t, Randomizable):
                t.set_random_state(state=state)
        return self

    def __call__(self, input_: Any) -> Any:  # type: ignore[override]
        """Apply the transforms in order (random ones draw from their random state ``R``).

        Unlike MONAI's ``Compose``, a transform's exception comes through as raised (MONAI wraps it in a
        ``RuntimeError``), so a missing key is a ``KeyError`` naming the dict transform.
        """
        with _plain_tensors():
            for t in self.transforms:
                input_ = t(input_)
        return input_

    def apply(self, data: Any, rng: np.random.Generator) -> Any:
        """Seed the random transforms from ``rng`` (:func:`seed_from`), then apply: one draw for the whole clip."""
        seed_from(self, rng)
        return self(data)


class RandTemporalJitter(RandomizableTransform):
    """Move each frame index by up to ``max_shift`` frames within the slice's cycle (wrapping, never leaving it)."""

    def __init__(self, max_shift: int = 1, prob: float = 0.3) -> None:
        RandomizableTransform.__init__(self, prob)
        self.max_shift = max_shift
        self._shifts = np.zeros(0, dtype=np.int64)

    def randomize(self, data: np.ndarray) -> None:
        """Draw whether to fire and one shift per frame index in ``data``."""
        super().randomize(None)
        if self._do_transform:
            self._shifts = self.R.randint(-self.max_shift, self.max_shift + 1, size=np.shape(data))

    def __call__(self, frames: np.ndarray | Sequence[int], n_frames: int, randomize: bool = True) -> np.ndarray:
        """Jitter ``frames`` (indices in ``[0, n_frames)``); the result stays in ``[0, n_frames)``."""
        frames = np.asarray(frames, dtype=np.int64)
        if randomize:
            self.randomize(frames)
        if not self._do_transform or self.max_shift == 0:
            return frames
        return (frames + self._shifts) % int(n_frames)


class AntialiasedResize(Transform):
    """Resize a channel-first image ``[C, H, W]`` to ``[C, *spatial_size]``: bilinear, antialiased when shrinking."""

    def __init__(self, spatial_size: Sequence[int]) -> None:
        self.spatial_size = (int(spatial_size[0]), int(spatial_size[1]))

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """Resize ``img [C, H, W]`` (each channel, i.e. each frame, alike)."""
        if tuple(img.shape[-2:]) == self.spatial_size:
            return img
        return F.interpolate(img[None], size=self.spatial_size, mode="bilinear", align_corners=False, antialias=True)[0]


def _as_frames(clip: torch.Tensor | np.ndarray) -> torch.Tensor:
    clip = torch.as_tensor(clip, dtype=torch.float32)
    if clip.ndim != 3:
        raise ValueError(f"expected a clip [T, H, W], got shape {tuple(clip.shape)}")
    return clip


def _clamp_unit(clip: torch.Tensor) -> torch.Tensor:
    return clip.clamp(0.0, 1.0)


def _augment(size: tuple[int, int], a: AugmentConfig) -> list[Callable[[Any], Any]]:
    """MONAI's random transforms for ``a``, from a clip ``[T, H, W]`` to ``[T, *size]`` in ``[0, 1]``."""
    side = (math.sqrt(a.crop_scale[0]), math.sqrt(a.crop_scale[1]))
    crop = RandScaleCrop(roi_scale=side[0], max_roi_scale=side[1], random_center=True, random_size=True)
    return [
        crop if a.crop_prob == 1.0 else OneOf([crop, Identity()], weights=(a.crop_prob, 1.0 - a.crop_prob)),
        AntialiasedResize(size),
        RandRotate(range_x=math.radians(a.rotate_degrees), prob=a.rotate_prob, padding_mode="zeros"),
        RandAdjustContrast(prob=a.gamma_prob, gamma=a.gamma),
        RandScaleIntensity(factors=(a.intensity_scale[0] - 1, a.intensity_scale[1] - 1), prob=a.intensity_prob),
        RandShiftIntensity(offsets=a.intensity_shift, prob=a.intensity_prob),
        RandGaussianNoise(prob=a.noise_prob, std=a.noise_std, sample_std=True),
        Lambda(_clamp_unit),
    ]


def build_clip_transform(
    size: Sequence[int],
    augment: AugmentConfig | None = None,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    channels: int = 3,
) -> Compose:
    """The pipeline from a read clip ``[T, H, W]`` in ``[0, 1]`` to a model input ``[channels, T, *size]``.

    Args:
        size: output (rows, cols).
        augment: training augmentation (apply with :meth:`Compose.apply`); ``None`` for evaluation (resize only).
        normalize: the model preset's normalisation, applied last (injected: ``data`` does not import ``models``).
        channels: output channels (grey repeated).
    """
    out = (int(size[0]), int(size[1]))
    steps: list[Callable[[Any], Any]] = [Lambda(_as_frames)]
    if augment is None:
        steps.append(AntialiasedResize(out))
    else:
        steps += _augment(out, augment)
    steps += [EnsureChannelFirst(channel_dim="no_channel"), RepeatChannel(channels)]
    if normalize is not None:
        steps.append(normalize)
    return Compose(steps)
