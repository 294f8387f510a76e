from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from cmrclip.conditions import condition_keys
from cmrclip.errors import ConfigError
from cmrclip.synth import GT_COLUMNS, generate_cohort
from cmrclip.synth.identity import plan_cohort
from cmrclip.synth.lexicon import POSITIVE
from cmrclip.synth.preview import _view_of

NEGATED = re.compile(r"^(?:[a-z ]+: )?(no |there is no |.* is not seen)")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _headers(study_dir: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in _files(study_dir)]


def test_layout_and_ground_truth_columns(tiny_cohort):
    gt = pd.read_csv(tiny_cohort / "ground_truth.csv", dtype={"study_id": str, "patient_id": str})
    assert list(gt.columns) == GT_COLUMNS + condition_keys()
    assert len(gt) == 8 and gt["study_id"].is_unique
    assert gt["site"].nunique() >= 2
    assert gt.groupby("patient_id").size().max() >= 2  # a patient with two studies
    assert set(np.unique(gt[condition_keys()].to_numpy())) <= {0, 1}
    assert gt["lvef"].between(10, 85).all() and gt["rvef"].between(10, 85).all()
    np.testing.assert_allclose(gt["lvef"], 100 * (1 - gt["lvesv_ml"] / gt["lvedv_ml"]), atol=0.02)
    for row in gt.itertuples():
        assert (tiny_cohort / "dicom" / row.patient_id / row.study_id).is_dir()
        assert (tiny_cohort / "masks" / f"{row.study_id}.npz").is_file()


def test_every_file_reads_and_ids_match_the_tables(tiny_cohort):
    gt = pd.read_csv(tiny_cohort / "ground_truth.csv", dtype={"study_id": str, "patient_id": str})
    for row in gt.itertuples():
        headers = _headers(tiny_cohort / "dicom" / row.patient_id / row.study_id)
        assert {h.AccessionNumber for h in headers} == {row.study_id}
        assert {h.PatientID for h in headers} == {row.patient_id}
        assert len({h.StudyInstanceUID for h in headers}) == 1
        assert len({h.SOPInstanceUID for h in headers}) == len(headers)
        assert {_view_of(h.SeriesDescription) for h in headers} == {"SAX", "2CH", "3CH", "4CH"}
        for h in headers[:3]:
            assert h.pixel_array.shape == (h.Rows, h.Columns)
            assert str(h.PatientName) and h.PatientBirthDate and h.InstitutionName


def _stacks(headers: list[pydicom.Dataset]) -> dict[str, dict[float, list[pydicom.Dataset]]]:
    """Group by view, then by position along the slice normal (what an ingester does with geometry)."""
    out: dict[str, dict[float, list]] = defaultdict(lambda: defaultdict(list))
    for h in headers:
        iop = np.array(h.ImageOrientationPatient, float)
        normal = np.cross(iop[:3], iop[3:])
        out[_view_of(h.SeriesDescription)][round(float(np.dot(h.ImagePositionPatient, normal)), 1)].append(h)
    return out


def test_series_sort_into_consistent_cine_stacks(tiny_cohort):
    for study in sorted((tiny_cohort / "dicom").glob("*/*")):
        for view, slices in _stacks(_headers(study)).items():
            n_slices = len(slices)
            assert (8 <= n_slices <= 14) if view == "SAX" else n_slices == 1
            where = np.array(sorted(slices))
            if view == "SAX":
                steps = np.diff(where)
                np.testing.assert_allclose(steps, steps[0], atol=0.05)
                assert 6 <= steps[0] <= 14
            for frames in slices.values():
                n = int(frames[0].CardiacNumberOfImages)
                assert len(frames) == n
                times = sorted(float(f.TriggerTime) for f in frames)
                assert len(set(times)) == n and times[0] == 0
                assert len({tuple(f.ImageOrientationPatient) for f in frames}) == 1
                assert len({float(f.SliceLocation) for f in frames}) == 1


def test_masks_give_the_ground_truth_lvef(tiny_cohort):
    gt = pd.read_csv(tiny_cohort / "ground_truth.csv", dtype={"study_id": str})
    for row in gt.itertuples():
        with np.load(tiny_cohort / "masks" / f"{row.study_id}.npz") as z:
            legend = json.loads(str(z["legend"]))
            voxel = float(np.prod(z["pixel_spacing_mm"])) * float(z["slice_spacing_mm"]) / 1000
            volumes = (z["labels"] == legend["LV_BLOOD"]).sum(axis=(0, 2, 3)) * voxel
        # 64-px test matrices (4 mm pixels): coarse, so a looser bound than the full-resolution physics test
        assert volumes.max() == pytest.approx(row.lvedv_ml, rel=0.08)
        assert 100 * (1 - volumes.min() / volumes.max()) == pytest.approx(row.lvef, abs=5)


def test_reports_mention_exactly_the_positive_conditions(tiny_cohort):
    gt = pd.read_csv(tiny_cohort / "ground_truth.csv", dtype={"study_id": str, "patient_id": str}).set_index("study_id")
    lines = [json.loads(x) for x in (tiny_cohort / "reports.jsonl").read_text().splitlines()]
    assert [r["study_id"] for r in lines] == list(gt.index)
    for r in lines:
        row = gt.loc[r["study_id"]]
        assert r["patient_id"] == row["patient_id"] and r["site"] == row["site"]
        affirmed = [x for x in re.split(r"(?<=\.)\s+|\n", r["text"].lower()) if not NEGATED.search(x)]
        for key in condition_keys():
            mentioned = any(phrase.lower() in x for phrase in POSITIVE[key] for x in affirmed)
            assert mentioned == bool(row[key]), (r["study_id"], key)
        assert r["patient_id"] in r["text"]  # fake PHI for de-identification tests


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in _files(root)}


@pytest.mark.slow
def test_same_seed_same_bytes_any_worker_count(tmp_path):
    kwargs = {"sites": ["riverside", "valleyview"], "masks": True, "matrix": 32, "phases": 3}
    generate_cohort(tmp_path / "a", 2, 7, **kwargs)
    generate_cohort(tmp_path / "b", 2, 7, workers=2, **kwargs)
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a == b and len(a) > 50
    other = plan_cohort(2, 8, kwargs["sites"], condition_keys())
    assert {p.accession for p in other} != {p.accession for p in plan_cohort(2, 7, kwargs["sites"], condition_keys())}


def test_bad_arguments_raise_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown site"):
        generate_cohort(tmp_path, 1, 0, sites=["nowhere"])
    with pytest.raises(ConfigError, match="studies"):
        generate_cohort(tmp_path, 0, 0)


def test_refuses_to_mix_with_an_existing_cohort(tiny_cohort):
    with pytest.raises(ConfigError, match="already holds a cohort"):
        generate_cohort(tiny_cohort, 1, 0)
