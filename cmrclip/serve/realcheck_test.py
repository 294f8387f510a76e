"""The real-hearts panel: a model's LVEF on real studies against their truth, or why it is not shown."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from cmrclip.ingest.pipeline import IngestConfig
from cmrclip.serve.realcheck import group_from_conditions, real_hearts_section

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
