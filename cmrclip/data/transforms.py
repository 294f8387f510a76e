"""Clip transforms in MONAI's style: array transforms plus dict wrappers, with explicit randomness.

A random transform draws its parameters once in ``randomize(rng)`` and applies the same parameters to every frame of
a clip in ``__call__``, so the anatomy moves as one rigid picture and the motion of the heart is kept. Each random
transform fires with probability ``prob``. Clips are ``[T, H, W]`` float32 tensors in ``[0, 1]`` until
:class:`RepeatChannels` makes them ``[3, T, H, W]``. There are no vertical (or horizontal) flips: flipping breaks the
anatomy (situs) that a report describes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cmrclip.config import StrictModel

__all__ = [
    "AugmentConfig",
    "Compose",
    "MapTransform",
    "RandGamma",
    "RandGammad",
    "RandIntensity",
    "RandIntensityd",
    "RandNoise",
    "RandNoised",
    "RandResizedCrop",
    "RandResizedCropd",
    "RandRotate",
    "RandRotated",
    "RandTemporalJitter",
    "RandomTransform",
    "RepeatChannels",
    "RepeatChannelsd",
    "Resize",
    "Resized",
    "build_clip_transform",
]

logger = logging.getLogger(__name__)


class AugmentConfig(StrictModel):
    """Augmentation strengths for training clips (all act on ``[0, 1]`` intensities)."""

    crop_prob: float = 1.0
    crop_scale: tuple[float, float] = (0.7, 1.0)
    crop_ratio: tuple[float, float] = (0.85, 1.18)
    rotate_prob: float = 0.5
    rotate_degrees: float = 10.0
    gamma_prob: float = 0.5
    gamma: tuple[float, float] = (0.7, 1.4)
    intensity_prob: float = 0.5
    intensity_scale: tuple[float, float] = (0.9, 1.1)
    intensity_shift: tuple[float, float] = (-0.05, 0.05)
    noise_prob: float = 0.3
    noise_std: tuple[float, float] = (0.0, 0.03)
    temporal_jitter_prob: float = 0.3
    temporal_jitter_frames: int = 1


def _as_frames(clip: torch.Tensor | np.ndarray) -> torch.Tensor:
    clip = torch.as_tensor(clip, dtype=torch.float32)
    if clip.ndim != 3:
        raise ValueError(f"expected a clip [T, H, W], got shape {tuple(clip.shape)}")
    return clip


def _resize(clip: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip
    return F.interpolate(clip[:, None], size=size, mode="bilinear", align_corners=False, antialias=True)[:, 0]


class RandomTransform:
    """Base of random transforms: ``randomize(rng)`` decides whether to fire (``prob``) and draws parameters."""

    def __init__(self, prob: float = 1.0) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"{type(self).__name__}: prob must be in [0, 1], got {prob}")
        self.prob = prob
        self._do = False

    def randomize(self, rng: np.random.Generator) -> None:
        """Draw whether to fire and, if so, the parameters (always consuming the same amount of randomness)."""
        self._do = bool(rng.random() < self.prob)
        self._draw(rng)

    def _draw(self, rng: np.random.Generator) -> None:
        """Draw the transform's parameters."""


class Resize:
    """Resize every frame to ``size`` (rows, cols), bilinear with antialiasing."""

    def __init__(self, size: Sequence[int]) -> None:
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, clip: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Resize ``clip [T, H, W]`` to ``[T, *size]``."""
        return _resize(_as_frames(clip), self.size)


class RandResizedCrop(RandomTransform):
    """Crop a random box (area fraction ``scale``, aspect ``ratio``) and resize it to ``size``; else just resize."""

    def __init__(
        self,
        size: Sequence[int],
        scale: tuple[float, float] = (0.7, 1.0),
        ratio: tuple[float, float] = (0.85, 1.18),
        prob: float = 1.0,
    ) -> None:
        super().__init__(prob)
        self.size = (int(size[0]), int(size[1]))
        self.scale, self.ratio = scale, ratio
        self._box = (1.0, 1.0, 0.5, 0.5)

    def _draw(self, rng: np.random.Generator) -> None:
        area = rng.uniform(*self.scale)
        aspect = math.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
        height = min(1.0, math.sqrt(area / aspect))
        width = min(1.0, math.sqrt(area * aspect))
        self._box = (height, width, rng.uniform(), rng.uniform())

    def __call__(self, clip: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Crop and resize ``clip [T, H, W]`` to ``[T, *size]``."""
        clip = _as_frames(clip)
        if self._do:
            rows, cols = clip.shape[-2:]
            height, width, fy, fx = self._box
            h, w = max(1, round(height * rows)), max(1, round(width * cols))
            top, left = round(fy * (rows - h)), round(fx * (cols - w))
            clip = clip[:, top : top + h, left : left + w]
        return _resize(clip, self.size)


