"""Ingestion of the synthetic cohort (``tiny_cohort`` fixture): views, de-identification, report/label joins."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import pandas as pd
import pydicom
import pytest
from typer.testing import CliRunner

from cmrclip.cli import app
from cmrclip.ingest.conftest import truth_view
from cmrclip.ingest.deid import hash_key
from cmrclip.ingest.geometry import order_cine
from cmrclip.ingest.scan import expand_sources, scan_headers
from cmrclip.ingest.series import _group_series, cine_skip_reason, group_studies
from cmrclip.ingest.store import StudyStore
from cmrclip.ingest.views import SeriesPlane, identify_views, load_view_rules
from cmrclip.synth.sites import SITES

SALT = "cohort-salt"
PHI_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName", "StudyInstanceUID")


def _cine_series(cohort: Path, tmp_path: Path) -> list[tuple[str, list[SeriesPlane]]]:
    """Every study's series as the pipeline sees them; all of them must pass the cine filter."""
    headers, faults = scan_headers(expand_sources([cohort / "dicom"], tmp_path, []))
    assert faults == []
    out = []
    for ident, hs in group_studies(headers).items():
        planes = []
        for series in _group_series(hs).values():
            assert cine_skip_reason(series, 6) is None, series[0].series_description  # the synthetic cines are kept
            layout, _ = order_cine(series)
            planes.append(SeriesPlane(series[0].series_description, layout.orientation, layout.n_slices))
        out.append((ident, planes))
    return out


def test_series_views_match_synthetic_truth(tiny_cohort, tmp_path):
    """Per series: the view the generator wrote (its site's naming convention, ``synth/sites.py``) is found from
    the description for every series, and from geometry alone (descriptions blanked) for >= 95 % of them."""
    rules = load_view_rules()
    sites = pd.read_csv(tiny_cohort / "ground_truth.csv", dtype=str).set_index("study_id")["site"]
    truth, described, blind = [], [], []
    for ident, planes in _cine_series(tiny_cohort, tmp_path):
        truth += [truth_view(SITES[sites[ident]], p.description) for p in planes]
        decisions = identify_views(planes, rules)
        assert {d.source for d in decisions} == {"description"}
        described += [d.view for d in decisions]
        decisions = identify_views([SeriesPlane("", p.orientation, p.n_positions) for p in planes], rules)
        assert {d.source for d in decisions} == {"geometry"}
        blind += [d.view for d in decisions]
    assert set(truth) == {"SAX", "2CH", "3CH", "4CH"} and len(truth) >= 50
    assert described == truth
    correct = sum(t == g for t, g in zip(truth, blind, strict=True))
    assert correct >= 0.95 * len(truth), [(t, g) for t, g in zip(truth, blind, strict=True) if t != g]


def _phi_values(cohort: Path) -> set[str]:
    values: set[str] = set()
    for path in (cohort / "dicom").rglob("*"):
        if path.is_file():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            for tag in PHI_TAGS:
                value = str(ds.get(tag, "") or "")
                values |= {value, *(part for part in value.split("^") if len(part) >= 4)}
    return {v for v in values if len(v) >= 4}


@pytest.mark.slow
def test_cohort_ingest_phi_free_and_joined(tiny_cohort, tmp_path):
    store_dir = tmp_path / "store"
    args = ["ingest", str(tiny_cohort / "dicom"), "--out", str(store_dir), "--salt", SALT, "--workers", "2"]
    args += ["--reports", str(tiny_cohort / "reports.jsonl"), "--labels", str(tiny_cohort / "ground_truth.csv")]
    result = CliRunner().invoke(app, [*args, "--set", "crop_size=64"])
    assert result.exit_code == 0, result.output
    summary = result.output.strip().splitlines()[-1]
    truth = pd.read_csv(tiny_cohort / "ground_truth.csv", dtype={"study_id": str, "patient_id": str})
    assert f"{len(truth)} stored, 0 partially, 0 rejected" in summary
    df = StudyStore(store_dir).manifest().set_index("study_key")
    for row in truth.itertuples():
        key = hash_key(row.study_id, SALT)
        assert df.loc[key, "patient_key"] == hash_key(row.patient_id, SALT)
        assert df.loc[key, "lvef"] == pytest.approx(row.lvef) and df.loc[key, "site"] == row.site
        assert isinstance(df.loc[key, "report"], str) and len(df.loc[key, "report"]) > 50
    assert f"{len(truth)} reports, {len(truth)} label rows joined" in summary
    phi = _phi_values(tiny_cohort)
    strings = [p.name for p in store_dir.rglob("*")] + [str(v) for v in df.reset_index().to_numpy().ravel()]
    strings += [p.read_text(encoding="utf-8") for p in store_dir.glob("*.jsonl")]
    for p in (store_dir / "studies").glob("*.h5"):
        with h5py.File(p, "r") as f:
            strings += [str(v) for v in f.attrs.values()]
            f.visititems(lambda _name, obj, acc=strings: acc.extend(str(v) for v in obj.attrs.values()))
    text = "\n".join(strings)
    assert sorted(v for v in phi if v in text) == []
