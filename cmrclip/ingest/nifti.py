"""NIfTI input: ACDC (``patientXXX/patientXXX_4d.nii.gz``, ``Info.cfg``) and M&Ms / M&Ms-2 layouts.

Geometry comes from the NIfTI affine (RAS, turned into DICOM's LPS): voxel ``(i, j, k)`` is stored as slice ``k``,
row ``j``, column ``i``, so the row direction is the affine's first column and the column direction its second;
pixel spacing and slice positions follow exactly. Frame times come from the 4th zoom when its unit is known.

File names decide the view (data-driven table :data:`NAME_RULES`): ``*_4d``, ``*_sa``, ``*_SA_CINE`` -> SAX;
``*_la``, ``*_LA_CINE``, ``*lax_4c*`` -> 4CH. ED/ES-only volumes (``*_frameNN``, ``*_SA_ED``/``_ES``, ``sax_ed``)
become a two-frame view only when ``keyframes`` is asked for (they are not cines). ``*_gt`` label files are skipped.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from cmrclip.errors import CmrclipError, IngestError
from cmrclip.ingest.edes import cycle_pixels
from cmrclip.ingest.faults import Fault
from cmrclip.ingest.preprocess import heart_centre, prepare_view
from cmrclip.ingest.scan import FileRef
from cmrclip.ingest.store import StudyRecord, ViewData, manifest_row, write_study_file
from cmrclip.ingest.study import StudyResult, StudyTask

__all__ = [
    "NAME_RULES",
    "NiftiView",
    "find_nifti_studies",
    "is_nifti",
    "process_nifti_study",
    "read_acdc_info",
    "read_nifti",
    "stack_keyframes",
]

logger = logging.getLogger(__name__)

_NII = r"\.nii(?:\.gz)?$"
NAME_RULES: tuple[tuple[str, str, str], ...] = (
    (r"_gt" + _NII, "", "label"),
    (r"^(?P<subject>.*?)_?4d" + _NII, "SAX", "cine"),
    (r"^(?P<subject>.*?)_?sa(?:_cine)?" + _NII, "SAX", "cine"),
    (r"^(?P<subject>.*?)_?la(?:_cine)?" + _NII, "4CH", "cine"),
    (r"^(?P<subject>.*?)_?frame(?P<frame>\d+)" + _NII, "SAX", "keyframe"),
    (r"^(?P<subject>.*?)_?sax?_(?P<frame>ed|es)" + _NII, "SAX", "keyframe"),
    (r"^(?P<subject>.*?)_?(?:la|lax_4c)_(?P<frame>ed|es)" + _NII, "4CH", "keyframe"),
)
"""(file-name pattern, view, kind) in order; the first match wins (case-insensitive)."""

_TIME_SCALE_MS = {"sec": 1000.0, "msec": 1.0, "usec": 0.001}


@dataclass
class NiftiView:
    """One view read from NIfTI, in the store's conventions (``[S, F, H, W]``, LPS geometry)."""

    volume: np.ndarray
    positions_mm: np.ndarray
    orientation: tuple[float, ...]
    pixel_spacing_mm: tuple[float, float]
    slice_thickness_mm: float
    trigger_times_ms: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)


def is_nifti(name: str) -> bool:
    """True for ``.nii`` and ``.nii.gz`` file names."""
    return re.search(_NII, name, re.IGNORECASE) is not None


def _load(ref: FileRef) -> nib.Nifti1Image:
    try:
        data = ref.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        return nib.Nifti1Image.from_bytes(data)
    except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError) as exc:
        raise IngestError(f"{ref.name}: not a readable NIfTI file ({exc}); check the file") from exc


