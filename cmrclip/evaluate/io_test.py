from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cmrclip.errors import DataError, LabelError
from cmrclip.evaluate.conftest import synthetic_table
from cmrclip.evaluate.io import align_predictions, read_predictions


def test_cmrclip_csv_keeps_layout_and_unknowns(predictions_csv):
    preds = read_predictions(predictions_csv)
    assert preds.targets == ["Hypertrophic.Cardiomyopathy", "Amyloid", "Atrial.Myxoma"]
    assert preds.has_lvef and preds.table.index.name == "study_key"
    assert np.isnan(preds.table.loc["s0005", "Amyloid"])
    assert preds.table["patient_key"].iloc[0] == "p0"


def test_jsonl_and_json_records(tmp_path):
    table = synthetic_table(1, n=40)
    table.to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    table.to_json(tmp_path / "p.json", orient="records")
    a, b = read_predictions(tmp_path / "p.jsonl"), read_predictions(tmp_path / "p.json")
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.targets == ["Hypertrophic.Cardiomyopathy", "Amyloid", "Atrial.Myxoma"]


def test_generic_csv_and_wandb_folder(tmp_path):
    pd.DataFrame({"id": ["a", "b", "c", "d"], "prob": [0.1, 0.8, 0.3, 0.9], "label": [0, 1, 0, 1]}).to_csv(
        tmp_path / "HCM.csv", index=False
    )
    rows = [["a", "0.2", "1"], ["b", "0.4", "0"], ["c", "0.5", ""]]
    body = {"columns": ["filenames", "probs", "labels"], "data": rows}
    (tmp_path / "Amyloid.table.json").write_text(json.dumps(body))
    preds = read_predictions(tmp_path)
    assert sorted(preds.targets) == ["Amyloid", "HCM"]
    assert preds.table.loc["a", "Amyloid"] == 1.0 and np.isnan(preds.table.loc["c", "Amyloid"])
    assert np.isnan(preds.table.loc["d", "Amyloid_score"])  # outer join
    lvef = {"columns": ["filenames", "preds", "labels"], "data": [["a", "50", "55"], ["b", "30", "28"]]}
    (tmp_path / "lvef.json").write_text(json.dumps(lvef))
    one = read_predictions(tmp_path / "lvef.json")
    assert one.has_lvef and one.table.loc["b", "lvef_pred"] == 30


@pytest.mark.parametrize("bad", ["2", "0.5", "yes"])
def test_non_binary_labels_are_refused(tmp_path, bad):
    pd.DataFrame({"id": ["a", "b"], "score": [0.1, 0.2], "label": ["0", bad]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises((LabelError, DataError), match=r"label|non-numeric"):
        read_predictions(tmp_path / "x.csv")


def test_duplicates_refused_or_kept_first(tmp_path):
    pd.DataFrame({"id": ["a", "a", "b"], "score": [0.1, 0.9, 0.2], "label": [0, 0, 1]}).to_csv(
        tmp_path / "d.csv", index=False
    )
    with pytest.raises(DataError, match="duplicated"):
        read_predictions(tmp_path / "d.csv")
    preds = read_predictions(tmp_path / "d.csv", duplicates="first")
    assert preds.table.loc["a", "d_score"] == 0.1 and len(preds.notes) == 1
    kept = read_predictions(tmp_path / "d.csv", duplicates="keep")
    assert kept.table["d_score"].to_dict() == {"a": 0.1, "a#2": 0.9, "b": 0.2}
    assert "kept as separate rows" in kept.notes[0]


def test_mismatched_ids_between_model_and_baseline(predictions_csv, tmp_path):
    model = read_predictions(predictions_csv)
    other = synthetic_table(0).iloc[3:]
    other.to_csv(tmp_path / "base.csv", index=False)
    with pytest.raises(DataError, match="3 only in the model"):
        align_predictions(model, read_predictions(tmp_path / "base.csv"))
    shuffled = synthetic_table(0).sample(frac=1, random_state=0)
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    aligned = align_predictions(model, read_predictions(tmp_path / "shuffled.csv"))
    assert list(aligned.table.index) == list(model.table.index)


def test_unusable_files(tmp_path):
    with pytest.raises(DataError, match="do not exist"):
        read_predictions(tmp_path / "nope.csv")
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataError, match="cannot find an id column"):
        read_predictions(tmp_path / "x.csv")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read"):
        read_predictions(tmp_path / "bad.json")
    pd.DataFrame({"id": ["a"], "score": ["high"], "label": [1]}).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DataError, match="non-numeric"):
        read_predictions(tmp_path / "s.csv")
