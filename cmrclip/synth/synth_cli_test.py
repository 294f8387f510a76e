from __future__ import annotations

import pandas as pd
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
