"""The realistic cohort: exact truth from its own masks, sane warped labels, only the given hearts, bad sources."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy import ndimage

from cmrclip.errors import CmrclipError
from cmrclip.synth.anatomy import Tissue
from cmrclip.synth.preview import load_study_views
from cmrclip.synth.realistic import generate_realistic_cohort, load_real_hearts


@pytest.fixture(scope="module")
def cohort(shared_data, tmp_path_factory):
    hearts = load_real_hearts(mnms2=[shared_data / "mnms2_subject001"])
    out = tmp_path_factory.mktemp("realistic")
    generate_realistic_cohort(out, 3, 5, hearts, masks=True, matrix=96, phases=8, sites=["northfield", "hillcrest"])
    return out


def _rows(out) -> list[dict[str, str]]:
    with (out / "ground_truth.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_truth_equals_the_lvef_of_the_written_masks(cohort):
    rows = _rows(cohort)
    assert len(rows) == 3 and len(rows[0]) == 8 + 39
    for row in rows:
        with np.load(cohort / "masks" / f"{row['study_id']}.npz") as npz:
            labels, spacing = npz["labels"], npz["pixel_spacing_mm"]
            assert str(npz["source_subject"]) == "mnms2_001"  # only the hearts it was given
        lv = (labels == Tissue.LV_BLOOD).sum(axis=(0, 2, 3)).astype(float)
        assert float(row["lvef"]) == pytest.approx(100 * (lv[0] - lv.min()) / lv[0], abs=1.0)
        voxel_ml = spacing[0] * spacing[1] * 10.0 / 1000
        assert float(row["lvedv_ml"]) == pytest.approx(lv[0] * voxel_ml, rel=0.03)


@pytest.mark.slow
def test_warped_labels_are_topologically_sane(cohort):
    for row in _rows(cohort):
        with np.load(cohort / "masks" / f"{row['study_id']}.npz") as npz:
            labels = npz["labels"]
        n_slices = labels.shape[0]
        for s in range(n_slices // 3, n_slices - n_slices // 3):  # mid-ventricular slices
            for f in range(labels.shape[1]):
                lv = labels[s, f] == Tissue.LV_BLOOD
                if lv.sum() < 10:
                    continue
                assert ndimage.label(lv)[1] == 1, f"cavity split, slice {s} frame {f}"
                assert (ndimage.binary_fill_holes(lv) == lv).all(), f"hole in the cavity, slice {s} frame {f}"
                ring = ndimage.binary_dilation(lv) & ~lv
                assert (labels[s, f][ring] == Tissue.LV_MYO).mean() > 0.9, f"cavity not walled, slice {s} frame {f}"


@pytest.mark.slow
def test_studies_are_readable_sax_cines(cohort):
    row = _rows(cohort)[0]
    views = load_study_views(cohort / "dicom" / row["patient_id"] / row["study_id"])
    assert set(views) == {"SAX"} and views["SAX"].ndim == 4 and views["SAX"].shape[1] == 8


def test_bad_sources_name_the_file(tmp_path):
    with pytest.raises(CmrclipError, match="nowhere"):
        load_real_hearts(acdc_packs=[tmp_path / "nowhere.tar.xz"])
    with pytest.raises(CmrclipError, match="cines"):
        load_real_hearts(cine_dirs=[tmp_path / "cines"])
    (tmp_path / "mnms").mkdir()
    (tmp_path / "mnms" / "001_SA_ED.nii.gz").write_bytes(b"")
    with pytest.raises(CmrclipError, match=r"001 lacks .*001_SA_ES\.nii\.gz"):
        load_real_hearts(mnms2=[tmp_path / "mnms"])
    with pytest.raises(CmrclipError, match="no real heart"):
        generate_realistic_cohort(tmp_path / "out", 2, 0, [])


@pytest.mark.slow
def test_held_out_subjects_never_build_studies(shared_data, tmp_path):
    from cmrclip.synth.realistic import hearts_from_sources

    (tmp_path / "acdc_cine").mkdir()
    (tmp_path / "acdc_cine" / "patient001").symlink_to(shared_data / "acdc_cine" / "patient001")
    (tmp_path / "mnms2_subject001").symlink_to(shared_data / "mnms2_subject001")
    assert {h.subject for h in hearts_from_sources(tmp_path)} == {"patient001", "mnms2_001"}
    assert [h.subject for h in hearts_from_sources(tmp_path, exclude={"patient001"})] == ["mnms2_001"]
    with pytest.raises(CmrclipError, match="every real heart is excluded"):
        hearts_from_sources(tmp_path, exclude={"patient001", "mnms2_001"})
