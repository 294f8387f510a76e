"""Cardiac motion from two key frames: a diffeomorphic demons registration per slice, warps and a volume curve.

A motion is a stationary velocity field ``v`` (pixels, ``[2, S, H, W]``: row and column components, no through-plane
motion) whose exponential ``exp(a * v)`` maps the ED frame towards ES for ``a`` in ``[0, 1]``. Exponentials are
computed by scaling and squaring, so every intermediate (and moderately extrapolated, ``a > 1``) deformation is a
diffeomorphism: labels warped through it keep their topology. The registration is log-domain demons (Vercauteren
et al., NeuroImage 2009) with symmetric forces on several channels (image intensity and/or smooth signed distances
of the label structures), on a two-level pyramid.

A frame at cycle phase ``phi`` is ED warped by ``exp(contraction(phi) * v)``; :func:`contraction_curve` is a smooth
cosine systole to ES at ``es_phase`` and a slower diastole with a short diastasis, so the volume curve has its
minimum exactly at the ES frame.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

__all__ = ["contraction_curve", "exp_field", "label_channels", "register", "taper", "warp", "warp_onehot"]

logger = logging.getLogger(__name__)


def _smooth(field: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing in-plane only (the last two axes)."""
    if sigma <= 0:
        return field
    return ndimage.gaussian_filter(field, sigma=(0,) * (field.ndim - 2) + (sigma, sigma))


def warp(image: np.ndarray, disp: np.ndarray, order: int = 1) -> np.ndarray:
    """Sample ``image`` ``[S, H, W]`` (or ``[C, S, H, W]``) at ``x + disp(x)``; ``disp`` is ``[2, S, H, W]``."""
    s, h, w = disp.shape[1:]
    coords = np.empty((3, s, h, w), np.float32)
    coords[0] = np.arange(s, dtype=np.float32)[:, None, None]
    coords[1] = np.arange(h, dtype=np.float32)[None, :, None] + disp[0]
    coords[2] = np.arange(w, dtype=np.float32)[None, None, :] + disp[1]
    if image.ndim == 3:
        return ndimage.map_coordinates(image, coords, order=order, mode="nearest").astype(np.float32, copy=False)
    return np.stack([ndimage.map_coordinates(c, coords, order=order, mode="nearest") for c in image]).astype(
        np.float32, copy=False
    )


def exp_field(velocity: np.ndarray, steps: int = 4) -> np.ndarray:
    """Displacement of the diffeomorphism ``exp(velocity)`` by scaling and squaring."""
    disp = velocity.astype(np.float32) / 2**steps
    for _ in range(steps):
        disp = disp + warp(disp, disp)
    return disp


def label_channels(labels: np.ndarray, structures: tuple[tuple[int, ...], ...], width_px: float = 4.0) -> np.ndarray:
    """Registration channels from a label map ``[S, H, W]``: ``tanh`` of the signed distance of each structure.

    Args:
        labels: integer label map.
        structures: label values forming each structure, e.g. ``((3,), (2, 3), (1,))`` for the LV cavity, the LV
            with its wall and the RV cavity.
        width_px: distance scale of the ``tanh`` (pixels); wide bands give forces far from the boundary.
    """
    out = np.zeros((len(structures), *labels.shape), dtype=np.float32)
    for i, values in enumerate(structures):
        inside = np.isin(labels, values)
        for k in range(labels.shape[0]):
            if inside[k].any():
                sdf = ndimage.distance_transform_edt(~inside[k]) - ndimage.distance_transform_edt(inside[k])
                out[i, k] = np.tanh(-sdf / width_px)
            else:
                out[i, k] = -1.0
    return out


def _gradient(image: np.ndarray) -> np.ndarray:
    return np.stack([np.gradient(image, axis=-2), np.gradient(image, axis=-1)])


