from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cmrclip.cli import app
from cmrclip.ingest.store import StudyRecord, StudyStore, ViewData
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
    store = StudyStore.create(root)
    rng = np.random.default_rng(0)
    for key in lvefs:
        view = ViewData(
            pixels=rng.integers(0, 255, (3, 4, 40, 40), dtype=np.uint8),
            trigger_times_ms=np.tile(np.arange(4) * 50.0, (3, 1)),
            positions_mm=np.stack([np.zeros(3), np.zeros(3), np.arange(3) * 8.0], 1),
            pixel_spacing_mm=(1.5, 1.5),
            slice_thickness_mm=8.0,
            orientation=(1, 0, 0, 0, 1, 0),
            window=(0.0, 255.0),
            view_source="given",
        )
        store.write_study(StudyRecord(key, f"p{key}", "toy", {"SAX": view}))
    store.add_labels(
        pd.DataFrame({"study_key": list(lvefs), "lvef": [np.nan if v is None else v for v in lvefs.values()]})
    )
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
    assert body["shape_slices_frames_rows_cols"] == [3, 4, 40, 40] and "lvef" in body["volumes"]
    res = runner.invoke(app, ["segment", f"{store.root}#a", "--model", str(model), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o2" / "a" / "masks.nii.gz").is_file()


def test_segment_cli_needs_one_input_kind(tmp_path):
    res = CliRunner().invoke(app, ["segment", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "either STUDY" in res.output
    (tmp_path / "m.pt").write_bytes(b"not a model")
    res = CliRunner().invoke(app, ["segment", "x", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "cannot read" in res.output
