"""Find DICOM files in folders and archives and read their headers only (``stop_before_pixels``).

Pixel data in any transfer syntax that pydicom's installed plugins decode is read (uncompressed, RLE, JPEG
baseline/extended/lossless, JPEG-LS and JPEG 2000 through ``pylibjpeg``); :func:`undecodable_reason` names the
others, so that ingestion skips their series with a fault instead of failing on their pixels.

Zip members are read in place; tar archives (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.xz``, ``.tar.bz2``) are
streamed once and their members spooled into a work folder, because compressed tar has no random access.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pydicom
import pydicom.config
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from cmrclip.ingest.enhanced import FrameGeometry, finite_floats, frame_geometry, frame_rescale
from cmrclip.ingest.faults import Fault

__all__ = ["FileRef", "Header", "expand_sources", "read_header", "read_pixels", "scan_headers", "undecodable_reason"]

logger = logging.getLogger(__name__)

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2")


@dataclass(frozen=True, order=True)
class FileRef:
    """One input file: a path on disk, or a member of a zip archive at ``path``.

    Attributes:
        name: Stable display name (``archive.zip!member`` for archive members), used in reports and ordering.
        path: The file on disk (the zip archive for zip members; the spooled copy for tar members).
        member: The zip member name, or None.
    """

    name: str
    path: Path
    member: str | None = None

    def read_bytes(self) -> bytes:
        """Return the file's bytes."""
        if self.member is None:
            return self.path.read_bytes()
        with zipfile.ZipFile(self.path) as zf:
            return zf.read(self.member)


@dataclass(frozen=True)
class Header:
    """What ingestion needs from one DICOM file's header (no pixels).

    Identifiers (``patient_id``, ``accession``, ``study_uid``) are held in memory only and hashed before storage.
    ``frames`` holds each frame's geometry for enhanced multi-frame files (empty otherwise); after
    :func:`cmrclip.ingest.enhanced.split_frames` a header stands for the one frame ``frame_index`` of its file.
    """

    ref: FileRef
    study_uid: str
    accession: str
    patient_id: str
    patient_name: str
    birth_date: str
    institution: str
    series_uid: str
    series_description: str
    series_number: int
    sop_uid: str
    instance_number: int
    rows: int
    cols: int
    n_frames: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    spacing_source: str
    slice_thickness: float
    trigger_time: float | None
    frame_time: float | None
    image_type: tuple[str, ...]
    modality: str
    sequence_name: str = ""
    scanning_sequence: tuple[str, ...] = ()
    transfer_syntax: str = ""
    frames: tuple[FrameGeometry, ...] = ()
    frame_index: int = 0


def _is_tar(path: Path) -> bool:
    return path.name.lower().endswith(_TAR_SUFFIXES)


def _safe_member(name: str) -> PurePosixPath | None:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts:
        return None
    return p


def _spool_tar(path: Path, workdir: Path, faults: list[Fault]) -> Iterator[FileRef]:
    dest = workdir / hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    try:
        with tarfile.open(path) as tf:
            for member in tf:
                rel = _safe_member(member.name)
                if not member.isfile() or rel is None:
                    continue
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                if src is not None:
                    target.write_bytes(src.read())
                    yield FileRef(f"{path.name}!{rel}", target)
    except (tarfile.TarError, OSError, EOFError) as exc:
        faults.append(Fault("", path.name, "scan", f"unreadable archive: {exc}"))


def _zip_members(path: Path, faults: list[Fault]) -> Iterator[FileRef]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        faults.append(Fault("", path.name, "scan", f"unreadable archive: {exc}"))
        return
    for name in names:
        if _safe_member(name) is not None:
            yield FileRef(f"{path.name}!{name}", path, name)


