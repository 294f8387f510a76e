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
import logging
from typing import TYPE_CHECKING, Any

from cmrclip.segment.outputs import overlay_gif

if TYPE_CHECKING:
    from cmrclip.segment import SegmentationResult

__all__ = ["LVEF_MARGIN_POINTS", "lvef_disagreement", "slice_overlays", "volumes_block"]

logger = logging.getLogger(__name__)

LVEF_MARGIN_POINTS = 10.0
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


def slice_overlays(result: SegmentationResult) -> list[dict[str, Any]]:
    """One contour overlay per SAX slice: ``slice_index`` and ``overlay_gif`` (a ``data:image/gif;base64`` URI)."""
    out = []
    for s in range(result.masks.shape[0]):
        gif = overlay_gif(result.stack.pixels[s], result.masks[s], max_px=_OVERLAY_PX)
        out.append({"slice_index": s, "overlay_gif": "data:image/gif;base64," + base64.b64encode(gif).decode("ascii")})
    return out
