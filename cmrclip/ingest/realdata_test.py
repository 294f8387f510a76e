"""Ingestion of the real DICOM samples in ../shared/data (Sunnybrook SAX cines, the 1995 single-slice cine)."""

from __future__ import annotations

import functools
import io
import json
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cmrclip.ingest.deid import hash_key
from cmrclip.ingest.geometry import plane_normal
from cmrclip.ingest.pipeline import IngestConfig, ingest
from cmrclip.ingest.preprocess import patient_to_pixel, pixel_to_patient
from cmrclip.ingest.store import StudyStore

SALT = "sunnybrook-test"
CASES = {"SCD0000101": "SCD0000101_SC-HF-I-1", "SCD0000201": "SCD0000201_SC-HF-I-2"}


@pytest.fixture(scope="module")
def sunnybrook_store(shared_data, tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("sunnybrook") / "store"
    tars = sorted((shared_data / "sunnybrook" / "dicom_tar_xz").glob("*.tar.xz"))
    summary = ingest(tars, store, IngestConfig(salt=SALT, workers=2))
    assert (summary.stored, summary.partial, summary.rejected) == (2, 0, 0)
    return store


@functools.cache
def _study_uid(shared_data: Path, case: str) -> tuple[str, dict[int, pydicom.Dataset]]:
    """The case's StudyInstanceUID and the headers of its files by file number N (N.dcm)."""
    headers = {}
    with tarfile.open(shared_data / "sunnybrook" / "dicom_tar_xz" / f"{case}.tar.xz") as tf:
        for m in tf:
            if m.isfile() and m.name.endswith(".dcm"):
                data = tf.extractfile(m).read()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the archive's UIDs break VR rules
                    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
                    headers[int(Path(m.name).stem)] = ds
                    uid = str(ds.StudyInstanceUID)
    return uid, headers


@pytest.mark.slow
def test_sunnybrook_stacks_ordered(shared_data, sunnybrook_store):
    summary = json.loads((shared_data / "sunnybrook" / "labels_derived" / "summary.json").read_text())
    store = StudyStore(sunnybrook_store)
    for case in summary:
        uid, _ = _study_uid(shared_data, case["patient_id"])
        with store.open(hash_key(uid, SALT)) as study:
            assert list(study.views) == ["SAX"]
            meta = study.views["SAX"]
            assert (meta.n_slices, meta.n_frames) == (case["n_slices"], case["n_phases"])
            geo = study.geometry("SAX")
            along = geo["positions_mm"] @ plane_normal(study.view_attrs("SAX")["orientation"])
            assert np.all(np.diff(along) > 9.0)  # ascending along the normal, 10 mm apart
            assert np.all(np.diff(geo["trigger_times_ms"], axis=1) > 0)
            assert study.view_attrs("SAX")["view_source"] == "geometry"
            pixels = study.read_view("SAX")
            assert pixels.dtype == np.uint8 and 0 < pixels.mean() < 255


@pytest.mark.slow
def test_sunnybrook_lv_cavity_inside_crop(shared_data, sunnybrook_store):
    """Contour masks (acquired pixels) -> patient mm -> stored pixels: inside the crop, and bright blood."""
    store = StudyStore(sunnybrook_store)
    for case, label_name in CASES.items():
        labels = np.load(shared_data / "sunnybrook" / "labels_derived" / f"{label_name}_labels_ed_es.npz")
        uid, headers = _study_uid(shared_data, case)
        ed = int(labels["ed_phase"])
        with store.open(hash_key(uid, SALT)) as study:
            attrs, geo = study.view_attrs("SAX"), study.geometry("SAX")
            normal = plane_normal(attrs["orientation"])
            pixels = study.read_view("SAX")
            cavity, wall = [], []
            for s, mask in enumerate(labels["label_ed"]):
                if not mask.any():
                    continue
                h = headers[s * 20 + ed + 1]  # the file holding this slice at ED (file naming documented)
                ipp, iop = np.array(h.ImagePositionPatient, float), tuple(float(x) for x in h.ImageOrientationPatient)
                sp = tuple(float(x) for x in h.PixelSpacing)
                stored = int(np.argmin(np.abs(geo["positions_mm"] @ normal - ipp @ normal)))
                frame = int(np.argmin(np.abs(geo["trigger_times_ms"][stored] - float(h.TriggerTime))))
                for lab, bucket in ((1, cavity), (2, wall)):
                    for r, c in np.argwhere(mask == lab):
                        p = pixel_to_patient(np.array([r, c]), ipp, iop, sp)
                        rc = patient_to_pixel(p, geo["positions_mm"][stored], iop, tuple(attrs["pixel_spacing_mm"]))
                        ri, ci = np.rint(rc).astype(int)
                        assert 0 <= ri < pixels.shape[2] and 0 <= ci < pixels.shape[3], (case, s, r, c)
                        bucket.append(pixels[stored, frame, ri, ci])
            assert len(cavity) > 500
            assert np.mean(cavity) > 1.5 * np.mean(wall)  # SSFP: the blood pool is brighter than myocardium


def test_single_slice_1995_cine(shared_data, tmp_path):
    src = shared_data / "dicom_single_slice_cine"
    summary = ingest([src], tmp_path / "a", IngestConfig(salt=SALT, workers=1))
    assert summary.rejected == 1
    assert any("no ImageOrientationPatient" in f["reason"] for f in StudyStore(tmp_path / "a").faults())
    summary = ingest([src], tmp_path / "b", IngestConfig(salt=SALT, workers=1, fallback_view="SAX"))
    assert summary.stored == 1
    store = StudyStore(tmp_path / "b")
    with store.open(store.manifest()["study_key"][0]) as study:
        assert (study.views["SAX"].n_slices, study.views["SAX"].n_frames) == (1, 16)
        attrs = study.view_attrs("SAX")
        assert attrs["view_source"] == "fallback" and attrs["prov_spacing_source"] == "field_of_view"
        np.testing.assert_allclose(attrs["prov_acquired_spacing_mm"], [350 / 256, 350 / 256])
        np.testing.assert_allclose(np.diff(study.geometry("SAX")["trigger_times_ms"][0]), 69.47, atol=1e-6)
