"""SynthSeg-style domain randomisation of a real cine: contrast, tissue intensities, bias, blur, resolution, noise.

One :class:`Appearance` is drawn per study (every slice and frame gets the same contrast and bias, each frame its own
noise), so a site's contrast cannot be learned as a shortcut while the motion stays coherent. Inputs are intensities
normalised to about ``[0, 1]`` and the soft label fractions of the frame (ACDC label order: background, RV cavity,
LV myocardium, LV cavity), so blood pools and myocardium get their own random intensity shifts (Billot et al.,
SynthSeg, Medical Image Analysis 2023), on top of the real texture.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Appearance", "draw_appearance", "render_frame"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Appearance:
    """Per-study randomisation parameters (see :func:`draw_appearance`)."""

    lut_x: np.ndarray
    lut_y: np.ndarray
    gamma: float
    tissue_shift: np.ndarray
    bias: np.ndarray
    blur_px: float
    phase_resolution: float
    noise: float
    ghost: float
    ghost_shift: int


def _bias_field(rng: np.random.Generator, shape: tuple[int, int], strength: float) -> np.ndarray:
    coarse = rng.normal(0, 1, (4, 4))
    field = ndimage.zoom(coarse, (shape[0] / 4, shape[1] / 4), order=3)[: shape[0], : shape[1]]
    return np.exp(strength * field / max(float(np.abs(field).max()), 1e-6)).astype(np.float32)


def draw_appearance(rng: np.random.Generator, shape: tuple[int, int], ghost_max: float = 0.1) -> Appearance:
    """Draw one study's appearance for frames of in-plane ``shape``.

    Contrast: a random monotone piecewise-linear intensity curve (5 knots) and a gamma in ``[0.7, 1.4]``; tissue
    shifts of the RV cavity, myocardium and LV cavity in ``[-0.12, 0.12]``; a smooth multiplicative bias of up to
    +-35 %; Gaussian blur up to 0.8 px; a phase-encode resolution loss up to 1.6x; Rician noise 1-5 % of the range;
    a ghost of up to ``ghost_max`` along the phase-encode direction in a third of the studies.
    """
    knots = np.sort(rng.uniform(0.05, 0.95, 3))
    lut_y = np.concatenate([[0.0], np.sort(rng.uniform(0.05, 0.95, 3)), [1.0]])
    return Appearance(
        lut_x=np.concatenate([[0.0], knots, [1.0]]),
        lut_y=0.5 * lut_y + 0.5 * np.concatenate([[0.0], knots, [1.0]]),
        gamma=float(np.exp(rng.uniform(np.log(0.7), np.log(1.4)))),
        tissue_shift=np.concatenate([[0.0], rng.uniform(-0.12, 0.12, 3)]).astype(np.float32),
        bias=_bias_field(rng, shape, float(rng.uniform(0, 0.3))),
        blur_px=float(rng.uniform(0, 0.8)),
        phase_resolution=float(rng.uniform(1.0, 1.6)) if rng.random() < 0.5 else 1.0,
        noise=float(rng.uniform(0.01, 0.05)),
        ghost=float(rng.uniform(0.02, ghost_max)) if rng.random() < 0.33 else 0.0,
        ghost_shift=int(rng.integers(shape[0] // 4, shape[0] // 2)),
    )


def render_frame(image: np.ndarray, fractions: np.ndarray, app: Appearance, rng: np.random.Generator) -> np.ndarray:
    """One frame ``[S, H, W]`` (normalised intensities) through the appearance; ``fractions`` is ``[4, S, H, W]``.

    Returns:
        float32 ``[S, H, W]`` in ``[0, 1]``.
    """
    x = np.interp(np.clip(image, 0, 1), app.lut_x, app.lut_y) ** app.gamma
    x = x + np.tensordot(app.tissue_shift, fractions, axes=1)
    x = np.clip(x, 0, None) * app.bias
    if app.blur_px > 0:
        x = ndimage.gaussian_filter(x, (0, app.blur_px, app.blur_px))
    if app.phase_resolution > 1:  # fewer phase-encode lines: a wider point-spread function along the rows
        x = ndimage.gaussian_filter1d(x, 0.5 * np.sqrt(app.phase_resolution**2 - 1) * 2, axis=1)
    if app.ghost:
        x = x + app.ghost * np.roll(x, app.ghost_shift, axis=1)
    real = x + rng.normal(0, app.noise, x.shape)
    imag = rng.normal(0, app.noise, x.shape)
    return np.clip(np.hypot(real, imag), 0, 1).astype(np.float32)
