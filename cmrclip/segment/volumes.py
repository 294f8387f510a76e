"""Ventricular volumes from short-axis label masks: Simpson's disc summation, ED/ES, LVEF, LV mass, RV volumes.

Labels (:data:`LABELS`): 0 background, 1 LV cavity, 2 LV myocardium, 3 RV cavity.

Disc summation: every SAX slice is a disc whose area is its pixel count times the pixel area, and whose thickness
is its share of the stack along the slice normal: half the distance to the previous slice plus half the distance
to the next one (the distances come from the slice positions, so uneven spacing, gaps and overlapping slices are
each counted once; the volume across a gap is split between the two slices beside it). The two end slices get a
full disc as thick as the distance to their one neighbour. Basal and apical slices: every slice on which the LV
cavity is segmented counts, with no partial-volume correction; a basal slice that shows atrium (no closed
myocardial ring) is left to the segmentation, which is trained on expert masks that exclude atrium. The LV volume
includes papillary muscles and trabeculae where the masks put them in the cavity (ACDC's convention).

ED is the frame of largest LV volume and ES of smallest (after a 3-frame circular smoothing of the curve when the
study has at least 6 frames); RV volumes are read at the same two frames. LV mass = myocardial volume at ED x 1.05
g/mL. Without an in-plane pixel spacing no volume in mL is reported (EF still is: it is a ratio); without slice
positions or spacing the slices are taken as equally spaced for EF only. A single slice gives no volume.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "LABELS",
    "MYOCARDIUM_DENSITY_G_PER_ML",
    "Volumes",
    "disc_thickness_mm",
    "find_ed_es",
    "volumes_from_masks",
]

logger = logging.getLogger(__name__)

LABELS: dict[str, int] = {"background": 0, "lv_cavity": 1, "lv_myocardium": 2, "rv_cavity": 3}
MYOCARDIUM_DENSITY_G_PER_ML = 1.05
_GAP_FACTOR = 1.5


@dataclass
class Volumes:
    """Volumes of one study; ``None`` where the input cannot give the value (see ``warnings``).

    Attributes:
        lv_volume_curve_ml: LV cavity volume per frame (mL).
        rv_volume_curve_ml: RV cavity volume per frame (mL).
        ed_frame: end-diastolic frame (0-based, largest LV volume).
        es_frame: end-systolic frame (smallest LV volume).
        edv_ml, esv_ml, sv_ml: LV end-diastolic, end-systolic and stroke volumes (mL).
        lvef: LV ejection fraction (%).
        lv_mass_g: myocardial volume at ED x 1.05 g/mL.
        rvedv_ml, rvesv_ml: RV cavity volumes at the ED and ES frames (mL).
        rvef: RV ejection fraction (%).
        warnings: why a value is missing or less certain.
    """

    lv_volume_curve_ml: list[float] | None = None
    rv_volume_curve_ml: list[float] | None = None
    ed_frame: int | None = None
    es_frame: int | None = None
    edv_ml: float | None = None
    esv_ml: float | None = None
    sv_ml: float | None = None
    lvef: float | None = None
    lv_mass_g: float | None = None
    rvedv_ml: float | None = None
    rvesv_ml: float | None = None
    rvef: float | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (floats rounded to 0.1)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 1)
            elif isinstance(value, list) and value and isinstance(value[0], float):
                out[key] = [round(v, 1) for v in value]
        return out


def disc_thickness_mm(positions_mm: np.ndarray, warnings: list[str] | None = None) -> np.ndarray:
    """The thickness of each slice's disc from the slice positions (see the module docstring).

    Args:
        positions_mm: ``[S, 3]`` slice origins (ImagePositionPatient) or ``[S]`` positions along the normal.
        warnings: a list that gets a line per gap or duplicated position found.

    Returns:
        ``[S]`` thickness in mm (all zero for a single slice).
    """
    pos = np.asarray(positions_mm, dtype=np.float64)
    if pos.ndim == 2:
        axis = pos[-1] - pos[0]
        norm = np.linalg.norm(axis)
        pos = (pos - pos[0]) @ (axis / norm) if norm > 0 else np.zeros(len(pos))
    if pos.size < 2:
        return np.zeros(pos.size)
    order = np.argsort(pos, kind="stable")
    gaps = np.diff(pos[order])
    notes = warnings if warnings is not None else []
    positive = gaps[gaps > 1e-3]
    if positive.size < gaps.size:
        notes.append("two SAX slices share one position; each position is counted once")
    if positive.size and float(positive.max()) > _GAP_FACTOR * float(positive.min()):
        worst, usual = float(positive.max()), float(positive.min())
        notes.append(f"{worst:.1f} mm gap between SAX slices (others {usual:.1f} mm): volume interpolated across it")
    half = np.concatenate([[gaps[0]], gaps]) / 2 + np.concatenate([gaps, [gaps[-1]]]) / 2
    out = np.empty_like(half)
    out[order] = half
    return out


def _smooth_circular(curve: np.ndarray) -> np.ndarray:
    if curve.size < 6:
        return curve
    return (np.roll(curve, 1) + curve + np.roll(curve, -1)) / 3


def find_ed_es(lv_curve: np.ndarray) -> tuple[int, int]:
    """ED (largest) and ES (smallest) frame of an LV volume curve over one cycle.

    Args:
        lv_curve: ``[F]`` LV volume per frame (any unit), ``F >= 2``.

    Returns:
        ``(ed_frame, es_frame)``.
    """
    smooth = _smooth_circular(np.asarray(lv_curve, dtype=np.float64))
    return int(np.argmax(smooth)), int(np.argmin(smooth))


def _ef(edv: float, esv: float) -> float | None:
    return float(100.0 * (edv - esv) / edv) if edv > 0 else None


def _spacing_inputs(
    n_slices: int,
    pixel_spacing_mm: tuple[float, float] | None,
    slice_positions_mm: np.ndarray | None,
    slice_spacing_mm: float | None,
    warnings: list[str],
) -> tuple[float | None, np.ndarray]:
    """Pixel area (mm², None if unknown) and per-slice thickness (mm; relative units if unknown)."""
    area = None
    if pixel_spacing_mm is not None and all(math.isfinite(s) and s > 0 for s in pixel_spacing_mm):
        area = float(pixel_spacing_mm[0]) * float(pixel_spacing_mm[1])
    else:
        warnings.append("no in-plane pixel spacing: volumes in mL are not reported (EF still is)")
    if slice_positions_mm is not None and np.all(np.isfinite(slice_positions_mm)):
        return area, disc_thickness_mm(slice_positions_mm, warnings)
    if slice_spacing_mm is not None and math.isfinite(slice_spacing_mm) and slice_spacing_mm > 0:
        return area, np.full(n_slices, float(slice_spacing_mm))
    warnings.append("no slice positions or spacing: slices taken as equally spaced for EF; no volumes in mL")
    return None, np.ones(n_slices)


def volumes_from_masks(
    masks: np.ndarray,
    pixel_spacing_mm: tuple[float, float] | None,
    slice_positions_mm: np.ndarray | None = None,
    slice_spacing_mm: float | None = None,
    ed_es_frames: tuple[int, int] | None = None,
) -> Volumes:
    """LV/RV volumes, EF and LV mass of a SAX stack of label masks.

    Args:
        masks: uint8 ``[S, F, H, W]`` labels (:data:`LABELS`), slices in any order.
        pixel_spacing_mm: (row, column) spacing; None when unknown.
        slice_positions_mm: ``[S, 3]`` or ``[S]`` slice positions (preferred: gives uneven spacing and gaps).
        slice_spacing_mm: centre-to-centre spacing, used when no positions are given.
        ed_es_frames: known (ED, ES) frames; found from the LV curve when None.

    Returns:
        The volumes; values the input cannot give are None and a warning says why.
    """
    masks = np.asarray(masks)
    if masks.ndim != 4:
        return Volumes(warnings=[f"masks must be [slices, frames, H, W], got shape {masks.shape}: no volumes"])
    n_slices, n_frames = masks.shape[:2]
    if n_slices < 2:
        return Volumes(warnings=["a single SAX slice cannot give a volume: no volumes"])
    warnings: list[str] = []
    area, thick = _spacing_inputs(n_slices, pixel_spacing_mm, slice_positions_mm, slice_spacing_mm, warnings)
    counts = np.stack([(masks == k).sum(axis=(2, 3)) for k in (1, 2, 3)]).astype(np.float64)  # [3, S, F]
    rel = np.einsum("ksf,s->kf", counts, thick)  # pixel counts x mm
    lv, myo, rv = rel * (area if area is not None else 1.0) / 1000.0
    if n_frames < 2 and ed_es_frames is None:
        return Volumes(warnings=[*warnings, "one frame only: no ED/ES, so no EF"])
    ed, es = ed_es_frames if ed_es_frames is not None else find_ed_es(lv)
    if lv[ed] <= 0:
        return Volumes(ed_frame=ed, es_frame=es, warnings=[*warnings, "no LV cavity segmented at ED: no volumes"])
    out = Volumes(ed_frame=ed, es_frame=es, lvef=_ef(lv[ed], lv[es]), warnings=warnings)
    out.rvef = _ef(rv[ed], rv[es])
    if out.rvef is None:
        warnings.append("no RV cavity segmented at ED: no RV volumes")
    if area is not None:
        out.lv_volume_curve_ml, out.rv_volume_curve_ml = lv.tolist(), rv.tolist()
        out.edv_ml, out.esv_ml, out.sv_ml = float(lv[ed]), float(lv[es]), float(lv[ed] - lv[es])
        out.lv_mass_g = float(myo[ed]) * MYOCARDIUM_DENSITY_G_PER_ML
        if out.rvef is not None:
            out.rvedv_ml, out.rvesv_ml = float(rv[ed]), float(rv[es])
    return out
