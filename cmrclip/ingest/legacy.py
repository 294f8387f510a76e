"""Move studies both ways between our store and the original system's HDF5 layout (REFERENCE.md §4).

Original layout: ``<root>/<institution>_<mrn>/<accession>.h5``, one float32 gzip dataset per view
(``4CH``, ``2CH``, ``3CH``, ``SAX``) of shape ``[3, F_total, H, W]`` (H = W = 360): every slice's frames one after
another, grey repeated over 3 channels, attributes ``slice_frames`` (index of the last frame of each slice except
the last; empty for one slice) and ``total_images``; plus a master CSV (``parent_folder``, ``accession``, ``split``,
label columns). We export de-identified keys in place of MRN and accession, and intensities mapped back to the raw
range through each view's stored window. Importing recovers slices from ``slice_frames``; the original files carry no
geometry, so spacing is an assumption recorded in provenance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from scipy import ndimage

from cmrclip.errors import StoreError
from cmrclip.ingest.manifest import label_columns
from cmrclip.ingest.preprocess import window_uint8
from cmrclip.ingest.store import VIEWS, StudyRecord, StudyStore, ViewData

__all__ = ["LegacyView", "export_legacy", "legacy_to_record", "read_legacy", "split_slices", "write_legacy_study"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LegacyView:
    """One view of a legacy file: frames ``[F_total, H, W]`` (channel 0) and the slice bookkeeping."""

    frames: np.ndarray
    slice_frames: np.ndarray
    total_images: int


def _frames_per_slice(slice_frames: np.ndarray, total: int) -> list[tuple[int, int]]:
    ends = [int(e) + 1 for e in np.atleast_1d(slice_frames)] + [total]
    starts = [0, *ends[:-1]]
    return list(zip(starts, ends, strict=True))


def split_slices(view: LegacyView) -> list[np.ndarray]:
    """Cut a legacy view into its slices (``[F_s, H, W]`` each) using ``slice_frames`` (no off-by-one)."""
    return [view.frames[a:b] for a, b in _frames_per_slice(view.slice_frames, view.total_images)]


def read_legacy(path: Path) -> dict[str, LegacyView]:
    """Read a legacy study file.

    Raises:
        StoreError: if the file is not in the legacy layout.
    """
    out = {}
    try:
        with h5py.File(path, "r") as f:
            for view in VIEWS:
                if view not in f:
                    continue
                ds = f[view]
                if ds.ndim != 4:
                    raise StoreError(f"{path}: {view} has shape {ds.shape}, expected [3, F, H, W]")
                total = int(ds.attrs.get("total_images", ds.shape[1]))
                slice_frames = np.asarray(ds.attrs.get("slice_frames", []), dtype=np.int64)
                out[view] = LegacyView(ds[0].astype(np.float32), slice_frames, total)
    except OSError as exc:
        raise StoreError(f"cannot read legacy file {path}: {exc}") from exc
    return out


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of ``[N, H, W]`` to ``[N, size, size]``."""
    zoom = (1.0, size / frames.shape[1], size / frames.shape[2])
    return ndimage.zoom(frames, zoom, order=1, grid_mode=True, mode="nearest")


def write_legacy_study(path: Path, views: dict[str, np.ndarray], size: int = 360) -> None:
    """Write one study in the legacy layout from raw-range float volumes ``[S, F, H, W]`` per view."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for view in sorted(views):
            vol = views[view]
            s, fr = vol.shape[:2]
            flat = _resize(vol.reshape(s * fr, *vol.shape[2:]).astype(np.float32), size)
            data = np.broadcast_to(flat, (3, *flat.shape))
            ds = f.create_dataset(view, data=data, dtype=np.float32, compression="gzip", chunks=(3, 1, size, size))
            ds.attrs["slice_frames"] = np.array([(k + 1) * fr - 1 for k in range(s - 1)], dtype=np.int64)
            ds.attrs["total_images"] = s * fr


def export_legacy(store: StudyStore, out_dir: Path, size: int = 360) -> Path:
    """Export every study of a store to the legacy layout plus ``master.csv``; return the CSV path."""
    out_dir = Path(out_dir)
    df = store.manifest()
    rows = []
    for rec in df.itertuples():
        folder = f"{rec.site or 'site'}_{rec.patient_key}"
        views = {}
        with store.open(rec.study_key) as study:
            for view in study.views:
                lo, hi = (float(x) for x in study.view_attrs(view)["window"])
                views[view] = lo + study.read_view(view).astype(np.float32) * np.float32((hi - lo) / 255.0)
        write_legacy_study(out_dir / folder / f"{rec.study_key}.h5", views, size)
        rows.append({"parent_folder": folder, "accession": rec.study_key, "split": rec.split})
    master = pd.DataFrame(rows)
    labels = [c for c in label_columns() if c in df.columns]
    master = pd.concat([master, df[labels].reset_index(drop=True)], axis=1)
    target = out_dir / "master.csv"
    master.to_csv(target, index=False)
    logger.info("exported %d studies to %s", len(rows), out_dir)
    return target


def legacy_to_record(
    path: Path, study_key: str, patient_key: str, site: str = "", assumed_spacing_mm: float = 1.0
) -> StudyRecord:
    """Turn a legacy file into a store record (slices recovered; geometry unknown, recorded as assumed).

    Raises:
        StoreError: if slices of a view have different frame counts (the store needs ``[S, F, H, W]``).
    """
    views = {}
    for view, lv in read_legacy(path).items():
        slices = split_slices(lv)
        if len({len(s) for s in slices}) != 1:
            raise StoreError(f"{path}: {view} slices have different frame counts {[len(s) for s in slices]}")
        vol = np.stack(slices)
        pixels, window = window_uint8(vol)
        s, f = vol.shape[:2]
        views[view] = ViewData(
            pixels=pixels,
            trigger_times_ms=np.full((s, f), np.nan),
            positions_mm=np.zeros((s, 3)),
            pixel_spacing_mm=(assumed_spacing_mm, assumed_spacing_mm),
            slice_thickness_mm=float("nan"),
            orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
            window=window,
            view_source="legacy",
            provenance={"spacing_source": "assumed", "source_format": "legacy_h5"},
        )
    if not views:
        raise StoreError(f"{path}: no 4CH/2CH/3CH/SAX dataset; not a legacy study file")
    return StudyRecord(study_key, patient_key, site, views, {"source_format": "legacy_h5"})
