from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cmrclip.cli import app
from cmrclip.conftest import _toy_study
from cmrclip.ingest.store import StudyStore
from cmrclip.segment import SaxStack, SegmentationResult, Volumes, load_segmenter
from cmrclip.segment.outputs import DERIVED_FLAG, derived_labels, write_store_labels

TINY = [
    "model.channels=[4,8,16]",
    "model.strides=[2,2]",
    "model.num_res_units=1",
    "model.roi_px=32",
    "synthetic_studies=1",
    "steps=2",
    "batch_size=2",
    "real_data=none",
]


def _store(root, lvefs: dict[str, float | None]) -> StudyStore:
    """A store of toy studies (SAX 6 slices x 12 frames of 32 px, and 4CH) with the given report LVEFs."""
    store = StudyStore.create(root)
    for i, key in enumerate(lvefs):
        store.write_study(_toy_study(key, f"p{key}", i % 4, np.random.default_rng(i))[0])
    lvef = [np.nan if v is None else v for v in lvefs.values()]
    store.add_labels(pd.DataFrame({"study_key": list(lvefs), "lvef": lvef}))
    return store


def _result(lvef: float | None) -> SegmentationResult:
    volumes = Volumes(lvef=lvef, edv_ml=150.0, esv_ml=90.0, lv_mass_g=120.0, rvef=50.0)
    return SegmentationResult(np.zeros((3, 4, 40, 40), np.uint8), volumes, SaxStack(np.zeros((3, 4, 40, 40)), None))


def test_derived_labels_only_where_no_report_value(tmp_path):
    store = _store(tmp_path / "s", {"a": None, "b": 55.0, "c": None})
    results = {"a": _result(40.0), "b": _result(30.0), "c": _result(None)}
    table = derived_labels(store, results)
    assert list(table["study_key"]) == ["a"]  # b has a report LVEF, c has no segmented LVEF
    assert write_store_labels(store, results) == 1
    m = store.manifest().set_index("study_key")
    assert m.at["a", "lvef"] == 40.0 and m.at["a", "lvedv_ml"] == 150.0 and m.at["a", DERIVED_FLAG] == 1.0
    assert m.at["b", "lvef"] == 55.0 and pd.isna(m.at["b", DERIVED_FLAG])
    assert pd.isna(m.at["c", "lvef"])


@pytest.mark.slow
def test_train_seg_then_segment_cli(tmp_path):
    runner = CliRunner()
    args = ["train-seg", "--out", str(tmp_path / "model")] + [x for s in TINY for x in ("--set", s)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "0 real ACDC subjects (ED+ES) + 1 synthetic" in res.output
    model = tmp_path / "model" / "segmenter.pt"
    assert load_segmenter(model).config.roi_px == 32
    assert (tmp_path / "model" / "config.resolved.yaml").is_file()
    store = _store(tmp_path / "store", {"a": None})
    res = runner.invoke(
        app,
        ["segment", "--store", str(store.root), "--model", str(model), "--out", str(tmp_path / "o"), "--write-labels"],
    )
    assert res.exit_code == 0, res.output
    body = json.loads((tmp_path / "o" / "a" / "volumes.json").read_text())
    assert body["shape_slices_frames_rows_cols"] == [6, 12, 32, 32] and "lvef" in body["volumes"]
    res = runner.invoke(app, ["segment", f"{store.root}#a", "--model", str(model), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o2" / "a" / "masks.nii.gz").is_file()


def test_segment_cli_needs_one_input_kind(tmp_path):
    res = CliRunner().invoke(app, ["segment", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "either STUDY" in res.output
    (tmp_path / "m.pt").write_bytes(b"not a model")
    res = CliRunner().invoke(app, ["segment", "x", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "cannot read" in res.output
