"""The inputs the network sees, shared by training and inference: 2.5D slice stacks, resampling, intensity scaling."""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms import ScaleIntensityRangePercentiles, Zoom

__all__ = ["context_stack", "normalize_images", "resample", "zoom_factors"]

_NORMALIZE = ScaleIntensityRangePercentiles(lower=1, upper=99, b_min=0.0, b_max=1.0, clip=True, channel_wise=True)


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
    return torch.as_tensor(out)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """Scale each channel of ``[C, H, W]`` so that its 1st..99th percentile maps to 0..1 (clipped)."""
    return torch.as_tensor(_NORMALIZE(images))


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
