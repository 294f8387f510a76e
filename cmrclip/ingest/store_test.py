from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np
import pandas as pd
import pytest

from cmrclip.conditions import condition_keys
from cmrclip.errors import LabelError, StoreError
from cmrclip.ingest.store import StudyRecord, StudyStore, ViewData


def make_view(s: int, f: int, h: int = 12, w: int = 10, seed: int = 0) -> ViewData:
    rng = np.random.default_rng(seed)
    return ViewData(
        pixels=rng.integers(0, 256, (s, f, h, w), dtype=np.uint8),
        trigger_times_ms=np.tile(np.arange(f) * 40.0, (s, 1)),
        positions_mm=np.stack([np.zeros(s), np.zeros(s), np.arange(s) * 8.0], axis=1),
        pixel_spacing_mm=(1.25, 1.25),
        slice_thickness_mm=8.0,
        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        window=(3.0, 812.0),
        view_source="description",
        series_description="SAX cine",
        provenance={"spacing_source": "PixelSpacing"},
    )


def make_record(key: str = "a" * 16, seed: int = 0) -> StudyRecord:
    return StudyRecord(key, "p" * 16, "siteA", {"SAX": make_view(3, 7, seed=seed), "4CH": make_view(1, 9, seed=seed)})


def test_missing_store_raises(tmp_path):
    with pytest.raises(StoreError, match="no study store"):
        StudyStore(tmp_path / "nope")


def test_write_then_read_roundtrip(tmp_path):
    store = StudyStore.create(tmp_path / "store")
    rec = make_record()
    store.write_study(rec, report="normal study")
    df = store.manifest()
    assert list(df["study_key"]) == [rec.study_key]
    row = df.iloc[0]
    assert row["views"] == ["SAX", "4CH"]
    assert row["n_sax_slices"] == 3 and row["n_clips"] == 4 and row["report"] == "normal study"
    assert set(condition_keys()) <= set(df.columns) and np.isnan(row["lvef"])
    with store.open(rec.study_key) as study:
        assert study.views["SAX"].n_slices == 3 and study.views["SAX"].n_frames == 7
        assert study.views["4CH"].pixel_spacing_mm == (1.25, 1.25)
        np.testing.assert_array_equal(study.read_view("SAX"), rec.views["SAX"].pixels)
        clip = study.read_clip("SAX", 2, [6, 0, 0, 3])
        assert clip.dtype == np.float32 and clip.shape == (4, 12, 10)
        np.testing.assert_allclose(clip, rec.views["SAX"].pixels[2, [6, 0, 0, 3]] / 255.0, rtol=1e-6)
        assert study.attrs["patient_key"] == "p" * 16
        attrs = study.view_attrs("SAX")
        assert attrs["view_source"] == "description" and list(attrs["window"]) == [3.0, 812.0]
        assert attrs["prov_spacing_source"] == "PixelSpacing"
        np.testing.assert_array_equal(study.geometry("SAX")["positions_mm"][:, 2], [0, 8, 16])
        with pytest.raises(StoreError, match="slice 3"):
            study.read_clip("SAX", 3, [0])
        with pytest.raises(StoreError, match="frame indices"):
            study.read_clip("SAX", 0, [7])
        with pytest.raises(StoreError, match="no view '2CH'"):
            study.read_view("2CH")
    with pytest.raises(StoreError, match="not in the store"):
        store.open("b" * 16)


def test_chunked_per_slice_and_compressed(tmp_path):
    store = StudyStore.create(tmp_path)
    path = store.write_study(make_record())
    with h5py.File(path, "r") as f:
        ds = f["SAX/pixels"]
        assert ds.chunks == (1, 7, 12, 10) and ds.compression == "gzip"
    assert not list((tmp_path / "studies").glob(".*tmp"))


def test_same_content_gives_identical_bytes(tmp_path):
    a = StudyStore.create(tmp_path / "a").write_study(make_record())
    b = StudyStore.create(tmp_path / "b").write_study(make_record())
    c = StudyStore.create(tmp_path / "c").write_study(make_record(seed=1))
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1] != digest[2]


def test_invalid_record_rejected(tmp_path):
    store = StudyStore.create(tmp_path)
    rec = make_record()
    rec.views["SAX"].pixels = rec.views["SAX"].pixels.astype(np.uint16)
    with pytest.raises(StoreError, match="uint8"):
        store.write_study(rec)
    rec = make_record()
    rec.views["OTHER"] = rec.views.pop("4CH")
    with pytest.raises(StoreError, match="OTHER"):
        store.write_study(rec)


def test_labels_split_reports_and_upsert_keeps_labels(tmp_path):
    store = StudyStore.create(tmp_path)
    store.write_study(make_record("a" * 16))
    store.write_study(make_record("b" * 16))
    labels = pd.DataFrame(
        {"study_key": ["a" * 16, "zzz"], "lvef": [55.0, 40.0], "Hypertrophic.Cardiomyopathy": [1.0, np.nan]}
    )
    assert store.add_labels(labels) == ["zzz"]
    assert store.set_split({"a" * 16: "train", "b" * 16: "test", "q": "val"}) == ["q"]
    store.set_reports({"b" * 16: "LV dilated."})
    store.write_study(make_record("a" * 16, seed=3))  # re-ingest keeps labels and split
    df = store.manifest().set_index("study_key")
    assert df.loc["a" * 16, "lvef"] == 55.0 and df.loc["a" * 16, "Hypertrophic.Cardiomyopathy"] == 1.0
    assert np.isnan(df.loc["b" * 16, "lvef"]) and df.loc["b" * 16, "report"] == "LV dilated."
    assert list(df["split"]) == ["train", "test"]
    with pytest.raises(LabelError, match="unknown label columns"):
        store.add_labels(pd.DataFrame({"study_key": ["a" * 16], "typo": [1.0]}))
    store.add_labels(pd.DataFrame({"study_key": ["a" * 16], "la_volume_ml": [70.0]}), allow_new_columns=True)
    assert store.manifest().set_index("study_key").loc["a" * 16, "la_volume_ml"] == 70.0


def test_faults_read_back(tmp_path):
    store = StudyStore.create(tmp_path)
    assert store.faults() == []
    store.report_path.write_text(json.dumps({"study": "x", "file": "f", "stage": "scan", "reason": "r"}) + "\n")
    assert store.faults()[0]["reason"] == "r"