def expand_sources(sources: Sequence[Path], workdir: Path, faults: list[Fault]) -> list[FileRef]:
    """List every file under the sources (folders walked recursively, archives opened), sorted by name.

    Args:
        sources: Files, folders, zip or tar archives.
        workdir: Where tar members are spooled.
        faults: Unreadable archives and missing sources are appended here.
    """
    refs: list[FileRef] = []
    for src in map(Path, sources):
        if not src.exists():
            faults.append(Fault("", str(src), "scan", "source does not exist"))
            continue
        files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
        for f in files:
            if zipfile.is_zipfile(f):
                refs.extend(_zip_members(f, faults))
            elif _is_tar(f):
                refs.extend(_spool_tar(f, workdir, faults))
            else:
                rel = f.relative_to(src) if src.is_dir() else PurePosixPath(f.name)
                refs.append(FileRef(f"{src.name}/{rel.as_posix()}" if src.is_dir() else f.name, f))
    return sorted(refs)


def _num(ds: pydicom.Dataset, key: str, default: float | None = None) -> float | None:
    try:
        value = ds.get(key)
        return default if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return default


def _spacing(ds: pydicom.Dataset) -> tuple[tuple[float, float] | None, str]:
    """Pixel spacing and where it came from; FOV / matrix as the documented fallback."""
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        sp = finite_floats(ds.get(key), 2)
        if sp and min(sp) > 0:
            return (sp[0], sp[1]), key
    fov = _num(ds, "ReconstructionDiameter")
    if fov is None:
        fovs = finite_floats(np.atleast_1d(ds.get("FieldOfViewDimensions") or []).tolist()[:1], 1)
        fov = fovs[0] if fovs else None
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if fov and rows and cols:
        return (fov / rows, fov / cols), "field_of_view"
    return None, "missing"


def _multi(value: Any) -> list[Any]:
    """A multi-valued element as a list (a single value becomes a one-item list)."""
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]


def _header(ref: FileRef, ds: pydicom.Dataset) -> Header:
    spacing, source = _spacing(ds)
    pos = finite_floats(ds.get("ImagePositionPatient"), 3)
    return Header(
        ref=ref,
        study_uid=str(ds.get("StudyInstanceUID", "") or ""),
        accession=str(ds.get("AccessionNumber", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""),
        patient_name=str(ds.get("PatientName", "") or ""),
        birth_date=str(ds.get("PatientBirthDate", "") or ""),
        institution=str(ds.get("InstitutionName", "") or ""),
        series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
        series_description=str(ds.get("SeriesDescription", "") or "").strip(),
        series_number=int(_num(ds, "SeriesNumber", 0) or 0),
        sop_uid=str(ds.get("SOPInstanceUID", "") or ""),
        instance_number=int(_num(ds, "InstanceNumber", 0) or 0),
        rows=int(ds.get("Rows", 0) or 0),
        cols=int(ds.get("Columns", 0) or 0),
        n_frames=int(_num(ds, "NumberOfFrames", 1) or 1),
        position=(pos[0], pos[1], pos[2]) if pos else None,
        orientation=finite_floats(ds.get("ImageOrientationPatient"), 6),
        pixel_spacing=spacing,
        spacing_source=source,
        slice_thickness=float(_num(ds, "SliceThickness", float("nan"))),
        trigger_time=_num(ds, "TriggerTime"),
        frame_time=_num(ds, "FrameTime"),
        image_type=tuple(str(v).strip().upper() for v in _multi(ds.get("ImageType"))),
        modality=str(ds.get("Modality", "") or ""),
        sequence_name=str(ds.get("SequenceName", "") or "").strip(),
        scanning_sequence=tuple(str(v).upper() for v in _multi(ds.get("ScanningSequence"))),
        transfer_syntax=str(getattr(ds.get("file_meta"), "TransferSyntaxUID", "") or ""),
        frames=frame_geometry(ds),
    )


@contextmanager
def _lenient() -> Iterator[None]:
    """Read values that break VR rules (common in real archives) without a warning per value."""
    settings = pydicom.config.settings
    saved = settings.reading_validation_mode
    settings.reading_validation_mode = pydicom.config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        settings.reading_validation_mode = saved


_HEADER_TAGS = [
    "StudyInstanceUID", "AccessionNumber", "PatientID", "PatientName", "PatientBirthDate", "InstitutionName",
    "SeriesInstanceUID", "SeriesDescription", "SeriesNumber", "SOPInstanceUID", "SOPClassUID", "InstanceNumber",
    "Rows", "Columns", "NumberOfFrames", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
    "ImagerPixelSpacing", "ReconstructionDiameter", "FieldOfViewDimensions", "SliceThickness", "TriggerTime",
    "FrameTime", "ImageType", "Modality", "SequenceName", "ScanningSequence", "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
]  # fmt: skip
"""The only tags parsed when scanning (parsing whole headers costs more than reading them)."""


def _dcmread(data: bytes, stop_before_pixels: bool) -> pydicom.Dataset:
    tags = _HEADER_TAGS if stop_before_pixels else None
    try:
        return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels, specific_tags=tags)
    except InvalidDicomError:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels, force=True, specific_tags=tags)
        if "Rows" not in ds or "SOPClassUID" not in ds:
            raise
        return ds


