"""The real-hearts panel: a model's LVEF on real studies against their truth, or why it is not shown."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from cmrclip.conftest import _toy_study
from cmrclip.ingest.pipeline import IngestConfig
from cmrclip.ingest.store import StudyStore
from cmrclip.segment import Segmenter
from cmrclip.segment.model import SegModelConfig
from cmrclip.segment.volumes import Volumes
from cmrclip.serve.realcheck import group_from_conditions, real_hearts_section, score_volumes, volume_features

CFG = IngestConfig(salt="panel-test", spacing_mm=2.0, crop_size=96, workers=1)


def test_panel_says_why_without_real_data(plain_bundle, tmp_path):
    section = real_hearts_section(plain_bundle, None, tmp_path, CFG)
    assert section.text.startswith("Not shown: no real data found at ../shared/data") and not section.images
    section = real_hearts_section(plain_bundle, tmp_path / "nowhere", tmp_path, CFG)
    assert "nowhere" in section.text


@pytest.mark.slow
def test_panel_scores_real_studies_and_names_training_hearts(plain_bundle, shared_data, tmp_path):
    sources = tmp_path / "sources"
    for name in ("patient061", "patient064"):
        shutil.copytree(shared_data / "acdc_cine" / name, sources / "acdc_cine" / name)
    shutil.copy(shared_data / "acdc_cine" / "cines.csv", sources / "acdc_cine")
    shutil.copytree(shared_data / "mnms2_subject001", sources / "mnms2_subject001")
    section = real_hearts_section(plain_bundle, sources, tmp_path / "out", CFG, trained_on={"patient064"})
    assert (tmp_path / "out" / "real_hearts.png").is_file() and section.images
    assert "hearts used to build training studies: patient064" in section.text
    table = pd.DataFrame(section.table).set_index("dataset")
    assert table.loc["all", "n"] == 2  # patient061 and mnms2_001: the training heart is left out of the metrics
    assert table.loc["all", "lvef_mae"] > 0


def test_group_from_conditions():
    assert group_from_conditions({"Hypertrophic.Cardiomyopathy": 0.9, "normal": 0.2}) == "HCM"
    assert group_from_conditions({"normal": 0.7, "Right.Ventricular.Dilation": 0.1}) == "NOR"


class _BrightIsLV(torch.nn.Module):
    """A 'segmenter' that calls the bright pixels of the middle input channel LV cavity, the rest background."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x[:, x.shape[1] // 2 : x.shape[1] // 2 + 1] - 0.5
        return torch.cat([-c, c, torch.full_like(c, -9.0), torch.full_like(c, -9.0)], dim=1) * 20


def test_score_volumes_measures_the_lvef_of_a_pulsing_disc(toy_store):
    seg = Segmenter(_BrightIsLV(), SegModelConfig(roi_px=32, spacing_mm=1.5))
    keys = [p.stem for p in sorted((toy_store / "studies").glob("*.h5"))[:2]]
    table = score_volumes(seg, {("toy", k): f"{toy_store}#{k}" for k in keys})
    assert list(table["subject"]) == keys and (table["group_pred"] == "").all()
    # the toy disc's radius goes 4 + 3 * label +- 1 px (conftest._toy_study): EF = 1 - (r - 1)^2 / (r + 1)^2
    radii = [4 + 3 * (i % 4) for i in range(2)]
    expected = [100 * (1 - (r - 1) ** 2 / (r + 1) ** 2) for r in radii]
    np.testing.assert_allclose(table["lvef_pred"], expected, atol=3)
    assert all(len(e) == 9 and np.isfinite(e).all() for e in table["embedding"])


def test_score_volumes_gives_nan_for_a_study_without_sax(tmp_path):
    record, _ = _toy_study("00000000000000aa", "p0", 1, np.random.default_rng(0))
    del record.views["SAX"]
    StudyStore.create(tmp_path / "store").write_study(record)
    seg = Segmenter(_BrightIsLV(), SegModelConfig(roi_px=32))
    table = score_volumes(seg, {("toy", "4ch-only"): f"{tmp_path / 'store'}#00000000000000aa"})
    assert np.isnan(table["lvef_pred"][0]) and not table["embedding"][0].any()


def test_volume_features_are_zero_where_a_volume_is_missing():
    full = volume_features(Volumes(edv_ml=150.0, esv_ml=50.0, lvef=66.7, lv_mass_g=120.0, rvedv_ml=160.0,
                                   rvesv_ml=70.0, rvef=56.2))  # fmt: skip
    assert full[0] == pytest.approx(0.667) and full[2] == pytest.approx(np.log(150.0))
    assert full[7] == pytest.approx(np.log(160.0 / 150.0))
    empty = volume_features(Volumes())
    assert empty.shape == full.shape and not empty.any()
