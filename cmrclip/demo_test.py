from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cmrclip.cli import app
from cmrclip.serve.predict import load_model


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--size", "tiny", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "open" in result.output
    return out


@pytest.mark.slow
def test_tiny_demo_runs_every_stage_and_writes_the_report(demo_run):
    report = (demo_run / "report.html").read_text()
    for heading in ("Synthetic cohort", "Contrastive pretraining", "Data efficiency", "Evaluation", "Zero-shot"):
        assert heading in report
    assert "Real hearts: predicted vs true LVEF" in report
    assert report.count("data:image/png;base64") >= 4
    recall = r"study-&gt;report R@5 \d\.\d{3} \(chance \d\.\d{3}\)"  # HTML-escaped "->"
    assert re.search(recall, report)  # the pretraining section states the held-out recall beside chance
    headline = json.loads((demo_run / "headline.json").read_text())
    assert set(headline["seconds"]) == {"synth", "ingest", "pretrain", "finetune", "evaluate", "real hearts"}
    assert (demo_run / "real_hearts" / "real_hearts.png").is_file()  # ../shared/data is there in the tests
    table = pd.read_csv(demo_run / "finetune" / "table.csv")
    assert set(table["init"]) == {"pretrained", "random"}
    assert set(table["fraction"]) == {0.5, 1.0}
    assert (demo_run / "evaluate" / "metrics.csv").is_file()


@pytest.mark.slow
def test_predict_agrees_with_the_evaluated_predictions(demo_run):
    """`cmrclip predict` on store entries gives the LVEF that fine-tuning wrote for `cmrclip evaluate`."""
    cell = demo_run / "finetune" / "cells" / "pretrained" / "f1" / "s0"
    expected = pd.read_csv(cell / "predictions_test.csv")
    model = load_model(cell / "model.pt")
    store = demo_run / "store"
    got = [model.predict(f"{store}#{key}").lvef.value for key in expected["study_key"]]
    np.testing.assert_allclose(got, expected["lvef_pred"], atol=1e-3)
