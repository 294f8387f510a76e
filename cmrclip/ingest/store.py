"""The study store: one HDF5 file per study plus a SQLite manifest (docs/ARCHITECTURE.md §2).

Reading::

    store = StudyStore(root)
    df = store.manifest()
    with store.open(study_key) as study:
        clip = study.read_clip("SAX", 5, range(16))   # float32 [16, H, W] in [0, 1]

Writing (used by :mod:`cmrclip.ingest.pipeline`, tests and synthetic fixtures)::

    store = StudyStore.create(root)
    store.write_study(StudyRecord(study_key, patient_key, site, {"SAX": ViewData(...)}))
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np
import pandas as pd

from cmrclip.errors import StoreError
from cmrclip.ingest import manifest as _manifest
from cmrclip.ingest.faults import Fault, read_faults

__all__ = [
    "STORE_VERSION",
    "VIEWS",
    "StudyFile",
    "StudyRecord",
    "StudyStore",
    "ViewData",
    "ViewMeta",
    "manifest_row",
    "write_study_file",
]

logger = logging.getLogger(__name__)

STORE_VERSION = 1
VIEWS: tuple[str, ...] = ("SAX", "2CH", "3CH", "4CH")
_MANIFEST = "manifest.sqlite"
_REPORT = "ingest_report.jsonl"


@dataclass(frozen=True)
class ViewMeta:
    """Shape and spacing of one stored view."""

    n_slices: int
    n_frames: int
    height: int
    width: int
    pixel_spacing_mm: tuple[float, float]


@dataclass
class ViewData:
    """One view to write: pixels uint8 ``[S, F, H, W]`` plus geometry and provenance.

    Attributes:
        pixels: uint8 ``[S, F, H, W]``; slices ordered along the normal, frames in acquisition order.
        trigger_times_ms: ``[S, F]`` trigger times (NaN where unknown).
        positions_mm: ``[S, 3]`` ImagePositionPatient of each slice (after cropping: of pixel ``[0, 0]``).
        pixel_spacing_mm: (row spacing, column spacing) of the stored pixels.
        slice_thickness_mm: Slice thickness (NaN where unknown).
        orientation: ImageOrientationPatient (row cosines, column cosines).
        window: The raw intensities mapped to 0 and 255.
        view_source: ``"description"`` or ``"geometry"`` (or ``"nifti"``/``"given"`` for other inputs).
        series_description: The (non-identifying) SeriesDescription, "" when absent.
        provenance: Extra attributes (numbers or short strings) kept as HDF5 attributes, e.g. spacing fallbacks.
    """

    pixels: np.ndarray
    trigger_times_ms: np.ndarray
    positions_mm: np.ndarray
    pixel_spacing_mm: tuple[float, float]
    slice_thickness_mm: float
    orientation: tuple[float, ...]
    window: tuple[float, float]
    view_source: str
    series_description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    def validate(self, view: str) -> None:
        """Check shapes and types against the store contract.

        Raises:
            StoreError: if anything disagrees.
        """
        px = self.pixels
        if px.dtype != np.uint8 or px.ndim != 4 or min(px.shape) < 1:
            raise StoreError(f"view {view}: pixels must be non-empty uint8 [S,F,H,W], got {px.dtype} {px.shape}")
        s, f = px.shape[:2]
        if np.shape(self.trigger_times_ms) != (s, f):
            raise StoreError(f"view {view}: trigger_times_ms shape {np.shape(self.trigger_times_ms)} != {(s, f)}")
        if np.shape(self.positions_mm) != (s, 3):
            raise StoreError(f"view {view}: positions_mm shape {np.shape(self.positions_mm)} != {(s, 3)}")
        if len(self.orientation) != 6 or len(self.pixel_spacing_mm) != 2 or len(self.window) != 2:
            raise StoreError(f"view {view}: orientation needs 6 values, pixel_spacing_mm and window 2")


@dataclass
class StudyRecord:
    """One study to write: hashed keys, site and its views (keys from :data:`VIEWS`)."""

    study_key: str
    patient_key: str
    site: str
    views: dict[str, ViewData]
    provenance: dict[str, Any] = field(default_factory=dict)


def _set_attrs(obj: h5py.HLObject, attrs: Mapping[str, Any]) -> None:
    """Write attributes in sorted order so that files are byte-identical for the same content."""
    for key in sorted(attrs):
        value = attrs[key]
        if isinstance(value, str):
            obj.attrs[key] = value
        elif isinstance(value, bool | int | float | np.integer | np.floating):
            obj.attrs[key] = np.float64(value) if isinstance(value, float | np.floating) else np.int64(value)
        else:
            obj.attrs[key] = np.asarray(value, dtype=np.float64)


def _write_view(group: h5py.Group, data: ViewData, compression: str) -> None:
    opts = {"compression": "gzip", "compression_opts": 1} if compression == "gzip" else {"compression": "lzf"}
    _, f, h, w = data.pixels.shape
    group.create_dataset("pixels", data=data.pixels, chunks=(1, f, h, w), track_times=False, **opts)
    group.create_dataset("trigger_times_ms", data=np.asarray(data.trigger_times_ms, np.float64), track_times=False)
    group.create_dataset("positions_mm", data=np.asarray(data.positions_mm, np.float64), track_times=False)
    attrs: dict[str, Any] = {f"prov_{k}": v for k, v in data.provenance.items()}
    attrs.update(
        pixel_spacing_mm=data.pixel_spacing_mm,
        slice_thickness_mm=float(data.slice_thickness_mm),
        orientation=data.orientation,
        window=data.window,
        view_source=data.view_source,
        series_description=data.series_description,
    )
    _set_attrs(group, attrs)


def write_study_file(path: Path, record: StudyRecord, compression: str = "gzip") -> None:
    """Write one study's HDF5 file atomically: temp file in the same folder, fsync, rename.

    Args:
        path: Final file path.
        record: The study.
        compression: ``"gzip"`` (level 1, readable everywhere) or ``"lzf"`` (faster, h5py only).

    Raises:
        StoreError: if the record breaks the contract or the file cannot be written.
    """
    if not record.views:
        raise StoreError(f"study {record.study_key}: no views to write")
    for view, data in record.views.items():
        if view not in VIEWS:
            raise StoreError(f"study {record.study_key}: view {view!r} is not one of {VIEWS}")
        data.validate(view)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w", libver=("earliest", "v110"), track_order=False) as f:
            attrs = {f"prov_{k}": v for k, v in record.provenance.items()}
            attrs.update(
                study_key=record.study_key,
                patient_key=record.patient_key,
                site=record.site,
                store_version=STORE_VERSION,
            )
            _set_attrs(f, attrs)
            for view in sorted(record.views):
                _write_view(f.create_group(view, track_order=False), record.views[view], compression)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {path}: {exc}; check free disk space and permissions") from exc


class StudyFile:
    """An open study file (use as a context manager; closes the HDF5 handle on exit)."""

    def __init__(self, path: Path) -> None:
        """Open ``path`` read-only.

        Raises:
            StoreError: if the file is missing or not a store file.
        """
        self.path = Path(path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise StoreError(f"cannot open study file {self.path}: {exc}; re-ingest this study") from exc
        self.views: dict[str, ViewMeta] = {}
        for view in VIEWS:
            if view in self._h5:
                g = self._h5[view]
                s, f, h, w = g["pixels"].shape
                sp = tuple(float(x) for x in g.attrs["pixel_spacing_mm"])
                self.views[view] = ViewMeta(s, f, h, w, (sp[0], sp[1]))

    @property
    def attrs(self) -> dict[str, Any]:
        """Study-level attributes (``study_key``, ``patient_key``, ``site``, ``store_version``, provenance)."""
        return dict(self._h5.attrs)

    def view_attrs(self, view: str) -> dict[str, Any]:
        """Attributes of one view (spacing, orientation, window, view_source, ...)."""
        return dict(self._group(view).attrs)

    def geometry(self, view: str) -> dict[str, np.ndarray]:
        """Return ``trigger_times_ms [S, F]`` and ``positions_mm [S, 3]`` of one view."""
        g = self._group(view)
        return {"trigger_times_ms": g["trigger_times_ms"][()], "positions_mm": g["positions_mm"][()]}

    def _group(self, view: str) -> h5py.Group:
        if view not in self.views:
            raise StoreError(f"{self.path.name} has no view {view!r}; it has {sorted(self.views)}")
        return self._h5[view]

    def read_clip(self, view: str, slice_index: int, frame_indices: Sequence[int]) -> np.ndarray:
        """Read frames of one slice as float32 ``[T, H, W]`` in [0, 1] (indices may repeat, any order).

        Raises:
            StoreError: if the view, slice or a frame index does not exist.
        """
        self._group(view)
        meta = self.views[view]
        idx = np.asarray(list(frame_indices), dtype=np.int64)
        if not 0 <= slice_index < meta.n_slices:
            raise StoreError(f"{self.path.name} {view}: slice {slice_index} not in [0, {meta.n_slices})")
        if idx.size == 0 or idx.min() < 0 or idx.max() >= meta.n_frames:
            raise StoreError(f"{self.path.name} {view}: frame indices must lie in [0, {meta.n_frames})")
        slab = self._h5[view]["pixels"][slice_index]  # one chunk: this slice's frames
        return slab[idx].astype(np.float32) / np.float32(255.0)

    def read_view(self, view: str) -> np.ndarray:
        """Read a whole view as stored: uint8 ``[S, F, H, W]``."""
        return self._group(view)["pixels"][()]

    def close(self) -> None:
        """Close the HDF5 handle."""
        self._h5.close()

    def __enter__(self) -> StudyFile:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class StudyStore:
    """A study store folder: ``manifest.sqlite``, ``studies/<key>.h5``, ``ingest_report.jsonl``."""

    def __init__(self, root: Path) -> None:
        """Open an existing store.

        Raises:
            StoreError: if ``root`` has no manifest.
        """
        self.root = Path(root)
        if not (self.root / _MANIFEST).is_file():
            raise StoreError(f"no study store at {self.root} (no {_MANIFEST}); create it with `cmrclip ingest`")

    @classmethod
    def create(cls, root: Path) -> StudyStore:
        """Create (or open) a store at ``root``."""
        root = Path(root)
        (root / "studies").mkdir(parents=True, exist_ok=True)
        _manifest.init_manifest(root / _MANIFEST)
        return cls(root)

    @property
    def manifest_path(self) -> Path:
        """The SQLite manifest file."""
        return self.root / _MANIFEST

    @property
    def report_path(self) -> Path:
        """The fault report (JSON lines)."""
        return self.root / _REPORT

    def study_path(self, study_key: str) -> Path:
        """Where a study's HDF5 file lives."""
        return self.root / "studies" / f"{study_key}.h5"

    def manifest(self) -> pd.DataFrame:
        """Return the ``studies`` table as a DataFrame (``views`` as lists), sorted by ``study_key``."""
        return _manifest.read_manifest(self.manifest_path)

    def keys(self) -> list[str]:
        """Return the stored study keys."""
        return list(self.manifest()["study_key"])

    def open(self, study_key: str) -> StudyFile:
        """Open one study for reading.

        Raises:
            StoreError: if the study is not in the store.
        """
        path = self.study_path(study_key)
        if not path.is_file():
            raise StoreError(f"study {study_key!r} is not in the store {self.root}; see manifest() for the keys")
        return StudyFile(path)

    def write_study(self, record: StudyRecord, compression: str = "gzip", report: str | None = None) -> Path:
        """Write a study file atomically and upsert its manifest row; return the file path."""
        path = self.study_path(record.study_key)
        write_study_file(path, record, compression)
        self.upsert(manifest_row(record, path.relative_to(self.root), report))
        return path

    def upsert(self, row: Mapping[str, Any]) -> None:
        """Insert or replace one manifest row (see :func:`manifest_row`)."""
        _manifest.upsert_rows(self.manifest_path, [row])

    def add_labels(self, labels: pd.DataFrame, allow_new_columns: bool = False) -> list[str]:
        """Write label columns (``study_key`` + targets/condition keys); return keys not in the store."""
        return _manifest.update_labels(self.manifest_path, labels, allow_new_columns)

    def set_split(self, splits: Mapping[str, str] | pd.Series) -> list[str]:
        """Set ``split`` per study key (e.g. ``{"ab12...": "train"}``); return keys not in the store."""
        return _manifest.set_column(self.manifest_path, "split", dict(splits))

    def set_reports(self, reports: Mapping[str, str | None]) -> list[str]:
        """Set de-identified report text per study key; return keys not in the store."""
        return _manifest.set_column(self.manifest_path, "report", dict(reports))

    def faults_list(self) -> list[Fault]:
        """Return the fault report's entries as :class:`~cmrclip.ingest.faults.Fault` records."""
        return read_faults(self.report_path)

    def faults(self) -> list[dict[str, Any]]:
        """Return the fault report's entries (empty when there were none)."""
        if not self.report_path.is_file():
            return []
        lines = self.report_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def manifest_row(record: StudyRecord, rel_path: Path, report: str | None = None) -> dict[str, Any]:
    """Build the manifest row of a written study (labels and split are left untouched)."""
    views = [v for v in VIEWS if v in record.views]
    sax = record.views.get("SAX")
    row: dict[str, Any] = {
        "study_key": record.study_key,
        "patient_key": record.patient_key,
        "site": record.site,
        "path": rel_path.as_posix(),
        "views": json.dumps(views),
        "n_sax_slices": int(sax.pixels.shape[0]) if sax is not None else 0,
        "n_clips": int(sum(v.pixels.shape[0] for v in record.views.values())),
    }
    if report is not None:
        row["report"] = report
    return row
