from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cmrclip.cli import app
from cmrclip.evaluate.conftest import synthetic_table
from cmrclip.evaluate.report_test import open_in_chromium
from cmrclip.evaluate.run import run_evaluate


@pytest.mark.slow
def test_run_evaluate_writes_everything_and_report_renders(predictions_csv, baseline_csv, tmp_path):
    out = run_evaluate(predictions_csv, tmp_path / "eval", baseline=baseline_csv)
    lvef = {"lvef_scatter", "lvef_bland_altman"}
    assert set(out.plots) == {"roc", "calibration"} | lvef | {f"{name}_baseline" for name in lvef}
    body = json.loads(out.metrics_json.read_text())  # strict JSON: NaN would be refused by the writer
    assert body["n_studies"] == 300 and body["summary"]["model/macro/auroc"] > 0.7
    csv = pd.read_csv(out.metrics_csv)
    assert len(csv) == len(out.table) and {"lower", "upper", "p_value", "flag"} <= set(csv.columns)
    assert (tmp_path / "eval" / "config.resolved.yaml").is_file()
    errors, widths = open_in_chromium(out.report)
    assert errors == []
    assert len(widths) == len(out.plots) and all(w > 0 for w in widths)


def test_cli_evaluate_ok_and_bad_input(predictions_csv, tmp_path):
    runner = CliRunner()
    args = ["evaluate", str(predictions_csv), "--out", str(tmp_path / "o"), "--set", "n_bootstrap=50"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "model macro auroc 0." in result.output and (tmp_path / "o" / "report.html").is_file()
    other = synthetic_table(0).iloc[5:]
    other.to_csv(tmp_path / "short.csv", index=False)
    args = ["evaluate", str(predictions_csv), "--baseline", str(tmp_path / "short.csv"), "--out", str(tmp_path / "p")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "different studies" in result.output
    bad = synthetic_table(0)
    bad.loc[0, "Amyloid"] = 3
    bad.to_csv(tmp_path / "bad.csv", index=False)
    result = runner.invoke(app, ["evaluate", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "q")])
    assert result.exit_code == 2 and "must be 0/1" in result.output


def test_evaluate_modules_import_no_torch_statically():
    import ast
    from pathlib import Path

    allowed = ("cmrclip.config", "cmrclip.errors", "cmrclip.progress", "cmrclip.conditions", "cmrclip.evaluate")
    for path in Path(__file__).parent.glob("*.py"):
        if path.name.endswith("_test.py") or path.name == "conftest.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                assert name.split(".")[0] not in ("torch", "transformers"), f"{path.name} imports {name}"
                assert not name.startswith("cmrclip") or name.startswith(allowed), f"{path.name} imports {name}"


@pytest.mark.slow
def test_evaluate_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, cmrclip.evaluate, cmrclip.evaluate.run; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
