"""Turn one study's headers into a stored study: plan views, read pixels, preprocess, write the HDF5 file.

:func:`process_study` is what each worker runs; it never raises for bad input (faults come back instead) and
returns only small things (a manifest row and faults), so a pool holds at most one study's pixels per worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cmrclip.errors import CmrclipError
from cmrclip.ingest.faults import Fault
from cmrclip.ingest.geometry import CineLayout, FrameRef
from cmrclip.ingest.preprocess import heart_centre, prepare_view
from cmrclip.ingest.scan import FileRef, Header, read_pixels
from cmrclip.ingest.series import ViewCine, plan_study
from cmrclip.ingest.store import StudyRecord, ViewData, manifest_row, write_study_file
from cmrclip.ingest.views import load_view_rules

__all__ = ["StudyResult", "StudyTask", "process_study", "read_cine"]

logger = logging.getLogger(__name__)


@dataclass
class StudyTask:
    """Everything a worker needs for one study (picklable)."""

    study_key: str
    patient_key: str
    site: str
    headers: list[Header]
    store_root: Path
    options: dict[str, Any]
    nifti_files: dict[str, list[tuple[str, FileRef]]] = field(default_factory=dict)


@dataclass
class StudyResult:
    """What a worker sends back: the manifest row (None when rejected), faults, and the outcome."""

    study_key: str
    row: dict[str, Any] | None
    faults: list[Fault] = field(default_factory=list)
    status: str = "rejected"
    n_views: int = 0


def _read_slice(
    frames: list[FrameRef], frame: Callable[[FrameRef], np.ndarray], shape: tuple[int, int]
) -> tuple[np.ndarray | None, tuple[str, str]]:
    """One slice's frames ``[F, H, W]``, or None with (the culprit file, the reason)."""
    out = []
    for f in frames:
        try:
            img = frame(f)
        except (ValueError, IndexError) as exc:
            return None, (f.header.ref.name, str(exc))
        if img.shape != shape:
            return None, (f.header.ref.name, f"frame of {img.shape[0]}x{img.shape[1]}, expected {shape[0]}x{shape[1]}")
        out.append(img)
    return np.stack(out), ("", "")


def read_cine(layout: CineLayout, study: str, faults: list[Fault]) -> tuple[np.ndarray | None, CineLayout]:
    """Read a cine's pixels as float32 ``[S, F, H, W]``; slices with an unreadable frame are dropped.

    Returns:
        The volume (None if no slice survived) and the layout restricted to the surviving slices.
    """
    cache: dict[str, np.ndarray] = {}

    def frame(ref: FrameRef) -> np.ndarray:
        name = ref.header.ref.name
        if name not in cache:
            cache.clear()  # multi-frame files are read once; single-frame files are not kept
            cache[name] = read_pixels(ref.header.ref)
        return cache[name][ref.frame]

    slices, keep = [], []
    for s, frames in enumerate(layout.frames):
        arr, bad = _read_slice(frames, frame, (layout.rows, layout.cols))
        if arr is None:
            faults.append(Fault(study, bad[0], "pixels", f"slice {s}: {bad[1]}; dropped"))
            continue
        slices.append(arr)
        keep.append(s)
    if not slices:
        return None, layout
    kept = CineLayout(
        frames=[layout.frames[s] for s in keep],
        positions_mm=layout.positions_mm[keep],
        trigger_times_ms=layout.trigger_times_ms[keep],
        orientation=layout.orientation,
        pixel_spacing_mm=layout.pixel_spacing_mm,
        slice_thickness_mm=layout.slice_thickness_mm,
        rows=layout.rows,
        cols=layout.cols,
        provenance=layout.provenance,
    )
    return np.stack(slices), kept


def _view_data(cine: ViewCine, volume: np.ndarray, layout: CineLayout, centre: np.ndarray, opts: dict) -> ViewData:
    spacing = layout.pixel_spacing_mm
    prep = prepare_view(
        volume,
        layout.positions_mm,
        layout.orientation,
        spacing,
        centre,
        opts["spacing_mm"],
        opts["crop_size"],
        tuple(opts["window_percentiles"]),
    )
    prov = {
        **layout.provenance,
        "acquired_spacing_mm": spacing,
        "acquired_matrix": (layout.rows, layout.cols),
        "crop_origin_rc": prep.grid.origin_rc,
        "view_reason": cine.decision.reason,
    }
    return ViewData(
        pixels=prep.pixels,
        trigger_times_ms=layout.trigger_times_ms,
        positions_mm=prep.positions_mm,
        pixel_spacing_mm=(opts["spacing_mm"], opts["spacing_mm"]),
        slice_thickness_mm=layout.slice_thickness_mm,
        orientation=tuple(layout.orientation),
        window=prep.window,
        view_source=cine.decision.source,
        series_description=cine.series_description,
        provenance=prov,
    )


def _centre(volumes: dict[str, tuple[np.ndarray, CineLayout]]) -> np.ndarray:
    view = "SAX" if "SAX" in volumes else sorted(volumes)[0]
    vol, lay = volumes[view]
    return heart_centre(vol, lay.positions_mm, lay.orientation, lay.pixel_spacing_mm)


def process_study(task: StudyTask) -> StudyResult:
    """Plan, read, preprocess and write one study; faults are returned, never raised."""
    key, opts = task.study_key, task.options
    try:
        rules = load_view_rules(Path(opts["views_file"]) if opts.get("views_file") else None)
        plan = plan_study(task.headers, key, rules, opts["min_phases"], opts.get("fallback_view"))
        faults, partial = list(plan.faults), plan.partial
        volumes: dict[str, tuple[np.ndarray, CineLayout]] = {}
        for view, cine in sorted(plan.cines.items()):
            vol, lay = read_cine(cine.layout, key, faults)
            partial |= vol is None or lay.n_slices < cine.layout.n_slices
            if vol is not None:
                volumes[view] = (vol, lay)
        if not volumes:
            faults.append(Fault(key, "", "study", "no cine view could be stored; study rejected"))
            return StudyResult(key, None, faults, "rejected")
        centre = _centre(volumes)
        views = {v: _view_data(plan.cines[v], vol, lay, centre, opts) for v, (vol, lay) in volumes.items()}
        record = StudyRecord(key, task.patient_key, task.site, views, {"source_format": "dicom"})
        path = task.store_root / "studies" / f"{key}.h5"
        write_study_file(path, record, opts["compression"])
        row = manifest_row(record, path.relative_to(task.store_root))
        return StudyResult(key, row, faults, "partial" if partial else "stored", len(views))
    except (CmrclipError, ValueError, OSError, MemoryError) as exc:
        logger.exception("study %s failed", key)
        return StudyResult(key, None, [Fault(key, "", "study", f"{type(exc).__name__}: {exc}; study rejected")])