def _demons(
    fixed: np.ndarray,
    moving: np.ndarray,
    velocity: np.ndarray,
    iterations: int,
    fluid: float,
    diffusion: float,
    step: float = 2.0,
) -> np.ndarray:
    grad_fixed = _gradient(fixed)
    for _ in range(iterations):
        warped = warp(moving, exp_field(velocity))
        diff = warped - fixed
        grad = 0.5 * (grad_fixed + _gradient(warped))
        norm = (grad**2).sum(axis=(0, 1)) + (diff**2).sum(axis=0) + 1e-6
        update = -(diff[None] * grad).sum(axis=1) / norm
        velocity = _smooth(velocity + step * _smooth(update, fluid), diffusion)
    return velocity


def register(
    fixed: np.ndarray,
    moving: np.ndarray,
    iterations: tuple[int, int] = (40, 20),
    fluid: float = 1.0,
    diffusion: float = 1.5,
) -> np.ndarray:
    """Velocity ``v`` with ``warp(moving, exp_field(v)) ~ fixed``, slice by slice (log-domain demons).

    Args:
        fixed: ``[C, S, H, W]`` channels of the target frame (e.g. ES), intensities about in ``[-1, 1]``.
        moving: the same channels of the frame to deform (e.g. ED).
        iterations: iterations at half and at full resolution.
        fluid: smoothing (pixels) of each update.
        diffusion: smoothing (pixels) of the velocity.

    Returns:
        ``[2, S, H, W]`` float32 velocity in pixels of the full-resolution grid.
    """
    fixed = np.asarray(fixed, np.float32)
    moving = np.asarray(moving, np.float32)
    h, w = fixed.shape[-2:]
    zoom = (1, 1, 0.5, 0.5)
    small_f = ndimage.zoom(_smooth(fixed, 1.0), zoom, order=1)
    small_m = ndimage.zoom(_smooth(moving, 1.0), zoom, order=1)
    velocity = np.zeros((2, *small_f.shape[1:]), np.float32)
    velocity = _demons(small_f, small_m, velocity, iterations[0], fluid, diffusion)
    factors = (1, 1, h / velocity.shape[-2], w / velocity.shape[-1])
    velocity = (
        ndimage.zoom(velocity, factors, order=1) * np.array([factors[2], factors[3]], np.float32)[:, None, None, None]
    )
    velocity = velocity[:, :, :h, :w]
    return _demons(fixed, moving, velocity, iterations[1], fluid, diffusion)


def taper(velocity: np.ndarray, ramp_px: int = 12) -> np.ndarray:
    """``velocity`` brought smoothly (cosine ramp of ``ramp_px``) to zero at the in-plane borders of its grid."""
    h, w = velocity.shape[-2:]

    def ramp(n: int) -> np.ndarray:
        edge = np.minimum(np.arange(n), np.arange(n)[::-1]).astype(np.float32)
        return 0.5 * (1 - np.cos(np.pi * np.clip(edge / max(ramp_px, 1), 0, 1)))

    return velocity * (ramp(h)[:, None] * ramp(w)[None, :])


def warp_onehot(onehot: np.ndarray, disp: np.ndarray) -> np.ndarray:
    """Warp soft label fractions ``[C, S, H, W]`` (linear interpolation); they still sum to one per voxel."""
    return warp(onehot, disp, order=1)


def contraction_curve(n_frames: int, es_phase: float = 0.35, diastasis: float = 0.2) -> np.ndarray:
    """Contraction ``a`` in ``[0, 1]`` at each of ``n_frames`` phases: 0 at ED (frame 0), 1 at the ES frame.

    Systole is a half cosine from ED to ES; diastole a half cosine back to 0 over the following phases, leaving a
    ``diastasis`` fraction of the cycle at ED shape (with a little atrial kick folded into the ramp).
    """
    phases = np.arange(n_frames) / n_frames
    k_es = max(1, round(es_phase * n_frames))
    es = k_es / n_frames
    a = np.empty(n_frames)
    systole = phases <= es
    a[systole] = 0.5 * (1 - np.cos(np.pi * phases[systole] / es))
    span = max(1e-6, 1 - es - diastasis)
    t = np.clip((phases[~systole] - es) / span, 0, 1)
    a[~systole] = 0.5 * (1 + np.cos(np.pi * t))
    a[k_es] = 1.0
    return a
