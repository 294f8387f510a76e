"""Volumetric LVEF beside the regression LVEF: the ``volumes`` block of a prediction and the contour overlays.

A study model's LVEF is a regression; a segmenter (:mod:`cmrclip.segment`) gives LVEF from contours, with EDV, ESV,
SV and LV mass that a reader can check. When the two disagree by more than :data:`LVEF_MARGIN_POINTS`, the
prediction carries an ``lvef_disagreement`` warning: one of the two is wrong, and the contours show which.

The margin: two expert readers contouring the same CMR cine give LVEFs whose 95 % limits of agreement are about
±5-7 points. A regression and a segmentation that were each as good as a second reader would therefore differ by
more than 7 points in only about one study in twenty; 10 points leaves room for the larger error of automatic
contours on atypical hearts, and is still well inside the gap that changes a clinical category (e.g. 26 % vs 77 %).
The regression's own conformal interval is shown beside it; its half-width is wider than 10 points for small
training sets, so the warning does not wait for it.
"""

from __future__ import annotations

import base64
import io
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from cmrclip.segment import SegmentationResult

__all__ = ["LVEF_MARGIN_POINTS", "lvef_disagreement", "mask_overlay_gif", "slice_overlays", "volumes_block"]

logger = logging.getLogger(__name__)

LVEF_MARGIN_POINTS = 10.0
# label -> RGB: LV cavity red, LV myocardium green, RV cavity blue
_COLOURS = np.array([[0, 0, 0], [230, 60, 50], [60, 200, 90], [60, 130, 240]], dtype=np.float32)
_OVERLAY_PX = 128


def lvef_disagreement(regression: float, volumetric: float, margin: float = LVEF_MARGIN_POINTS) -> str | None:
    """The warning when ``|regression - volumetric| > margin`` (LVEF in percent), else None."""
    gap = abs(regression - volumetric)
    if gap <= margin:
        return None
    return (
        f"lvef_disagreement: regression LVEF {regression:.1f} % vs volumetric (contours) {volumetric:.1f} %, "
        f"{gap:.1f} points apart (more than {margin:g}); check the contours before trusting either"
    )


def volumes_block(
    result: SegmentationResult, regression_lvef: float | None, margin: float = LVEF_MARGIN_POINTS
) -> tuple[dict[str, Any], list[str]]:
    """The prediction's ``volumes`` block and the warnings it adds.

    Args:
        result: the study's segmentation (masks and volumes).
        regression_lvef: the study model's LVEF in percent (None when the model predicts none).
        margin: largest difference between the two LVEFs that raises no warning (percentage points).

    Returns:
        ``volumes.to_dict()`` plus ``lvef_regression``, ``lvef_difference`` (regression - volumetric),
        ``lvef_margin`` and ``lvef_disagreement``; and the warnings (segmentation input problems, missing values,
        the disagreement).
    """
    block = result.volumes.to_dict()
    warnings = [f"segmentation: {w}" for w in [*result.warnings, *result.volumes.warnings]]
    volumetric = result.volumes.lvef
    difference = None if volumetric is None or regression_lvef is None else regression_lvef - volumetric
    disagreement = None if difference is None else lvef_disagreement(regression_lvef, volumetric, margin)
    if disagreement:
        warnings.append(disagreement)
    block |= {
        "lvef_regression": None if regression_lvef is None else round(regression_lvef, 1),
        "lvef_difference": None if difference is None else round(difference, 1),
        "lvef_margin": margin,
        "lvef_disagreement": disagreement is not None,
    }
    return block, warnings


def _display(pixels: np.ndarray) -> np.ndarray:
    """Grey levels -> uint8 for display (1st..99th percentile of the slice stretched to 0..255)."""
    lo, hi = np.percentile(pixels, [1, 99])
    return (np.clip((pixels - lo) / max(hi - lo, 1e-6), 0, 1) * 255).round().astype(np.uint8)


def mask_overlay_gif(frames: np.ndarray, masks: np.ndarray, alpha: float = 0.45, frame_ms: int = 60) -> bytes:
    """Colour the labels (LV cavity red, myocardium green, RV blue) over grey frames; an animated, looping GIF.

    Args:
        frames: (F, H, W) uint8 grey frames.
        masks: (F, H, W) labels 0-3, same size.
        alpha: opacity of the colour over a labelled pixel.
        frame_ms: display time of one frame.
    """
    grey = np.repeat(frames[..., None].astype(np.float32), 3, axis=-1)
    weight = alpha * (masks > 0)[..., None]
    blended = ((1 - weight) * grey + weight * _COLOURS[masks]).round().astype(np.uint8)
    images = [Image.fromarray(f, mode="RGB") for f in blended]
    scale = min(1.0, _OVERLAY_PX / max(frames.shape[1:]))
    if scale < 1.0:
        size = (max(1, round(frames.shape[2] * scale)), max(1, round(frames.shape[1] * scale)))
        images = [im.resize(size, Image.Resampling.NEAREST) for im in images]
    images = [im.quantize(colors=64, dither=Image.Dither.NONE) for im in images]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return buf.getvalue()


def slice_overlays(result: SegmentationResult) -> list[dict[str, Any]]:
    """One contour overlay per SAX slice: ``slice_index`` and ``overlay_gif`` (a ``data:image/gif;base64`` URI)."""
    pixels = np.asarray(result.stack.pixels, dtype=np.float32)
    out = []
    for s in range(result.masks.shape[0]):
        gif = mask_overlay_gif(_display(pixels[s]), result.masks[s])
        out.append({"slice_index": s, "overlay_gif": "data:image/gif;base64," + base64.b64encode(gif).decode("ascii")})
    return out
