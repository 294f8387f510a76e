"""Write cine series as one MR Image Storage DICOM file per image, with consistent geometry and fake PHI."""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cmrclip.synth.render import Plane
from cmrclip.synth.sites import Site

__all__ = ["MR_IMAGE_STORAGE", "Patient", "SeriesSpec", "StudySpec", "uid", "write_series"]

logger = logging.getLogger(__name__)

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def uid(*parts: object) -> str:
    """A deterministic DICOM UID derived from ``parts`` (same parts, same UID)."""
    return generate_uid(entropy_srcs=[str(p) for p in parts])


@dataclass(frozen=True)
class Patient:
    """Fake but realistic identifiers."""

    patient_id: str
    name: str
    birth_date: str
    sex: str
    weight_kg: float
    height_m: float


@dataclass(frozen=True)
class StudySpec:
    """Study-level DICOM attributes."""

    accession: str
    study_uid: str
    frame_uid: str
    date: str
    time: str
    age: int
    rr_ms: float


@dataclass(frozen=True)
class SeriesSpec:
    """One series: its planes (one per slice), description, number and phases."""

    description: str
    number: int
    planes: list[Plane]
    n_phases: int


def _base(site: Site, patient: Patient, study: StudySpec, series: SeriesSpec) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.Modality = "MR"
    ds.Manufacturer = site.manufacturer
    ds.ManufacturerModelName = site.model
    ds.InstitutionName = site.institution
    ds.MagneticFieldStrength = site.field_strength
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.PatientAge = f"{study.age:03d}Y"
    ds.PatientWeight = f"{patient.weight_kg:.1f}"
    ds.PatientSize = f"{patient.height_m:.2f}"
    ds.ReferringPhysicianName = "SMITH^ALEX"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study.date
    ds.StudyTime = ds.SeriesTime = study.time
    ds.AccessionNumber = study.accession
    ds.StudyID = study.accession[-6:]
    ds.StudyDescription = "MR CARDIAC MORPHOLOGY AND FUNCTION"
    ds.StudyInstanceUID = study.study_uid
    ds.FrameOfReferenceUID = study.frame_uid
    ds.SeriesDescription = ds.ProtocolName = series.description
    ds.SeriesNumber = series.number
    ds.BodyPartExamined = "HEART"
    ds.PatientPosition = "HFS"
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "SS"
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = 3.2 if site.field_strength < 2 else 2.9
    ds.EchoTime = 1.4
    ds.FlipAngle = 60 if site.field_strength < 2 else 45
    ds.NominalInterval = round(study.rr_ms)
    ds.CardiacNumberOfImages = series.n_phases
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12 if site.max_value < 4096 else 16
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    return ds


def _file_name(site: Site, series: SeriesSpec, instance: int, sop_uid: str) -> str:
    if site.file_naming == "uid":
        return f"{sop_uid}.dcm"
    if site.file_naming == "seq":
        return f"{instance:05d}"
    return f"IM-{series.number:04d}-{instance:04d}.dcm"


def _order(site: Site, n_slices: int, n_phases: int) -> list[tuple[int, int]]:
    if site.instance_order == "slice_major":
        return [(s, f) for f in range(n_phases) for s in range(n_slices)]
    return [(s, f) for s in range(n_slices) for f in range(n_phases)]


def _encode(elem: DataElement) -> bytes:
    """One data element in explicit VR little endian (through pydicom; used once per series)."""
    buf = DicomBytesIO()
    buf.is_little_endian = True
    buf.is_implicit_VR = False
    write_data_element(buf, elem)
    return buf.getvalue()


_LONG_VRS = {"OB", "OW", "OF", "SQ", "UT", "UN"}


def _element(tag: int, vr: str, value: bytes) -> bytes:
    """Encode one element (explicit VR little endian) directly: the per-file fast path."""
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB") else b" "
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if vr in _LONG_VRS:
        return head + struct.pack("<HI", 0, len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def _ds(*values: float) -> bytes:
    return "\\".join(f"{v:.8g}" for v in values).encode("ascii")


def _meta(sop: str) -> bytes:
    elements = [
        _element(0x00020001, "OB", b"\0\1"),
        _element(0x00020002, "UI", MR_IMAGE_STORAGE.encode()),
        _element(0x00020003, "UI", sop.encode()),
        _element(0x00020010, "UI", ExplicitVRLittleEndian.encode()),
        _element(0x00020012, "UI", uid("cmrclip-synth").encode()),
        _element(0x00020013, "SH", b"CMRCLIP_SYNTH"),
    ]
    body = b"".join(elements)
    return b"\0" * 128 + b"DICM" + _element(0x00020000, "UL", struct.pack("<I", len(body))) + body


def _slice_elements(plane: Plane, index: int) -> dict[int, bytes]:
    return {
        0x00200012: _element(0x00200012, "IS", str(index + 1).encode()),
        0x00200032: _element(0x00200032, "DS", _ds(*(round(float(v), 4) for v in plane.position))),
        0x00200037: _element(0x00200037, "DS", _ds(*(round(float(v), 6) for v in (*plane.row_dir, *plane.col_dir)))),
        0x00201041: _element(0x00201041, "DS", _ds(round(float(plane.position @ plane.normal), 4))),
    }


def write_series(
    folder: Path,
    pixels: list[np.ndarray],
    site: Site,
    patient: Patient,
    study: StudySpec,
    series: SeriesSpec,
) -> int:
    """Write one series (``pixels[slice]`` uint16 [F, rows, cols]) into ``folder``; returns the file count.

    The constant elements are encoded once per series (by pydicom), the per-slice ones once per slice, and each
    file adds its own UID, instance number, trigger time and pixels.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ds = _base(site, patient, study, series)
    series_uid = uid(study.study_uid, "series", series.number)
    ds.SeriesInstanceUID = series_uid
    ds.Rows, ds.Columns = series.planes[0].rows, series.planes[0].cols
    ds.PixelSpacing = [round(series.planes[0].spacing, 6)] * 2
    ds.SliceThickness = round(series.planes[0].thickness, 3)
    ds.WindowCenter, ds.WindowWidth = int(site.max_value * 0.45), int(site.max_value * 0.9)
    static = {int(elem.tag): _encode(elem) for elem in ds}
    per_slice = [_slice_elements(plane, i) for i, plane in enumerate(series.planes)]
    for number, (s, f) in enumerate(_order(site, len(series.planes), series.n_phases), start=1):
        sop = uid(series_uid, number)
        own = {
            0x00080018: _element(0x00080018, "UI", sop.encode()),
            0x00181060: _element(0x00181060, "DS", _ds(round(study.rr_ms * f / series.n_phases, 2))),
            0x00200013: _element(0x00200013, "IS", str(number).encode()),
            0x7FE00010: _element(0x7FE00010, "OW", np.ascontiguousarray(pixels[s][f], dtype="<u2").tobytes()),
        }
        elements = static | per_slice[s] | own
        body = b"".join(elements[tag] for tag in sorted(elements))
        (folder / _file_name(site, series, number, sop)).write_bytes(_meta(sop) + body)
    return len(series.planes) * series.n_phases
