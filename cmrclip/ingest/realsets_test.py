"""Readers of the real evaluation sets: the shared layouts, and clear errors naming the file for bad input."""

from __future__ import annotations

import shutil

import pytest

from cmrclip.errors import DataError
from cmrclip.ingest.realsets import acdc_cine_subjects, mnms2_subjects, read_truth, sunnybrook_subjects


def test_shared_layouts(shared_data):
    cines = acdc_cine_subjects(shared_data / "acdc_cine")
    assert len(cines) == 20 and cines[0].subject == "patient001"
    assert (cines[0].group, cines[0].lvef) == ("DCM", 23.65)  # the whole heart's LVEF from cines.csv
    one = acdc_cine_subjects(shared_data / "acdc_cine" / "patient061")
    assert [s.subject for s in one] == ["patient061"] and one[0].group == "NOR"
    tars = sorted((shared_data / "sunnybrook" / "dicom_tar_xz").glob("*.tar.xz"))
    assert [(s.subject, s.lvef) for s in sunnybrook_subjects(tars)] == [("SCD0000101", 26.2), ("SCD0000201", 25.5)]
    (mnms,) = mnms2_subjects([shared_data / "mnms2_subject001"])
    assert mnms.subject == "mnms2_001" and mnms.lvef == pytest.approx(64.1, abs=0.1)


def test_test_folder_without_group_takes_the_labels_csv(shared_data, tmp_path):
    folder = tmp_path / "test" / "patient099"
    shutil.copytree(shared_data / "acdc_cine" / "patient061", folder)
    (folder / "patient061_4d.nii.gz").rename(folder / "patient099_4d.nii.gz")
    (folder / "Info.cfg").write_text("NbFrame: 25\n")
    with pytest.raises(DataError, match=r"Info\.cfg: no ED/ES frames"):
        acdc_cine_subjects(tmp_path / "test")
    labels = tmp_path / "labels.csv"
    labels.write_text("subject,group,lvef\npatient099,HCM,71.5\n")
    (s,) = acdc_cine_subjects(tmp_path / "test", labels)
    assert (s.subject, s.group, s.lvef) == ("patient099", "HCM", 71.5)
    labels.write_text("subject,group,lvef\npatient100,HCM,71.5\n")
    with pytest.raises(DataError, match=r"labels\.csv: no truth for subject\(s\) \['patient099'\]"):
        acdc_cine_subjects(tmp_path / "test", labels)


def test_bad_inputs_name_the_file(tmp_path, shared_data):
    with pytest.raises(DataError, match=r"nowhere: cine folder not found"):
        acdc_cine_subjects(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no patientXXX/Info\.cfg"):
        acdc_cine_subjects(tmp_path / "empty")
    with pytest.raises(DataError, match=r"SCD9\.tar\.xz: Sunnybrook archive not found"):
        sunnybrook_subjects([tmp_path / "SCD9.tar.xz"])
    with pytest.raises(DataError, match="no NNN_SA_ED_gt"):
        mnms2_subjects([tmp_path / "empty"])
    bad = tmp_path / "lvef.csv"
    bad.write_text("subject,ef\nSCD0000101,20\n")
    with pytest.raises(DataError, match=r"lvef\.csv: missing column\(s\) \['lvef'\]"):
        read_truth(bad, ["SCD0000101"], ("lvef",))
    bad.write_text("subject,lvef\nSCD0000101,high\n")
    with pytest.raises(DataError, match=r"SCD0000101, lvef.*not a number"):
        read_truth(bad, ["SCD0000101"], ("lvef",))
