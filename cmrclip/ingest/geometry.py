"""Order a cine series by geometry: slices by their position along the slice normal, phases by TriggerTime.

Never by file name or InstanceNumber (InstanceNumber only breaks ties, and orders phases when TriggerTime is missing,
which is recorded in the layout's provenance). Duplicated instances are dropped, and slices whose phase count or
matrix disagrees with the rest are dropped with a fault each.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cmrclip.ingest.faults import Fault
from cmrclip.ingest.scan import Header

__all__ = ["CineLayout", "FrameRef", "merge_stacks", "order_cine", "plane_normal", "slice_positions_along"]

logger = logging.getLogger(__name__)

_POS_TOL_MM = 0.1
_TIME_TOL_MS = 0.5
_DEFAULT_ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass(frozen=True)
class FrameRef:
    """One image of a cine: a file and the frame inside it (0 for single-frame files)."""

    header: Header
    frame: int = 0


@dataclass
class CineLayout:
    """A cine ordered as ``[S, F]`` frames, with its geometry.

    Attributes:
        frames: ``frames[s][f]``; slices sorted by position along the normal (ascending), frames by trigger time.
        positions_mm: ``[S, 3]`` ImagePositionPatient of each slice.
        trigger_times_ms: ``[S, F]`` (NaN where unknown).
        orientation: ImageOrientationPatient shared by all slices.
        pixel_spacing_mm: (row spacing, column spacing) as acquired.
        slice_thickness_mm: SliceThickness (NaN if absent).
        rows: Image rows.
        cols: Image columns.
        provenance: How things were decided (e.g. ``phase_order``, ``spacing_source``).
    """

    frames: list[list[FrameRef]]
    positions_mm: np.ndarray
    trigger_times_ms: np.ndarray
    orientation: tuple[float, ...]
    pixel_spacing_mm: tuple[float, float]
    slice_thickness_mm: float
    rows: int
    cols: int
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def n_slices(self) -> int:
        """Number of slices S."""
        return len(self.frames)

    @property
    def n_frames(self) -> int:
        """Number of frames F per slice."""
        return len(self.frames[0]) if self.frames else 0

    @property
    def normal(self) -> np.ndarray:
        """Unit normal of the image plane (row direction x column direction)."""
        return plane_normal(self.orientation)


def plane_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit normal of a plane given by ImageOrientationPatient (6 direction cosines)."""
    o = np.asarray(orientation, dtype=np.float64)
    n = np.cross(o[:3], o[3:])
    norm = np.linalg.norm(n)
    return n / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


