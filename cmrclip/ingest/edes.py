"""ED/ES-only studies as cines: an interpolated ED -> ES -> ED cycle from two key-frame volumes.

How a two-frame study becomes a clip (applied after the usual resampling and crop, on the stored 1.25 mm grid):

1. Register ES to ED and ED to ES, slice by slice, with diffeomorphic demons on the image intensities
   (:func:`cmrclip.synth.motion.register`), giving velocities ``v_fwd`` (ED -> ES) and ``v_bwd`` (ES -> ED).
2. Lay out ``n_frames`` phases with the contraction curve ``a(phi)`` of :func:`cmrclip.synth.motion.contraction_curve`
   (0 at ED, 1 at ES, ES at ``es_phase`` of the cycle, a cosine systole, a slower diastole and a diastasis).
3. Frame ``phi`` is ``(1 - a) * ED o exp(a v_fwd) + a * ES o exp((1 - a) v_bwd)``: at ``a = 0`` the real ED image,
   at ``a = 1`` the real ES image, in between both key frames moved towards each other and cross-faded.

The key frames are the acquired images unchanged, so any measurement at ED and ES is that of the inputs; the
in-between frames only add a plausible motion (``edes_test.py`` checks that the cavity shrinks monotonically to ES
and that the ED -> ES warp reproduces the ES cavity, i.e. that the cycle does not bias LVEF).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from cmrclip.errors import DataError
from cmrclip.ingest.preprocess import heart_centre, prepare_view
from cmrclip.ingest.store import ViewData
from cmrclip.synth.motion import contraction_curve, exp_field, register, taper, warp
from cmrclip.synth.sources import ACDC_ASSUMED_SPACING_MM, AcdcSubject, read_acdc_pack

__all__ = ["AcdcSubject", "EdesMotion", "cycle_pixels", "edes_cycle", "edes_motion", "edes_view", "read_acdc_pack"]

logger = logging.getLogger(__name__)

DEFAULT_FRAMES = 20
DEFAULT_ES_PHASE = 0.35
REGION_PX = 112


@dataclass(frozen=True)
class EdesMotion:
    """Forward (ED -> ES) and backward (ES -> ED) velocities ``[2, S, H, W]`` of one ED/ES pair."""

    forward: np.ndarray
    backward: np.ndarray
    box: tuple[slice, slice, slice]


def _channel(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (1, 99))
    return np.clip((image.astype(np.float32) - lo) / max(hi - lo, 1e-6), 0, 1)[None]


def _centre(shape: tuple[int, ...], size: int) -> tuple[slice, slice, slice]:
    h, w = shape[-2:]
    r0, c0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return slice(None), slice(r0, r0 + size), slice(c0, c0 + size)


def edes_motion(image_ed: np.ndarray, image_es: np.ndarray, region_px: int = REGION_PX) -> EdesMotion:
    """Register the two key frames ``[S, H, W]`` both ways, in their central ``region_px`` square.

    After ingest's heart-centred crop that square holds the heart; the velocities go smoothly to zero at its border.
    """
    box = _centre(image_ed.shape, region_px)
    ed, es = _channel(image_ed[box]), _channel(image_es[box])
    return EdesMotion(taper(register(es, ed)), taper(register(ed, es)), box)


def edes_cycle(
    image_ed: np.ndarray,
    image_es: np.ndarray,
    n_frames: int = DEFAULT_FRAMES,
    es_phase: float = DEFAULT_ES_PHASE,
    motion: EdesMotion | None = None,
) -> tuple[np.ndarray, int]:
    """An ED -> ES -> ED cycle ``[S, F, H, W]`` float32 from two key frames ``[S, H, W]``; returns it and the ES frame.

    Raises:
        DataError: if the key frames differ in shape or ``n_frames`` < 3.
    """
    if image_ed.shape != image_es.shape or image_ed.ndim != 3:
        raise DataError(f"ED and ES volumes must be [z, y, x] of one shape; got {image_ed.shape} and {image_es.shape}")
    if n_frames < 3:
        raise DataError(f"an ED/ES cycle needs at least 3 frames (got {n_frames})")
    motion = motion or edes_motion(image_ed, image_es)
    ed, es = image_ed.astype(np.float32), image_es.astype(np.float32)
    a = contraction_curve(n_frames, es_phase)
    frames = np.empty((ed.shape[0], n_frames, *ed.shape[1:]), np.float32)
    box = motion.box
    for f, af in enumerate(a):
        frames[:, f] = (1 - af) * ed + af * es
        if 0 < af < 1:
            fwd = warp(ed[box], exp_field(af * motion.forward))
            bwd = warp(es[box], exp_field((1 - af) * motion.backward))
            frames[:, f][box] = (1 - af) * fwd + af * bwd
    return frames, int(np.argmax(a))


def cycle_pixels(pixels: np.ndarray, n_frames: int, es_phase: float = DEFAULT_ES_PHASE) -> tuple[np.ndarray, int]:
    """Turn a stored two-frame (ED, ES) view ``uint8 [S, 2, H, W]`` into a uint8 cycle ``[S, F, H, W]``."""
    frames, k_es = edes_cycle(pixels[:, 0], pixels[:, 1], n_frames, es_phase)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8), k_es


def edes_view(
    image_ed: np.ndarray,
    image_es: np.ndarray,
    spacing_mm: tuple[float, float, float] | None = None,
    n_frames: int = DEFAULT_FRAMES,
    *,
    es_phase: float = DEFAULT_ES_PHASE,
    out_spacing_mm: float = 1.25,
    crop_size: int = 192,
    window_percentiles: tuple[float, float] = (0.5, 99.5),
) -> ViewData:
    """A SAX cine view (the store's conventions) from ED and ES volumes ``[z, y, x]`` (e.g. an ACDC pack).

    The volumes are resampled to ``out_spacing_mm``, cropped around the heart and windowed exactly like ingested
    NIfTI (:func:`cmrclip.ingest.preprocess.prepare_view`), then the ED/ES cycle is interpolated.

    Args:
        image_ed: ED volume ``[z, y, x]``.
        image_es: ES volume, same shape.
        spacing_mm: (slice, row, column) spacing; None assumes ACDC's typical ``(10, 1.5, 1.5)`` (EF does not depend
            on it; volumes in mL do), recorded as ``spacing_source = assumed`` in the provenance.
        n_frames: frames of the cycle.
        es_phase: where ES falls in the cycle (fraction).
        out_spacing_mm: stored in-plane spacing (ingest's default 1.25 mm).
        crop_size: stored rows and columns (ingest's default 192).
        window_percentiles: intensity window (ingest's default).

    Raises:
        DataError: for volumes of different shapes or fewer than 3 frames.
    """
    if image_ed.shape != image_es.shape or image_ed.ndim != 3:
        raise DataError(f"ED and ES volumes must be [z, y, x] of one shape; got {image_ed.shape} and {image_es.shape}")
    spacing_source = "given" if spacing_mm is not None else "assumed"
    dz, dy, dx = (float(s) for s in (spacing_mm or ACDC_ASSUMED_SPACING_MM))
    volume = np.stack([image_ed, image_es], axis=1).astype(np.float32)
    positions = np.stack([np.zeros(len(volume)), np.zeros(len(volume)), np.arange(len(volume)) * dz], axis=1)
    orientation = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    centre = heart_centre(volume, positions, orientation, (dy, dx))
    prep = prepare_view(volume, positions, orientation, (dy, dx), centre, out_spacing_mm, crop_size,
                        window_percentiles)  # fmt: skip
    pixels, k_es = cycle_pixels(prep.pixels, n_frames, es_phase)
    provenance: dict[str, Any] = {"source_format": "edes", "spacing_source": spacing_source, "frames": "ED,ES",
                                  "edes_cycle": "demons", "ed_frame": 0, "es_frame": k_es,
                                  "acquired_spacing_mm": (dy, dx)}  # fmt: skip
    return ViewData(
        pixels=pixels,
        trigger_times_ms=np.full(pixels.shape[:2], np.nan),
        positions_mm=prep.positions_mm,
        pixel_spacing_mm=(out_spacing_mm, out_spacing_mm),
        slice_thickness_mm=dz,
        orientation=orientation,
        window=prep.window,
        view_source="given",
        provenance=provenance,
    )
