from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from cmrclip.ingest.faults import Fault
from cmrclip.ingest.nifti import find_nifti_studies, read_acdc_info, read_nifti
from cmrclip.ingest.pipeline import IngestConfig, ingest
from cmrclip.ingest.preprocess import pixel_to_patient
from cmrclip.ingest.scan import FileRef, expand_sources
from cmrclip.ingest.store import StudyStore


def _affine() -> np.ndarray:
    theta = np.radians(30)
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([1.5, 1.25, 8.0])
    aff[:3, 3] = [-40.0, 25.0, 12.0]
    return aff


def test_read_nifti_geometry_is_exact(tmp_path):
    data = np.zeros((20, 16, 5, 7), dtype=np.int16)  # (i, j, k, t)
    data[3, 11, 2, 4] = 1000
    img = nib.Nifti1Image(data, _affine())
    img.header.set_xyzt_units("mm", "msec")
    img.header["pixdim"][4] = 40.0
    path = tmp_path / "patient007_4d.nii.gz"
    nib.save(img, path)
    view = read_nifti(FileRef(path.name, path))
    assert view.volume.shape == (5, 7, 16, 20)
    assert view.volume[2, 4, 11, 3] == 1000
    assert view.pixel_spacing_mm == pytest.approx((1.25, 1.5)) and view.slice_thickness_mm == pytest.approx(8.0)
    np.testing.assert_allclose(view.trigger_times_ms[0], np.arange(7) * 40.0)
    ras = _affine() @ np.array([3, 11, 2, 1.0])
    lps = ras[:3] * np.array([-1, -1, 1])
    got = pixel_to_patient(np.array([11, 3]), view.positions_mm[2], view.orientation, view.pixel_spacing_mm)
    np.testing.assert_allclose(got, lps, atol=1e-6)


def test_acdc_layout_and_info(tmp_path):
    folder = tmp_path / "training" / "patient001"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    vol = rng.integers(0, 300, (24, 24, 4, 6)).astype(np.int16)
    nib.save(nib.Nifti1Image(vol, _affine()), folder / "patient001_4d.nii.gz")
    nib.save(nib.Nifti1Image(vol[..., 0], _affine()), folder / "patient001_frame01.nii.gz")
    nib.save(nib.Nifti1Image(vol[..., 0].astype(np.uint8), _affine()), folder / "patient001_frame01_gt.nii.gz")
    (folder / "Info.cfg").write_text("ED: 1\nES: 5\nGroup: DCM\nHeight: 184.0\nNbFrame: 6\nWeight: 95.0\n")
    assert read_acdc_info((folder / "Info.cfg").read_text())["Group"] == "DCM"
    refs = expand_sources([tmp_path / "training"], tmp_path / "work", [])
    studies = find_nifti_studies(refs, keyframes=False, faults=[])
    assert list(studies) == ["patient001"] and [label for label, _ in studies["patient001"]["SAX"]] == [""]
    ingest([tmp_path / "training"], tmp_path / "store", IngestConfig(salt="s", workers=1, crop_size=32))
    store = StudyStore(tmp_path / "store")
    with store.open(store.manifest()["study_key"][0]) as study:
        assert (study.views["SAX"].n_slices, study.views["SAX"].n_frames) == (4, 6)
        assert study.attrs["prov_ed_frame"] == 0 and study.attrs["prov_es_frame"] == 4
        assert study.view_attrs("SAX")["view_source"] == "nifti"


def test_mnms2_long_axis_cine_and_keyframes(shared_data, tmp_path):
    faults: list[Fault] = []
    refs = expand_sources([shared_data / "mnms2_subject001"], tmp_path, faults)
    assert set(find_nifti_studies(refs, False, faults)["001"]) == {"4CH"}
    assert any("ED/ES volumes only" in f.reason for f in faults)
    la = read_nifti(next(r for r in refs if r.name.endswith("001_LA_CINE.nii.gz")))
    assert la.volume.shape == (1, 25, 256, 256)
    assert la.pixel_spacing_mm == pytest.approx((1.7188, 1.7188), abs=1e-4)
    studies = find_nifti_studies(refs, True, [])
    assert [label for label, _ in studies["001"]["SAX"]] == ["ED", "ES"]
    cfg = IngestConfig(salt="s", workers=1, crop_size=64, nifti_keyframes=False)  # the cine only (default: + ED/ES)
    ingest([shared_data / "mnms2_subject001"], tmp_path / "store", cfg)
    store = StudyStore(tmp_path / "store")
    with store.open(store.manifest()["study_key"][0]) as study:
        assert list(study.views) == ["4CH"] and study.views["4CH"].n_frames == 25
        np.testing.assert_allclose(study.view_attrs("4CH")["prov_acquired_spacing_mm"], [1.7188, 1.7188], atol=1e-4)


def test_acdc_volumes_with_spacing(shared_data, tmp_path):
    refs = expand_sources([shared_data / "cinema_examples" / "acdc"], tmp_path, [])
    studies = find_nifti_studies(refs, True, [])
    items = studies["acdc"]["SAX"]
    assert [label for label, _ in items] == ["ED", "ES"]
    ed = read_nifti(items[0][1])
    assert ed.volume.shape == (10, 1, 192, 192)
    assert ed.pixel_spacing_mm == pytest.approx((1.0, 1.0)) and ed.slice_thickness_mm == pytest.approx(10.0)
    along = ed.positions_mm @ np.cross(ed.orientation[:3], ed.orientation[3:])
    np.testing.assert_allclose(np.diff(along), 10.0, atol=1e-4)


@pytest.mark.parametrize(
    ("sax", "lax"),
    [
        ("mnms2_subject001/001_SA_ED.nii.gz", "mnms2_subject001/001_LA_CINE.nii.gz"),
        ("cinema_examples/mnms2/sax_ed.nii.gz", "cinema_examples/mnms2/lax_4c_ed.nii.gz"),
    ],
)
def test_real_four_chamber_cines_are_4ch_by_geometry_alone(shared_data, sax, lax):
    """The view angles are fitted on real long-axis cines: without a description, a real 4CH is called 4CH."""
    from cmrclip.ingest.views import SeriesPlane, identify_views

    planes = [read_nifti(FileRef(name, shared_data / name, None)) for name in (sax, lax)]
    series = [SeriesPlane("", v.orientation, len(v.positions_mm)) for v in planes]
    decisions = identify_views(series)
    assert [d.view for d in decisions] == ["SAX", "4CH"] and decisions[1].source == "geometry"
