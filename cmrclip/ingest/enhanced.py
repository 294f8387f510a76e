"""Enhanced multi-frame MR (``EnhancedMRImageStorage``): one file holding slices x phases, geometry per frame.

An enhanced file keeps each frame's geometry in functional groups: the shared group (every frame) and the per-frame
group (frame ``i``) each may hold the plane position, plane orientation, pixel measures (spacing, thickness),
cardiac synchronisation (nominal trigger delay) and pixel value transformation (rescale). :func:`frame_geometry`
reads them at scan time; :func:`split_frames` turns such a file's header into one header per frame, so that the
frames are ordered into ``[S, F]`` stacks by the same geometry code as classic single-frame series (and can be
mixed with them in a study). Legacy multi-frame files (a cine at one position, ``FrameTime`` apart) have no
functional groups and keep their own path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom

if TYPE_CHECKING:
    from cmrclip.ingest.scan import Header

__all__ = ["ENHANCED_MR", "FrameGeometry", "finite_floats", "frame_geometry", "frame_rescale", "split_frames"]

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
"""SOP Class UID of Enhanced MR Image Storage."""


@dataclass(frozen=True)
class FrameGeometry:
    """One frame's geometry from the functional groups (None where the groups do not say)."""

    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    trigger_time: float | None
    temporal_index: int | None


def _item(groups: Any, sequence: str) -> pydicom.Dataset | None:
    """The first item of ``sequence`` inside a functional-group item (None when absent or empty)."""
    if groups is None:
        return None
    seq = groups.get(sequence)
    return seq[0] if seq else None


def _lookup(shared: Any, frame: Any, sequence: str, key: str) -> Any:
    """A value from the per-frame group, else from the shared group (the standard's precedence)."""
    for groups in (frame, shared):
        item = _item(groups, sequence)
        if item is not None and item.get(key) not in (None, ""):
            return item.get(key)
    return None


def finite_floats(value: Any, n: int) -> tuple[float, ...] | None:
    """``n`` finite floats from a DICOM multi-value, or None when it is not that."""
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(np.isfinite(out)) else None


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _one_frame(shared: Any, frame: Any) -> FrameGeometry:
    pos = finite_floats(_lookup(shared, frame, "PlanePositionSequence", "ImagePositionPatient"), 3)
    spacing = finite_floats(_lookup(shared, frame, "PixelMeasuresSequence", "PixelSpacing"), 2)
    temporal = _number(_lookup(shared, frame, "FrameContentSequence", "TemporalPositionIndex"))
    return FrameGeometry(
        position=(pos[0], pos[1], pos[2]) if pos else None,
        orientation=finite_floats(_lookup(shared, frame, "PlaneOrientationSequence", "ImageOrientationPatient"), 6),
        pixel_spacing=(spacing[0], spacing[1]) if spacing and min(spacing) > 0 else None,
        slice_thickness=_number(_lookup(shared, frame, "PixelMeasuresSequence", "SliceThickness")),
        trigger_time=_number(
            _lookup(shared, frame, "CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime")
        ),
        temporal_index=None if temporal is None else int(temporal),
    )


def frame_geometry(ds: pydicom.Dataset) -> tuple[FrameGeometry, ...]:
    """Each frame's geometry from an enhanced file's functional groups; ``()`` for any other file."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame:
        return ()
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    return tuple(_one_frame(shared, frame) for frame in per_frame)


def frame_rescale(ds: pydicom.Dataset, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (slope, intercept), ``[N]`` each: the pixel value transformation groups, else the top level."""
    top_slope, top_intercept = _number(ds.get("RescaleSlope")), _number(ds.get("RescaleIntercept"))
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or [None] * n_frames
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    slopes, intercepts = np.ones(n_frames, np.float32), np.zeros(n_frames, np.float32)
    for i, frame in enumerate(list(per_frame)[:n_frames]):
        slope = _number(_lookup(shared, frame, "PixelValueTransformationSequence", "RescaleSlope"))
        intercept = _number(_lookup(shared, frame, "PixelValueTransformationSequence", "RescaleIntercept"))
        slopes[i] = slope if slope else (top_slope or 1.0)
        intercepts[i] = intercept if intercept is not None else (top_intercept or 0.0)
    return slopes, intercepts


def split_frames(headers: Sequence[Header]) -> list[Header]:
    """One header per frame for enhanced files (their frame's geometry filled in); other headers pass through.

    A frame without its own value keeps the file's top-level one (e.g. ``PixelSpacing``); frames keep the file's
    order as a tie-breaker (``instance_number``) and point at their frame by ``frame_index``.
    """
    out: list[Header] = []
    for h in headers:
        if not h.frames:
            out.append(h)
            continue
        for i, g in enumerate(h.frames):
            out.append(
                dataclasses.replace(
                    h,
                    n_frames=1,
                    frames=(),
                    frame_index=i,
                    instance_number=g.temporal_index if g.temporal_index is not None else i,
                    position=g.position or h.position,
                    orientation=g.orientation or h.orientation,
                    pixel_spacing=g.pixel_spacing or h.pixel_spacing,
                    spacing_source="PixelMeasuresSequence" if g.pixel_spacing else h.spacing_source,
                    slice_thickness=g.slice_thickness if g.slice_thickness is not None else h.slice_thickness,
                    trigger_time=g.trigger_time if g.trigger_time is not None else h.trigger_time,
                )
            )
    return out
