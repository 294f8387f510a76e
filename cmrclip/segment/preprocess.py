"""The inputs the network sees, shared by training and inference: 2.5D slice stacks, resampling, intensity scaling."""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms import Zoom
from monai.utils import convert_to_tensor

__all__ = ["context_stack", "normalize_images", "resample", "zoom_factors"]

_PERCENTILES = (1.0, 99.0)


def zoom_factors(pixel_spacing_mm: tuple[float, float] | None, target_mm: float) -> tuple[float, float]:
    """Zoom that brings pixels of ``pixel_spacing_mm`` to ``target_mm`` (1, 1 when the spacing is unknown)."""
    if pixel_spacing_mm is None or not all(np.isfinite(s) and s > 0 for s in pixel_spacing_mm):
        return 1.0, 1.0
    return float(pixel_spacing_mm[0]) / target_mm, float(pixel_spacing_mm[1]) / target_mm


def resample(images: np.ndarray | torch.Tensor, zoom: tuple[float, float], mode: str = "bilinear") -> torch.Tensor:
    """Resample channel-first 2D images ``[C, H, W]`` by ``zoom`` (MONAI ``Zoom``; ``mode="nearest"`` for labels)."""
    data = torch.as_tensor(np.asarray(images, dtype=np.float32) if isinstance(images, np.ndarray) else images)
    if zoom == (1.0, 1.0):
        return data.float()
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    out = Zoom(zoom=zoom, mode=mode, keep_size=False, **kwargs)(data.float())
    return convert_to_tensor(out, track_meta=False)


def normalize_images(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Scale each channel of ``[C, ...]`` so that its 1st..99th percentile maps to 0..1 (clipped).

    The same values as MONAI's ``ScaleIntensityRangePercentiles(1, 99, 0, 1, clip=True, channel_wise=True)``
    (a test checks it), computed in one vectorised numpy call: MONAI's runs a torch quantile per channel, which
    took most of a study's inference time on CPU.
    """
    x = np.asarray(images, dtype=np.float32)
    lo, hi = np.percentile(x.reshape(x.shape[0], -1), _PERCENTILES, axis=1).astype(np.float32)
    shape = (-1,) + (1,) * (x.ndim - 1)
    scale = np.where(hi > lo, hi - lo, np.float32(1.0)).reshape(shape)
    return torch.from_numpy(np.clip((x - lo.reshape(shape)) / scale, 0.0, 1.0))


def context_stack(volume: np.ndarray, slice_index: int, context: int) -> np.ndarray:
    """The 2.5D input of one slice: itself and ``context`` neighbours each side (edges repeat the end slice).

    Args:
        volume: ``[S, ...]`` slices ordered along the stack normal.
        slice_index: the slice in the middle.
        context: neighbours on each side.

    Returns:
        ``[1 + 2 * context, ...]``, the middle slice at index ``context``.
    """
    idx = np.clip(np.arange(slice_index - context, slice_index + context + 1), 0, volume.shape[0] - 1)
    return volume[idx]