def read_header(ref: FileRef) -> Header | Fault:
    """Read one file's header; return a :class:`Fault` (never raise) when it is not a usable DICOM image."""
    try:
        data = ref.read_bytes()
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        return Fault("", ref.name, "scan", f"unreadable file: {exc}")
    if not data:
        return Fault("", ref.name, "scan", "zero-byte file")
    with _lenient():
        try:
            ds = _dcmread(data, stop_before_pixels=True)
            if not ds.get("Rows") or not ds.get("Columns"):
                return Fault("", ref.name, "scan", "DICOM without an image (no Rows/Columns)")
            return _header(ref, ds)
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError) as exc:
            return Fault("", ref.name, "scan", f"not a DICOM file: {type(exc).__name__}: {exc}"[:300])


def scan_headers(refs: Sequence[FileRef]) -> tuple[list[Header], list[Fault]]:
    """Read every file's header; return the headers of DICOM images and a fault per other file."""
    headers: list[Header] = []
    faults: list[Fault] = []
    for ref in refs:
        out = read_header(ref)
        (faults if isinstance(out, Fault) else headers).append(out)
    return headers, faults


def read_pixels(ref: FileRef) -> np.ndarray:
    """Read a file's frames as float32 ``[N, H, W]`` with RescaleSlope/Intercept applied.

    Raises:
        ValueError: if the pixel data is missing, truncated or undecodable (callers turn this into a fault).
    """
    try:
        with _lenient():
            ds = _dcmread(ref.read_bytes(), stop_before_pixels=False)
            if "PixelData" not in ds:
                raise ValueError("no pixel data")
            arr = np.asarray(ds.pixel_array, dtype=np.float32)
    except (InvalidDicomError, OSError, EOFError, AttributeError, NotImplementedError, RuntimeError) as exc:
        raise ValueError(f"pixel data unreadable: {type(exc).__name__}: {exc}") from exc
    n_frames = int(_num(ds, "NumberOfFrames", 1) or 1)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] != n_frames or int(ds.Rows) != arr.shape[1] or int(ds.Columns) != arr.shape[2]:
        raise ValueError(f"pixel array shape {arr.shape} disagrees with the header")
    slope, intercept = frame_rescale(ds, n_frames)
    return arr * slope[:, None, None] + intercept[:, None, None]


def undecodable_reason(transfer_syntax: str) -> str | None:
    """Why pixel data in ``transfer_syntax`` cannot be decoded here (None when it can, or when it is not given)."""
    if not transfer_syntax:
        return None
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    uid = UID(transfer_syntax)
    name = f"{uid.name} ({uid})" if uid.is_transfer_syntax else repr(transfer_syntax)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        return f"transfer syntax {name}: no pixel data decoder exists for it in pydicom; convert the series first"
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "install pylibjpeg and its plugins"
        return f"transfer syntax {name}: no decoder installed ({missing})"
    return None
