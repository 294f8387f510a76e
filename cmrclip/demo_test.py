from __future__ import annotations

import json
import re
import shlex

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
    (out / "cli_output.txt").write_text(result.output)
    return out


@pytest.mark.slow
def test_tiny_demo_runs_every_stage_and_writes_the_report(demo_run):
    report = (demo_run / "report.html").read_text()
    for heading in ("Synthetic cohort", "Contrastive pretraining", "Data efficiency", "Evaluation", "Zero-shot",
                    "Segmentation and volumes"):  # fmt: skip
        assert heading in report
    table = pd.read_csv(demo_run / "finetune" / "table.csv")
    # preview, training curves, LVEF efficiency plot, and the macro AUROC plot when the tiny test split defines it
    # (with real hearts the conditions follow 5 groups, so 2 test studies may share all their labels)
    auroc_plot = int(table.loc[table["metric"] == "macro_auroc", "value"].notna().any())
    assert report.count("data:image/png;base64") >= 3 + auroc_plot
    recall = r"study-&gt;report R@5 \d\.\d{3} \(chance \d\.\d{3}\)"  # HTML-escaped "->"
    assert re.search(recall, report)  # the pretraining section states the held-out recall beside chance
    headline = json.loads((demo_run / "headline.json").read_text())
    assert set(headline["seconds"]) == {"synth", "ingest", "pretrain", "finetune", "evaluate", "real hearts", "segment"}
    assert "Real hearts: predicted vs true LVEF" in report
    assert (demo_run / "real_hearts" / "real_hearts.png").is_file()  # ../shared/data is there in the tests
    assert re.search(r"U-Net trained for 2 steps on \d+ real ACDC subjects", report)  # says which masks it used
    assert headline["cohort"].startswith(("realistic cohort", "analytic cohort: FALLBACK"))  # says which it used
    assert headline["cohort"][1:] in report
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


def _next_commands(output: str) -> list[list[str]]:
    lines = output.split("try next:", 1)[1].strip().splitlines()
    return [shlex.split(line, comments=True) for line in lines]


@pytest.mark.slow
def test_demo_hands_over_a_model_a_study_and_commands_that_work(demo_run, tmp_path):
    """The printed next commands name files that exist, and predict and explain run as printed."""
    from fastapi.testclient import TestClient

    from cmrclip.serve.api import create_app

    out, output = demo_run, (demo_run / "cli_output.txt").read_text()
    commands = _next_commands(output)
    assert [c[1] for c in commands] == ["predict", "explain", "serve"]
    assert all(c[0] == "cmrclip" for c in commands)
    model, study = out / "model.pt", out / "demo_study.zip"
    assert commands[0][2] == commands[1][2] == str(study) and study.is_file()
    assert commands[2][commands[2].index("--model") + 1] == str(model)
    report = (out / "report.html").read_text()
    cell = re.search(r"the fine-tuned cell (pretrained/f[\d.]+/s\d+)", report).group(1)
    assert model.read_bytes() == (out / "finetune" / "cells" / cell / "model.pt").read_bytes()
    for command in commands[:2]:
        result = CliRunner().invoke(app, command[1:])
        assert result.exit_code == 0, result.output
    line = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert line["input"] == str(study) and "error" not in line and len(line["conditions"]) == 39 + 1  # + normal
    assert (out / "explain" / "explain.json").is_file()
    with TestClient(create_app(model)) as client:  # what `serve` runs, without the network
        assert client.get("/health").json()["model_loaded"] is True
        response = client.post("/v1/predict", content=study.read_bytes(), params={"name": study.name})
        assert response.status_code == 200 and response.json()["input"] == study.name


def test_the_demo_holds_out_the_subjects_with_a_real_cine(tmp_path):
    from cmrclip.demo import _held_out_cines

    for name in ("patient001", "patient002"):
        (tmp_path / "acdc_cine" / name).mkdir(parents=True)
    (tmp_path / "acdc_cine" / "cines.csv").write_text("subject\n")
    assert _held_out_cines(tmp_path) == {"patient001", "patient002"}
    assert _held_out_cines(tmp_path / "elsewhere") == set() and _held_out_cines(None) == set()
