from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cmrclip.cli import app
from cmrclip.conditions import condition_keys
from cmrclip.errors import ReportError
from cmrclip.text.reports import TABLE_MEASURES, deid_file, label_file, label_store, labels_table

GOLD = Path(__file__).parent / "testdata" / "reports_gold.jsonl"
runner = CliRunner()


def messy_jsonl(path: Path) -> Path:
    lines = [
        json.dumps(
            {"id": "a", "text": "FINDINGS: Dilated LV. LVEF 30%.\nIMPRESSION: Dilated cardiomyopathy."}
        ).encode(),
        json.dumps({"id": "b", "text": ""}).encode(),
        b"{not json",
        json.dumps({"id": "d", "note": "no text field"}).encode(),
        b'{"id": "e", "text": "Patient\x92s LV is dilated. Signed by: Dr. Ann Lee, MD"}',  # cp1252 apostrophe
        json.dumps({"id": "f", "text": "FINDINGS: NO THROMBUS. LARGE PERICARDIAL EFFUSION."}).encode(),
        b"",
        json.dumps({"id": "g", "text": "Thrombus. John Doe.", "identifiers": ["DOE^JOHN"]}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def read(path: Path) -> dict:
    return {row["id"]: row for row in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def test_label_file_gives_every_line_a_status(tmp_path):
    out = tmp_path / "labels.jsonl"
    summary = label_file(messy_jsonl(tmp_path / "in.jsonl"), out)
    rows = read(out)
    assert summary.reports == 7
    assert rows["a"]["labels"] == {"Left.Ventricular.Dilation": "positive", "Non.Ischemic.cardiomyopathy": "positive"}
    assert rows["a"]["lvef"] == 30
    assert rows["b"]["status"] == "empty"
    assert rows["line:3"]["status"] == "invalid_json"
    assert rows["d"]["status"] == "missing_text"
    assert rows["e"]["status"] == "ok"
    assert "non_utf8" in rows["e"]["flags"]
    assert rows["f"]["labels"]["Large.Pericardial.Effusion"] == "positive"
    assert "all_caps" in rows["f"]["flags"]
    for row in rows.values():
        assert set(row["labels"]) <= set(condition_keys())
        assert set(row["evidence"]) == set(row["labels"])


def test_deid_file_uses_the_lines_identifiers(tmp_path):
    out = tmp_path / "deid.jsonl"
    summary = deid_file(messy_jsonl(tmp_path / "in.jsonl"), out)
    rows = read(out)
    assert "Ann Lee" not in rows["e"]["text"]
    assert rows["e"]["removed"] == {"name": 1}
    assert rows["g"]["text"] == "Thrombus. [ID] [ID]."
    assert rows["line:3"]["status"] == "invalid_json"
    assert summary.removed["listed"] == 2


def test_missing_input_file(tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        label_file(tmp_path / "missing.jsonl", tmp_path / "out.jsonl")


def test_cli_reports_label_and_deid(tmp_path):
    result = runner.invoke(app, ["reports", "label", str(GOLD), "--out", str(tmp_path / "labels.jsonl")])
    assert result.exit_code == 0, result.output
    assert "66 reports (ok 66)" in result.output
    rows = read(tmp_path / "labels.jsonl")
    assert rows["gold-059"]["lvef"] == 57.5
    result = runner.invoke(app, ["reports", "deid", str(GOLD), "--out", str(tmp_path / "deid.jsonl")])
    assert result.exit_code == 0, result.output
    assert "removed nothing" in result.output


def test_cli_bad_synonyms_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("entries:\n  - keys: [Nope]\n    patterns: ['x']\n")
    args = ["reports", "label", str(GOLD), "--out", str(tmp_path / "o.jsonl"), "--synonyms", str(bad)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "unknown or no condition keys" in result.output


def test_cli_tokenizer_train(tmp_path):
    result = runner.invoke(app, ["tokenizer", "train", str(GOLD), "--out", str(tmp_path / "tok"), "--vocab-size", "300",
                                 "--set", "min_frequency=1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tok" / "tokenizer.json").is_file()
    assert (tmp_path / "tok" / "config.resolved.yaml").is_file()


def test_labels_table_for_ingest(tmp_path):
    out = tmp_path / "labels.jsonl"
    label_file(messy_jsonl(tmp_path / "in.jsonl"), out)
    table = labels_table(out).set_index("study_id")
    assert list(table.columns) == ["lvef", *condition_keys(), *TABLE_MEASURES]
    assert table.loc["a", "Left.Ventricular.Dilation"] == 1.0
    assert table.loc["a", "Amyloid"] == 0.0  # not mentioned -> negative
    assert table.loc["a", "lvef"] == 30
    assert table.loc["f", "Cardiac.Thrombus"] == 0.0
    assert table.loc["b"].isna().all()  # empty report: unknown
    hedged = tmp_path / "hedged.jsonl"
    hedged.write_text(json.dumps({"id": "h", "text": "Findings: possible myocarditis."}) + "\n")
    label_file(hedged, out)
    assert np.isnan(labels_table(out).loc[0, "Myocarditis"])
    assert labels_table(out, uncertain="positive").loc[0, "Myocarditis"] == 1.0
    assert labels_table(out, unmentioned="unknown").drop(columns=["study_id", "Myocarditis"]).isna().all(axis=None)


def test_cli_label_table(tmp_path):
    args = ["reports", "label", str(GOLD), "--out", str(tmp_path / "l.jsonl"), "--table", str(tmp_path / "t.csv")]
    assert runner.invoke(app, args).exit_code == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert len(table) == 66
    assert table.set_index("study_id").loc["gold-059", "Severe.Aortic.Stenosis"] == 1.0
    result = runner.invoke(app, [*args, "--uncertain", "maybe"])
    assert result.exit_code == 2


def manifest_store(root: Path, reports: dict[str, str | None]):
    from cmrclip.ingest.store import StudyStore

    store = StudyStore.create(root)
    for key, text in reports.items():
        store.upsert({"study_key": key, "patient_key": "p" + key, "site": "x", "path": f"studies/{key}.h5",
                      "views": ["SAX"], "n_sax_slices": 1, "n_clips": 1, "report": text})  # fmt: skip
    return store


def test_label_store_fills_unknown_cells_and_keeps_curated_ones(tmp_path):
    store = manifest_store(tmp_path / "store", {
        "k1": "FINDINGS: Dilated LV, LVEF 30%.\nIMPRESSION: Dilated cardiomyopathy. No thrombus.",
        "k2": None,
        "k3": "Findings: possible myocarditis. Normal LV size.",
    })  # fmt: skip
    store.add_labels(pd.DataFrame({"study_key": ["k1"], "Cardiac.Thrombus": [1.0]}))  # a curated label
    summary = label_store(tmp_path / "store")
    assert summary.statuses == {"ok": 2, "no_report": 1}
    m = store.manifest().set_index("study_key")
    assert m.loc["k1", "Left.Ventricular.Dilation"] == 1.0
    assert m.loc["k1", "Non.Ischemic.cardiomyopathy"] == 1.0
    assert m.loc["k1", "lvef"] == 30
    assert m.loc["k1", "Cardiac.Thrombus"] == 1.0  # kept
    assert m.loc["k1", "Amyloid"] == 0.0
    assert m.loc[["k2"], "Amyloid"].isna().all()
    assert np.isnan(m.loc["k3", "Myocarditis"])
    assert m.loc["k3", "Left.Ventricular.Dilation"] == 0.0
    label_store(tmp_path / "store", overwrite=True)
    assert store.manifest().set_index("study_key").loc["k1", "Cardiac.Thrombus"] == 0.0


def test_cli_label_store(tmp_path):
    manifest_store(tmp_path / "store", {"k1": "Impression: severe aortic stenosis."})
    result = runner.invoke(app, ["reports", "label-store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    assert "1 studies (ok 1)" in result.output
    result = runner.invoke(app, ["reports", "label-store", str(tmp_path / "nostore")])
    assert result.exit_code == 2
    assert "no study store" in result.output


def test_cli_deid_surrogate_mode_is_consistent_per_patient(tmp_path):
    src = tmp_path / "in.jsonl"
    lines = [
        {"id": "r1", "patient_id": "p1", "text": "Patient: Noor Iyer. Scanned 14/03/2021. LVEF 55%."},
        {"id": "r2", "patient_id": "p1", "text": "Re: Noor Iyer, follow-up on 14/03/2021."},
        {"id": "r3", "patient_id": "p2", "text": "Patient: Noor Iyer. Scanned 14/03/2021."},
    ]
    src.write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = ["reports", "deid", str(src), "--out", str(tmp_path / "o.jsonl"), "--mode", "surrogate", "--key", "salt"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = read(tmp_path / "o.jsonl")
    texts = [rows[k]["text"] for k in ("r1", "r2", "r3")]
    assert not any("Iyer" in t or "14/03/2021" in t for t in texts), texts
    name1, date1 = re.search(r"Patient: (\w+ \w+)\. Scanned (\S+)\.", texts[0]).groups()
    assert texts[1] == f"Re: {name1}, follow-up on {date1}."  # same patient: same fake name and offset
    assert texts[0].endswith("LVEF 55%.")
    assert runner.invoke(app, [*args[:5], "--mode", "bogus"]).exit_code == 2
