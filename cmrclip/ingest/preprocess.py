"""Preprocessing that keeps information: in-plane resampling to a fixed spacing, a crop around the heart, uint8.

Order of operations for one view ``[S, F, H, W]`` of rescaled intensities:

1. Heart centre: where the SAX stack moves most (temporal standard deviation, smoothed, weighted towards the
   image centre), as a point in patient coordinates; long-axis views use that point projected on their plane.
2. One interpolation per frame (bilinear, with a Gaussian pre-filter when down-sampling) onto an ``N x N`` grid
   at ``spacing_mm`` centred on the heart; outside the acquired field of view the grid is padded.
3. A robust percentile window over the cropped volume maps intensities to uint8; the window is stored.

The stored geometry stays exact: the position of stored pixel ``[0, 0]`` of each slice is recomputed, so a point
``p`` maps to stored pixel ``(row, col) = ((p - pos) . col_dir, (p - pos) . row_dir) / spacing``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "CropGrid",
    "Prepared",
    "heart_centre",
    "patient_to_pixel",
    "pixel_to_patient",
    "prepare_view",
    "resample_crop",
    "window_uint8",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CropGrid:
    """Where the stored grid lies in the acquired image: origin (row, col) in acquired pixels, and step sizes."""

    origin_rc: tuple[float, float]
    step_rc: tuple[float, float]
    size: int


def _dirs(orientation: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    o = np.asarray(orientation, dtype=np.float64)
    return o[:3], o[3:]


def pixel_to_patient(
    rc: np.ndarray, position: np.ndarray, orientation: tuple[float, ...], spacing: tuple[float, float]
) -> np.ndarray:
    """Patient coordinates (mm) of pixel ``(row, col)`` of an image at ``position`` (its pixel [0, 0])."""
    row_dir, col_dir = _dirs(orientation)
    r, c = float(rc[0]), float(rc[1])
    return np.asarray(position, np.float64) + c * spacing[1] * row_dir + r * spacing[0] * col_dir


def patient_to_pixel(
    point: np.ndarray, position: np.ndarray, orientation: tuple[float, ...], spacing: tuple[float, float]
) -> np.ndarray:
    """Pixel ``(row, col)`` (fractional) of a patient point projected on an image plane."""
    row_dir, col_dir = _dirs(orientation)
    d = np.asarray(point, np.float64) - np.asarray(position, np.float64)
    return np.array([d @ col_dir / spacing[0], d @ row_dir / spacing[1]])


def heart_centre(
    volume: np.ndarray,
    positions: np.ndarray,
    orientation: tuple[float, ...],
    spacing: tuple[float, float],
    smooth_mm: float = 10.0,
) -> np.ndarray:
    """Estimate the heart centre (patient mm) from where a cine moves most.

    Args:
        volume: ``[S, F, H, W]`` intensities.
        positions: ``[S, 3]`` positions of each slice's pixel [0, 0].
        orientation: ImageOrientationPatient of the slices.
        spacing: (row, col) pixel spacing in mm.
        smooth_mm: Gaussian smoothing of the motion map.
    """
    s, _, h, w = volume.shape
    keep = slice(s // 4, s - s // 4) if s >= 4 else slice(0, s)  # mid-ventricular slices move most reliably
    motion = volume[keep].std(axis=1).mean(axis=0)
    motion = ndimage.gaussian_filter(motion, sigma=(smooth_mm / spacing[0], smooth_mm / spacing[1]))
    rr, cc = np.mgrid[0:h, 0:w]
    prior = np.exp(-0.5 * (((rr - (h - 1) / 2) / (0.3 * h)) ** 2 + ((cc - (w - 1) / 2) / (0.3 * w)) ** 2))
    r, c = np.unravel_index(int(np.argmax(motion * prior)), motion.shape)
    mid = positions[keep].mean(axis=0)
    return pixel_to_patient(np.array([r, c]), mid, orientation, spacing)


def resample_crop(
    volume: np.ndarray,
    centre_rc: np.ndarray,
    spacing: tuple[float, float],
    spacing_mm: float,
    size: int,
) -> tuple[np.ndarray, np.ndarray, CropGrid]:
    """Resample every frame onto a ``size x size`` grid at ``spacing_mm`` centred on ``centre_rc``.

    Args:
        volume: ``[S, F, H, W]`` float intensities.
        centre_rc: Crop centre (row, col) in acquired pixels.
        spacing: Acquired (row, col) spacing in mm.
        spacing_mm: Output pixel spacing.
        size: Output rows and columns.

    Returns:
        The resampled volume ``[S, F, size, size]`` float32, a boolean mask of output pixels inside the acquired
        image ``[size, size]``, and the grid.
    """
    step = (spacing_mm / spacing[0], spacing_mm / spacing[1])
    half = (size - 1) / 2.0
    origin = (float(centre_rc[0]) - half * step[0], float(centre_rc[1]) - half * step[1])
    grid_r = origin[0] + np.arange(size) * step[0]
    grid_c = origin[1] + np.arange(size) * step[1]
    coords = np.stack(np.meshgrid(grid_r, grid_c, indexing="ij"))
    h, w = volume.shape[2:]
    inside = (coords[0] >= -0.5) & (coords[0] <= h - 0.5) & (coords[1] >= -0.5) & (coords[1] <= w - 0.5)
    sigma = (max(0.0, (step[0] - 1) / 2), max(0.0, (step[1] - 1) / 2))
    fill = float(volume.min())
    out = np.empty((*volume.shape[:2], size, size), dtype=np.float32)
    for i in range(volume.shape[0]):
        for j in range(volume.shape[1]):
            frame = volume[i, j].astype(np.float32, copy=False)
            if max(sigma) > 0:
                frame = ndimage.gaussian_filter(frame, sigma=sigma)
            out[i, j] = ndimage.map_coordinates(frame, coords, order=1, mode="nearest")
    out[:, :, ~inside] = fill
    return out, inside, CropGrid(origin, step, size)


def window_uint8(
    volume: np.ndarray, valid: np.ndarray | None = None, percentiles: tuple[float, float] = (0.5, 99.5)
) -> tuple[np.ndarray, tuple[float, float]]:
    """Map intensities to uint8 with a robust percentile window; return the pixels and the window (lo, hi).

    Args:
        volume: ``[..., H, W]`` intensities.
        valid: Optional ``[H, W]`` mask of pixels to compute the percentiles on (e.g. inside the acquired FOV).
        percentiles: Lower and upper percentiles.
    """
    sample = volume[..., valid] if valid is not None and valid.any() else volume
    lo, hi = (float(x) for x in np.percentile(sample, percentiles))
    if hi <= lo:
        hi = lo + 1.0
    scaled = (volume.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8), (lo, hi)


@dataclass(frozen=True)
class Prepared:
    """A preprocessed view: uint8 pixels ``[S, F, N, N]``, positions of their pixel [0, 0], window, grid."""

    pixels: np.ndarray
    positions_mm: np.ndarray
    window: tuple[float, float]
    grid: CropGrid


def prepare_view(
    volume: np.ndarray,
    positions: np.ndarray,
    orientation: tuple[float, ...],
    spacing: tuple[float, float],
    centre: np.ndarray,
    spacing_mm: float,
    size: int,
    percentiles: tuple[float, float] = (0.5, 99.5),
) -> Prepared:
    """Resample, crop around ``centre`` (patient mm, projected on the mid slice) and window one view.

    Args:
        volume: ``[S, F, H, W]`` rescaled intensities.
        positions: ``[S, 3]`` position of each slice's pixel [0, 0].
        orientation: ImageOrientationPatient.
        spacing: Acquired (row, col) spacing in mm.
        centre: Heart centre in patient mm.
        spacing_mm: Output spacing.
        size: Output rows and columns.
        percentiles: Window percentiles.
    """
    mid = positions[len(positions) // 2]
    centre_rc = patient_to_pixel(centre, mid, orientation, spacing)
    resampled, inside, grid = resample_crop(volume, centre_rc, spacing, spacing_mm, size)
    pixels, window = window_uint8(resampled, inside, percentiles)
    origin = np.array(grid.origin_rc)
    new_pos = np.stack([pixel_to_patient(origin, p, orientation, spacing) for p in positions])
    return Prepared(pixels, new_pos, window, grid)