def slice_positions_along(positions: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Signed distance of each position (``[S, 3]``) along ``normal``."""
    return np.asarray(positions, dtype=np.float64) @ np.asarray(normal, dtype=np.float64)


def _dedupe_sop(headers: Sequence[Header], study: str, faults: list[Fault]) -> list[Header]:
    seen: dict[str, Header] = {}
    for h in sorted(headers, key=lambda h: h.ref.name):
        key = f"{h.sop_uid or h.ref.name}#{h.frame_index}"
        if key in seen:
            faults.append(Fault(study, h.ref.name, "geometry", f"duplicate instance of {seen[key].ref.name}; ignored"))
        else:
            seen[key] = h
    return list(seen.values())


def _majority_orientation(headers: list[Header], study: str, faults: list[Fault]) -> list[Header]:
    keyed = Counter(tuple(np.round(h.orientation, 3)) if h.orientation else None for h in headers)
    top = keyed.most_common(1)[0][0]
    kept = [h for h in headers if (tuple(np.round(h.orientation, 3)) if h.orientation else None) == top]
    for h in headers:
        if h not in kept:
            why = "orientation differs from the rest of the series; dropped"
            faults.append(Fault(study, h.ref.name, "geometry", why))
    return kept


def _cluster_positions(values: np.ndarray) -> np.ndarray:
    """Label each value with its cluster index (clusters = runs closer than the tolerance), ascending."""
    order = np.argsort(values, kind="stable")
    labels = np.empty(len(values), dtype=np.int64)
    current, last = 0, None
    for i in order:
        if last is not None and values[i] - last > _POS_TOL_MM:
            current += 1
        labels[i] = current
        last = values[i]
    return labels


def _slice_frames(headers: list[Header], study: str, faults: list[Fault]) -> tuple[list[FrameRef], np.ndarray]:
    """Order one slice's images by trigger time; drop images repeating a trigger time."""
    frames: list[tuple[float, int, FrameRef]] = []
    for h in headers:
        if h.n_frames > 1:
            step = h.frame_time if h.frame_time else float("nan")
            start = h.trigger_time or 0.0
            frames += [(start + i * step, h.instance_number, FrameRef(h, i)) for i in range(h.n_frames)]
        else:
            t = h.trigger_time if h.trigger_time is not None else float("nan")
            frames.append((t, h.instance_number, FrameRef(h, h.frame_index)))
    has_time = not any(np.isnan(t) for t, _, _ in frames)
    frames.sort(key=lambda x: (x[0] if has_time else 0.0, x[1], x[2].header.ref.name, x[2].frame))
    kept: list[tuple[float, int, FrameRef]] = []
    for item in frames:
        if has_time and kept and abs(item[0] - kept[-1][0]) < _TIME_TOL_MS:
            dup = kept[-1][2].header.ref.name
            why = f"duplicate of {dup} (same position and TriggerTime); ignored"
            faults.append(Fault(study, item[2].header.ref.name, "geometry", why))
            continue
        kept.append(item)
    return [k[2] for k in kept], np.array([k[0] for k in kept], dtype=np.float64)


def _consistent(
    slices: list[tuple[float, list[FrameRef], np.ndarray]], study: str, faults: list[Fault]
) -> list[tuple[float, list[FrameRef], np.ndarray]]:
    """Keep slices with the modal (phase count, rows, cols); report the others."""
    shape = Counter((len(f), f[0].header.rows, f[0].header.cols) for _, f, _ in slices).most_common(1)[0][0]
    kept = []
    for d, frames, times in slices:
        got = (len(frames), frames[0].header.rows, frames[0].header.cols)
        if got == shape:
            kept.append((d, frames, times))
        else:
            what = f"{got[0]} phases of {got[1]}x{got[2]}, expected {shape[0]} phases of {shape[1]}x{shape[2]}"
            faults.append(Fault(study, frames[0].header.ref.name, "geometry", f"slice at {d:.1f} mm: {what}; dropped"))
    return kept


def merge_stacks(layouts: Sequence[CineLayout], study: str = "") -> tuple[CineLayout | None, list[Fault]]:
    """Merge parallel cines (a SAX stack split over series) into one stack ordered along the normal.

    A slice position acquired in several series is taken from the first layout given (callers pass the most
    recent series first); the others are reported as superseded. Slices whose phase count or matrix differs from
    the majority are dropped with a fault.
    """
    faults: list[Fault] = []
    if not layouts:
        return None, faults
    normal = layouts[0].normal
    taken: list[tuple[float, list[FrameRef], np.ndarray, np.ndarray]] = []
    for lay in layouts:
        for frames, pos, times in zip(lay.frames, lay.positions_mm, lay.trigger_times_ms, strict=True):
            d = float(pos @ normal)
            if any(abs(d - t[0]) <= _POS_TOL_MM for t in taken):
                name = frames[0].header.ref.name
                why = f"slice at {d:.1f} mm also in a later series; superseded"
                faults.append(Fault(study, name, "geometry", why))
                continue
            taken.append((d, frames, times, pos))
    taken.sort(key=lambda t: t[0])
    consistent = _consistent([(d, f, t) for d, f, t, _ in taken], study, faults)
    keep = {id(f) for _, f, _ in consistent}
    taken = [t for t in taken if id(t[1]) in keep]
    base = layouts[0]
    merged = CineLayout(
        frames=[t[1] for t in taken],
        positions_mm=np.array([t[3] for t in taken]),
        trigger_times_ms=np.stack([t[2] for t in taken]),
        orientation=base.orientation,
        pixel_spacing_mm=base.pixel_spacing_mm,
        slice_thickness_mm=base.slice_thickness_mm,
        rows=taken[0][1][0].header.rows,
        cols=taken[0][1][0].header.cols,
        provenance={**base.provenance, "n_series": len(layouts)},
    )
    return merged, faults


def order_cine(headers: Sequence[Header], study: str = "") -> tuple[CineLayout | None, list[Fault]]:
    """Order one cine (one series, or a stack merged from several) into ``[S, F]``.

    Args:
        headers: The images' headers.
        study: Hashed study key, for fault entries.

    Returns:
        The layout (None when nothing usable remains) and the faults met.
    """
    faults: list[Fault] = []
    hs = _majority_orientation(_dedupe_sop(headers, study, faults), study, faults)
    orientation = hs[0].orientation or _DEFAULT_ORIENTATION
    normal = plane_normal(orientation)
    pos = np.array([h.position if h.position else (0.0, 0.0, 0.0) for h in hs], dtype=np.float64)
    labels = _cluster_positions(slice_positions_along(pos, normal))
    slices = []
    for lab in range(labels.max() + 1):
        members = [h for h, lb in zip(hs, labels, strict=True) if lb == lab]
        frames, times = _slice_frames(members, study, faults)
        d = float(slice_positions_along(pos[labels == lab][:1], normal)[0])
        slices.append((d, frames, times))
    slices = _consistent(slices, study, faults)
    if not slices:
        return None, faults
    first = slices[0][1][0].header
    prov = {
        "phase_order": "trigger_time" if not np.isnan(slices[0][2]).any() else "instance_number",
        "spacing_source": first.spacing_source,
        "position_source": "ImagePositionPatient" if first.position else "missing",
        "orientation_source": "ImageOrientationPatient" if first.orientation else "missing",
    }
    layout = CineLayout(
        frames=[f for _, f, _ in slices],
        positions_mm=np.array([f[0].header.position or (0.0, 0.0, 0.0) for _, f, _ in slices], dtype=np.float64),
        trigger_times_ms=np.stack([t for _, _, t in slices]),
        orientation=tuple(orientation),
        pixel_spacing_mm=first.pixel_spacing or (1.0, 1.0),
        slice_thickness_mm=first.slice_thickness,
        rows=first.rows,
        cols=first.cols,
        provenance=prov,
    )
    return layout, faults
