"""Test helpers for ingestion: tiny DICOM cine studies with known geometry, written with pydicom."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cmrclip.ingest.scan import FileRef, Header

MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
LONG_AXIS = np.array([0.6, -0.5, -0.6]) / np.linalg.norm([0.6, -0.5, -0.6])  # base -> apex, LPS
ROTATION = {"4CH": 162.0, "2CH": 66.0, "3CH": 86.0}  # near configs/views.yaml
DESCRIPTIONS = {"SAX": "SAX_FIESTA_BH", "4CH": "CINE_segmented_LAX_4Ch", "2CH": "cine 2ch", "3CH": "3CH LVOT cine"}


def _unit(v):
    return np.asarray(v, float) / np.linalg.norm(v)


def sax_frame():
    """In-plane (u, v) of the SAX plane: u = superior projected, v = a x u."""
    a = LONG_AXIS
    u = _unit(np.array([0.0, 0.0, 1.0]) - a[2] * a)
    return u, np.cross(a, u)


def lax_orientation(view):
    """Row/col directions of a long-axis plane whose normal is at the view's rotation."""
    u, v = sax_frame()
    r = np.radians(ROTATION[view])
    m = np.cos(r) * u + np.sin(r) * v
    col = LONG_AXIS
    row = np.cross(col, m)
    return np.concatenate([row, col])


def _image(rows, centre_rc, radius_px, rng):
    rr, cc = np.mgrid[0:rows, 0:rows]
    disk = (rr - centre_rc[0]) ** 2 + (cc - centre_rc[1]) ** 2 <= radius_px**2
    img = 100 + 700 * disk + rng.normal(0, 10, (rows, rows))
    return np.clip(img, 0, 4000).astype(np.uint16)


def write_image(path, meta, pixels, position, orientation, trigger, instance, spacing):
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MR_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = sop = generate_uid(entropy_srcs=[str(path)])
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = MR_STORAGE, sop, "MR"
    for key, value in meta.items():
        setattr(ds, key, value)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "CINE"]
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [round(float(x), 4) for x in position]
    ds.ImageOrientationPatient = [round(float(x), 6) for x in orientation]
    ds.PixelSpacing = [spacing, spacing]
    ds.SliceThickness = 8.0
    ds.TriggerTime = trigger
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_cine_study(
    root: Path,
    patient_id: str,
    accession: str,
    seed: int = 0,
    n_slices: int = 4,
    n_phases: int = 8,
    rows: int = 24,
    spacing: float = 2.0,
    descriptions: bool = True,
    split_sax: bool = False,
    views=("SAX", "4CH", "2CH", "3CH"),
) -> Path:
    """Write one study (SAX stack + long-axis cines + a localiser) with shuffled file names; return its folder."""
    rng = np.random.default_rng(seed)
    folder = root / patient_id / accession
    centre = np.array([10.0, -20.0, 30.0])
    meta = {
        "PatientID": patient_id,
        "PatientName": f"Doe^Jane{patient_id[-3:]}",
        "PatientBirthDate": "19700101",
        "AccessionNumber": accession,
        "StudyInstanceUID": generate_uid(entropy_srcs=[accession]),
        "InstitutionName": "Mercy General Hospital",
    }
    half = (rows - 1) / 2 * spacing
    number = 0
    for series_no, view in enumerate(views, start=2):
        meta_s = {**meta, "SeriesInstanceUID": generate_uid(entropy_srcs=[accession, view]), "SeriesNumber": series_no}
        if descriptions:
            meta_s["SeriesDescription"] = DESCRIPTIONS[view]
        if view == "SAX":
            u, v = sax_frame()
            orientation = np.concatenate([v, -u])
            offsets = [(k - (n_slices - 1) / 2) * 8.0 for k in range(n_slices)]
        else:
            orientation = lax_orientation(view)
            offsets = [0.0]
        row_dir, col_dir = orientation[:3], orientation[3:]
        for k, off in enumerate(offsets):
            if split_sax and view == "SAX":  # one series per slice, as some vendors do
                uid = generate_uid(entropy_srcs=[accession, view, str(k)])
                meta_s = {**meta_s, "SeriesInstanceUID": uid, "SeriesNumber": 100 + k}
            ipp = centre + off * LONG_AXIS - half * row_dir - half * col_dir
            for p in range(n_phases):
                radius = 3 + 2 * np.cos(2 * np.pi * p / n_phases)
                img = _image(rows, ((rows - 1) / 2, (rows - 1) / 2), radius, rng)
                number += 1
                name = f"IM{rng.integers(1e9):09d}.dcm"
                sub = folder / f"s{meta_s['SeriesNumber']}"
                write_image(sub / name, meta_s, img, ipp, orientation, 40.0 * p, number, spacing)
    loc = {**meta, "SeriesInstanceUID": generate_uid(entropy_srcs=[accession, "loc"]), "SeriesNumber": 1}
    loc["SeriesDescription"] = "localizer"
    for k in range(3):
        img = _image(rows, (5, 5), 2, rng)
        write_image(folder / "loc" / f"L{k}.dcm", loc, img, centre, (1, 0, 0, 0, 1, 0), 0.0, 900 + k, spacing)
    return folder


def truth_view(site, description: str) -> str:
    """The view the generator wrote a series for, from its site's naming conventions (a ``cmrclip.synth.sites.Site``).

    Independent of the ingestion rules under test: ``site.lax(view)`` names the long-axis series and
    ``site.sax_description`` (``{n}`` = slice number) the SAX ones.
    """
    for view in ("2CH", "3CH", "4CH"):
        if description == site.lax(view):
            return view
    if re.fullmatch(re.escape(site.sax_description).replace(re.escape("{n}"), r"\d+"), description):
        return "SAX"
    raise AssertionError(f"{description!r} is not a series name of site {site.key}")


@pytest.fixture
def cine_factory():
    """The :func:`write_cine_study` helper, for tests that need their own DICOM studies."""
    return write_cine_study


def header(name, pos, t, inst, orientation=(1, 0, 0, 0, 1, 0), sop=None, rows=8) -> Header:
    """A parsed header of one 8x8 cine image (for unit tests that need no file)."""
    return Header(
        ref=FileRef(name, None),  # type: ignore[arg-type]
        study_uid="1.2",
        accession="A1",
        patient_id="P1",
        patient_name="X^Y",
        birth_date="",
        institution="",
        series_uid="1.2.3",
        series_description="",
        series_number=1,
        sop_uid=sop or name,
        instance_number=inst,
        rows=rows,
        cols=8,
        n_frames=1,
        position=pos,
        orientation=tuple(float(x) for x in orientation),
        pixel_spacing=(1.5, 1.5),
        spacing_source="PixelSpacing",
        slice_thickness=8.0,
        trigger_time=t,
        frame_time=None,
        image_type=("ORIGINAL",),
        modality="MR",
    )
