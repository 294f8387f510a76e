from __future__ import annotations

import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from cmrclip.cli import app

runner = CliRunner()


def test_synth_command_writes_cohort_config_and_preview(tmp_path):
    out = tmp_path / "s"
    args = ["synth", "--out", str(out), "--studies", "1", "--seed", "3", "--sites", "lakeshore,hillcrest"]
    result = runner.invoke(
        app, [*args, "--masks", "--preview", "--set", "matrix=32", "--set", "phases=4", "--set", "workers=1"]
    )
    assert result.exit_code == 0, result.output
    assert "1 study of 1 patient(s)" in result.output
    gt = pd.read_csv(out / "ground_truth.csv")
    assert len(gt) == 1 and set(gt["site"]) <= {"lakeshore", "hillcrest"}
    assert len(list((out / "masks").glob("*.npz"))) == 1
    saved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert saved["seed"] == 3 and saved["config"]["matrix"] == 32
    sheet = Image.open(out / "preview.png")
    assert sheet.width > 0 and sheet.height >= 4 * sheet.width // 6
    assert Image.open(out / "preview.gif").n_frames == 4


def test_synth_command_bad_site_is_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["synth", "--out", str(tmp_path), "--studies", "1", "--sites", "atlantis"])
    assert result.exit_code == 2
    assert "unknown site" in result.output


@pytest.mark.slow
def test_synth_real_anatomy_from_a_sources_folder(shared_data, tmp_path):
    sources = tmp_path / "data"
    sources.mkdir()
    (sources / "mnms2_subject001").symlink_to(shared_data / "mnms2_subject001")  # read from the path, never copied
    out = tmp_path / "real"
    args = ["synth", "--out", str(out), "--studies", "1", "--anatomy", "real", "--sources", str(sources)]
    result = runner.invoke(app, [*args, "--set", "matrix=48", "--set", "phases=4", "--set", "workers=1"])
    assert result.exit_code == 0, result.output
    assert "realistic cohort: 1 real hearts" in result.output
    gt = pd.read_csv(out / "ground_truth.csv")
    assert len(gt) == 1 and 5 < gt["lvef"][0] < 90


def test_synth_real_anatomy_missing_sources_is_an_error_and_no_sources_falls_back(tmp_path, monkeypatch):
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "a"), "--anatomy", "real", "--sources",
                                 str(tmp_path / "nowhere")])  # fmt: skip
    assert result.exit_code == 2 and "nowhere" in result.output
    monkeypatch.delenv("CMRCLIP_SHARED_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data from here
    args = ["synth", "--out", str(tmp_path / "b"), "--studies", "1", "--anatomy", "real"]
    result = runner.invoke(app, [*args, "--set", "matrix=32", "--set", "phases=4", "--set", "workers=1"])
    assert result.exit_code == 0, result.output
    assert "FALLBACK" in result.output