class RandRotate(RandomTransform):
    """Rotate every frame by the same angle, uniform in ``[-degrees, degrees]`` (zeros outside the image)."""

    def __init__(self, degrees: float = 10.0, prob: float = 0.5) -> None:
        super().__init__(prob)
        self.degrees = degrees
        self._angle = 0.0

    def _draw(self, rng: np.random.Generator) -> None:
        self._angle = math.radians(rng.uniform(-self.degrees, self.degrees))

    def __call__(self, clip: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Rotate ``clip [T, H, W]`` about its centre."""
        clip = _as_frames(clip)
        if not self._do or self._angle == 0.0:
            return clip
        cos, sin = math.cos(self._angle), math.sin(self._angle)
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=clip.dtype).expand(clip.shape[0], 2, 3)
        grid = F.affine_grid(theta, [clip.shape[0], 1, *clip.shape[-2:]], align_corners=False)
        return F.grid_sample(clip[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]


class RandGamma(RandomTransform):
    """Raise intensities to a power drawn from ``gamma`` (input in ``[0, 1]`` stays in ``[0, 1]``)."""

    def __init__(self, gamma: tuple[float, float] = (0.7, 1.4), prob: float = 0.5) -> None:
        super().__init__(prob)
        self.gamma = gamma
        self._value = 1.0

    def _draw(self, rng: np.random.Generator) -> None:
        self._value = math.exp(rng.uniform(math.log(self.gamma[0]), math.log(self.gamma[1])))

    def __call__(self, clip: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Apply the gamma to ``clip [T, H, W]``."""
        clip = _as_frames(clip)
        return clip.clamp(0.0, 1.0).pow(self._value) if self._do else clip


class RandIntensity(RandomTransform):
    """Scale and shift intensities (``x * a + b``), then clip to ``[0, 1]``."""

    def __init__(
        self, scale: tuple[float, float] = (0.9, 1.1), shift: tuple[float, float] = (-0.05, 0.05), prob: float = 0.5
    ) -> None:
        super().__init__(prob)
        self.scale, self.shift = scale, shift
        self._ab = (1.0, 0.0)

    def _draw(self, rng: np.random.Generator) -> None:
        self._ab = (rng.uniform(*self.scale), rng.uniform(*self.shift))

    def __call__(self, clip: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Apply the affine intensity change to ``clip [T, H, W]``."""
        clip = _as_frames(clip)
        return (clip * self._ab[0] + self._ab[1]).clamp(0.0, 1.0) if self._do else clip


class RandNoise(RandomTransform):
    """Add Gaussian noise of one standard deviation (drawn from ``std``) to every frame, then clip to ``[0, 1]``.

    The noise itself differs per pixel and frame, but comes from a seed drawn in ``randomize``: calling the transform
    twice after one ``randomize`` adds the same noise.
    """

    def __init__(self, std: tuple[float, float] = (0.0, 0.03), prob: float = 0.3) -> None:
        super().__init__(prob)
        self.std = std
        self._sigma, self._seed = 0.0, 0

    def _draw(self, rng: np.random.Generator) -> None:
        self._sigma = rng.uniform(*self.std)
        self._seed = int(rng.integers(2**31))

    def __call__(self, clip: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Add the noise to ``clip [T, H, W]``."""
        clip = _as_frames(clip)
        if not self._do or self._sigma == 0.0:
            return clip
        gen = torch.Generator().manual_seed(self._seed)
        return (clip + self._sigma * torch.randn(clip.shape, generator=gen)).clamp(0.0, 1.0)


class RandTemporalJitter(RandomTransform):
    """Move each frame index by up to ``max_shift`` frames within the slice's cycle (wrapping, never leaving it)."""

    def __init__(self, max_shift: int = 1, prob: float = 0.3) -> None:
        super().__init__(prob)
        self.max_shift = max_shift
        self._seed = 0

    def _draw(self, rng: np.random.Generator) -> None:
        self._seed = int(rng.integers(2**31))

    def __call__(self, frames: np.ndarray | Sequence[int], n_frames: int) -> np.ndarray:
        """Jitter ``frames`` (indices in ``[0, n_frames)``); the result stays in ``[0, n_frames)``."""
        frames = np.asarray(frames, dtype=np.int64)
        if not self._do or self.max_shift == 0:
            return frames
        shifts = np.random.default_rng(self._seed).integers(-self.max_shift, self.max_shift + 1, size=frames.shape)
        return (frames + shifts) % int(n_frames)


class RepeatChannels:
    """Grey ``[T, H, W]`` -> ``[channels, T, H, W]`` by repeating the image."""

    def __init__(self, channels: int = 3) -> None:
        self.channels = channels

    def __call__(self, clip: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Repeat ``clip [T, H, W]`` into ``[channels, T, H, W]``."""
        return _as_frames(clip)[None].repeat(self.channels, 1, 1, 1)


class MapTransform:
    """Dict wrapper: apply one array transform (same parameters) to the values under ``keys``.

    Raises:
        KeyError: naming the transform, if a key is missing from the dict (unless ``allow_missing``).
    """

    def __init__(self, transform: Callable[[Any], Any], keys: Sequence[Hashable], allow_missing: bool = False) -> None:
        self.transform, self.keys, self.allow_missing = transform, tuple(keys), allow_missing

    def randomize(self, rng: np.random.Generator) -> None:
        """Randomize the wrapped transform, if it is random."""
        if isinstance(self.transform, RandomTransform):
            self.transform.randomize(rng)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Return a copy of ``data`` with the transform applied to each of ``keys``."""
        out = dict(data)
        for key in self.keys:
            if key not in out:
                if self.allow_missing:
                    continue
                raise KeyError(f"{type(self).__name__}: key {key!r} is not in the data (has {sorted(map(str, out))})")
            out[key] = self.transform(out[key])
        return out


class RandResizedCropd(MapTransform):
    """Dict version of :class:`RandResizedCrop`: the same arguments after ``keys``."""

    def __init__(self, keys: Sequence[Hashable], *args: Any, allow_missing: bool = False, **kwargs: Any) -> None:
        super().__init__(RandResizedCrop(*args, **kwargs), keys, allow_missing)


class RandRotated(MapTransform):
    """Dict version of :class:`RandRotate`: the same arguments after ``keys``."""

    def __init__(self, keys: Sequence[Hashable], *args: Any, allow_missing: bool = False, **kwargs: Any) -> None:
        super().__init__(RandRotate(*args, **kwargs), keys, allow_missing)


class RandGammad(MapTransform):
    """Dict version of :class:`RandGamma`: the same arguments after ``keys``."""

    def __init__(self, keys: Sequence[Hashable], *args: Any, allow_missing: bool = False, **kwargs: Any) -> None:
        super().__init__(RandGamma(*args, **kwargs), keys, allow_missing)


class RandIntensityd(MapTransform):
    """Dict version of :class:`RandIntensity`: the same arguments after ``keys``."""

    def __init__(self, keys: Sequence[Hashable], *args: Any, allow_missing: bool = False, **kwargs: Any) -> None:
        super().__init__(RandIntensity(*args, **kwargs), keys, allow_missing)


class RandNoised(MapTransform):
    """Dict version of :class:`RandNoise`: the same arguments after ``keys``."""

    def __init__(self, keys: Sequence[Hashable], *args: Any, allow_missing: bool = False, **kwargs: Any) -> None:
        super().__init__(RandNoise(*args, **kwargs), keys, allow_missing)


class Resized(MapTransform):
    """Dict version of :class:`Resize`: the same arguments after ``keys``."""

    def __init__(self, keys: Sequence[Hashable], *args: Any, allow_missing: bool = False, **kwargs: Any) -> None:
        super().__init__(Resize(*args, **kwargs), keys, allow_missing)


class RepeatChannelsd(MapTransform):
    """Dict version of :class:`RepeatChannels`: the same arguments after ``keys``."""

    def __init__(self, keys: Sequence[Hashable], *args: Any, allow_missing: bool = False, **kwargs: Any) -> None:
        super().__init__(RepeatChannels(*args, **kwargs), keys, allow_missing)


class Compose:
    """Apply transforms in order; ``randomize(rng)`` randomizes each random one once per clip."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def randomize(self, rng: np.random.Generator) -> None:
        """Draw the parameters of every random transform, in order."""
        for t in self.transforms:
            if isinstance(t, RandomTransform | MapTransform | Compose):
                t.randomize(rng)

    def __call__(self, data: Any) -> Any:
        """Apply the transforms with the parameters drawn last."""
        for t in self.transforms:
            data = t(data)
        return data

    def apply(self, data: Any, rng: np.random.Generator) -> Any:
        """``randomize(rng)`` then apply."""
        self.randomize(rng)
        return self(data)


def build_clip_transform(
    size: Sequence[int],
    augment: AugmentConfig | None = None,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    channels: int = 3,
) -> Compose:
    """The array pipeline from a read clip ``[T, H, W]`` in ``[0, 1]`` to a model input ``[channels, T, *size]``.

    Args:
        size: output (rows, cols).
        augment: training augmentation; ``None`` for evaluation (resize only).
        normalize: the model preset's normalisation, applied last (injected: ``data`` does not import ``models``).
        channels: output channels (grey repeated).
    """
    steps: list[Callable[[Any], Any]] = []
    if augment is None:
        steps.append(Resize(size))
    else:
        a = augment
        steps += [
            RandResizedCrop(size, a.crop_scale, a.crop_ratio, prob=a.crop_prob),
            RandRotate(a.rotate_degrees, prob=a.rotate_prob),
            RandGamma(a.gamma, prob=a.gamma_prob),
            RandIntensity(a.intensity_scale, a.intensity_shift, prob=a.intensity_prob),
            RandNoise(a.noise_std, prob=a.noise_prob),
        ]
    steps.append(RepeatChannels(channels))
    if normalize is not None:
        steps.append(normalize)
    return Compose(steps)