def read_nifti(ref: FileRef) -> NiftiView:
    """Read a 3D or 4D NIfTI image as ``[S, F, H, W]`` float32 with LPS geometry from its affine.

    Raises:
        IngestError: if the file is unreadable or not 3D/4D.
    """
    img = _load(ref)
    arr = np.asarray(img.dataobj, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise IngestError(f"{ref.name}: expected a 3D or 4D image, got shape {arr.shape}")
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine  # RAS -> LPS
    row_dir, col_dir = affine[:3, 0], affine[:3, 1]
    sx, sy, sz = (float(np.linalg.norm(affine[:3, i])) for i in range(3))
    n_slices, n_frames = arr.shape[2], arr.shape[3]
    positions = np.stack([affine[:3, :3] @ np.array([0.0, 0.0, k]) + affine[:3, 3] for k in range(n_slices)])
    zooms = img.header.get_zooms()
    unit = img.header.get_xyzt_units()[1]
    dt = float(zooms[3]) * _TIME_SCALE_MS[unit] if len(zooms) > 3 and unit in _TIME_SCALE_MS else float("nan")
    return NiftiView(
        volume=np.ascontiguousarray(arr.transpose(2, 3, 1, 0)),  # (i, j, k, t) -> (k, t, j, i)
        positions_mm=positions,
        orientation=(*(row_dir / sx), *(col_dir / sy)),
        pixel_spacing_mm=(sy, sx),
        slice_thickness_mm=sz,
        trigger_times_ms=np.tile(np.arange(n_frames) * dt, (n_slices, 1)),
        provenance={"source_format": "nifti", "spacing_source": "nifti_affine", "time_unit": unit},
    )


def stack_keyframes(views: Sequence[NiftiView], labels: Sequence[str]) -> NiftiView:
    """Stack single-frame volumes (e.g. ED and ES) as the frames of one view.

    Raises:
        IngestError: if their shapes differ.
    """
    shapes = {v.volume.shape for v in views}
    if len(shapes) != 1 or next(iter(shapes))[1] != 1:
        raise IngestError(f"key frames must be single-frame volumes of one shape, got {sorted(shapes)}")
    first = views[0]
    return NiftiView(
        volume=np.concatenate([v.volume for v in views], axis=1),
        positions_mm=first.positions_mm,
        orientation=first.orientation,
        pixel_spacing_mm=first.pixel_spacing_mm,
        slice_thickness_mm=first.slice_thickness_mm,
        trigger_times_ms=np.full((first.volume.shape[0], len(views)), np.nan),
        provenance={**first.provenance, "frames": ",".join(labels)},
    )


def read_acdc_info(text: str) -> dict[str, str]:
    """Parse an ACDC ``Info.cfg`` (``ED: 1``, ``ES: 12``, ``Group: DCM`` ...) into a dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _classify(ref: FileRef) -> tuple[str, str, str, str] | None:
    """(subject, view, kind, frame label) of a NIfTI file from its name, or None for label files."""
    name = Path(ref.name.split("!")[-1]).name
    for pattern, view, kind in NAME_RULES:
        m = re.search(pattern, name, re.IGNORECASE)
        if m:
            if kind == "label":
                return None
            subject = (m.groupdict().get("subject") or "").strip("_") or Path(ref.name.split("!")[-1]).parent.name
            return subject, view, kind, (m.groupdict().get("frame") or "").upper()
    return None  # matches no rule: not a cine image


def find_nifti_studies(
    refs: Sequence[FileRef], keyframes: bool, faults: list[Fault]
) -> dict[str, dict[str, list[tuple[str, FileRef]]]]:
    """Group NIfTI files by subject and view: ``{subject: {view: [(frame label, ref), ...]}}``.

    A cine wins over key frames of the same view; key frames are kept only when ``keyframes`` is True.
    """
    cines: dict[str, dict[str, list[tuple[str, FileRef]]]] = defaultdict(dict)
    keys: dict[str, dict[str, list[tuple[str, FileRef]]]] = defaultdict(lambda: defaultdict(list))
    for ref in refs:
        got = _classify(ref)
        if got is None:
            continue
        subject, view, kind, frame = got
        if kind == "cine":
            cines[subject][view] = [("", ref)]
        else:
            keys[subject][view].append((frame, ref))
    out: dict[str, dict[str, list[tuple[str, FileRef]]]] = {s: dict(v) for s, v in cines.items()}
    for subject, views in keys.items():
        for view, items in views.items():
            if view in out.get(subject, {}):
                continue
            if keyframes:
                out.setdefault(subject, {})[view] = sorted(items, key=lambda x: _frame_order(x[0]))
            else:
                faults.append(Fault("", items[0][1].name, "series", "ED/ES volumes only (no cine); not stored"))
    return dict(sorted(out.items()))


def _frame_order(label: str) -> tuple[int, str]:
    return (0, label) if label == "ED" else (1, label) if label == "ES" else (2, label.zfill(4))


def _read_view(items: list[tuple[str, FileRef]]) -> NiftiView:
    if len(items) == 1 and not items[0][0]:
        return read_nifti(items[0][1])
    return stack_keyframes([read_nifti(ref) for _, ref in items], [label for label, _ in items])


def _acdc_info(items: list[tuple[str, FileRef]]) -> dict[str, Any]:
    ref = items[0][1]
    cfg = ref.path.parent / "Info.cfg"
    if ref.member is not None or not cfg.is_file():
        return {}
    info = read_acdc_info(cfg.read_text(encoding="utf-8", errors="replace"))
    out: dict[str, Any] = {}
    for key in ("ED", "ES"):
        if info.get(key, "").isdigit():
            out[f"{key.lower()}_frame"] = int(info[key]) - 1  # Info.cfg counts from 1
    return out


def _is_edes(view: NiftiView) -> bool:
    """A two-key-frame view (ED then ES: ``_ED``/``_ES`` names, or ACDC's ``_frameNN`` in frame order)."""
    return view.volume.shape[1] == 2 and "frames" in view.provenance


def _to_view_data(view: NiftiView, centre: np.ndarray, opts: dict[str, Any]) -> ViewData:
    prep = prepare_view(
        view.volume,
        view.positions_mm,
        view.orientation,
        view.pixel_spacing_mm,
        centre,
        opts["spacing_mm"],
        opts["crop_size"],
        tuple(opts["window_percentiles"]),
    )
    prov = {**view.provenance, "acquired_spacing_mm": view.pixel_spacing_mm, "crop_origin_rc": prep.grid.origin_rc}
    pixels, times = prep.pixels, view.trigger_times_ms
    if _is_edes(view) and opts.get("edes_frames", 0):
        pixels, k_es = cycle_pixels(pixels, opts["edes_frames"])
        times = np.full(pixels.shape[:2], np.nan)
        prov |= {"edes_cycle": "demons", "ed_frame": 0, "es_frame": k_es}
    return ViewData(
        pixels=pixels,
        trigger_times_ms=times,
        positions_mm=prep.positions_mm,
        pixel_spacing_mm=(opts["spacing_mm"], opts["spacing_mm"]),
        slice_thickness_mm=view.slice_thickness_mm,
        orientation=view.orientation,
        window=prep.window,
        view_source="nifti",
        provenance=prov,
    )


def process_nifti_study(task: StudyTask) -> StudyResult:
    """Read, preprocess and write one NIfTI subject (``task.nifti_files``); faults are returned, never raised."""
    key, faults = task.study_key, []
    views: dict[str, NiftiView] = {}
    extra: dict[str, Any] = {}
    for view, items in sorted(task.nifti_files.items()):
        try:
            views[view] = _read_view(items)
            extra.update(_acdc_info(items))
        except CmrclipError as exc:
            faults.append(Fault(key, items[0][1].name, "pixels", f"{exc}; dropped"))
    if not views:
        return StudyResult(key, None, [*faults, Fault(key, "", "study", "no view could be read; study rejected")])
    ref_view = views.get("SAX") or next(iter(views.values()))
    centre = heart_centre(ref_view.volume, ref_view.positions_mm, ref_view.orientation, ref_view.pixel_spacing_mm)
    data = {v: _to_view_data(nv, centre, task.options) for v, nv in views.items()}
    sax = data.get("SAX")
    if sax is not None and "es_frame" in sax.provenance:
        extra |= {"ed_frame": 0, "es_frame": sax.provenance["es_frame"]}
    record = StudyRecord(key, task.patient_key, task.site, data, {"source_format": "nifti", **extra})
    path = task.store_root / "studies" / f"{key}.h5"
    write_study_file(path, record, task.options["compression"])
    status = "partial" if faults else "stored"
    return StudyResult(key, manifest_row(record, path.relative_to(task.store_root)), faults, status, len(data))
