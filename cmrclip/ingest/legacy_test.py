from __future__ import annotations

import h5py
import numpy as np
import pandas as pd

from cmrclip.ingest.legacy import export_legacy, legacy_to_record, read_legacy, split_slices
from cmrclip.ingest.store import StudyStore
from cmrclip.ingest.store_test import make_record


def _constant_frames(rec):
    """Make each (slice, frame) image constant and distinct, so slice boundaries are checkable."""
    for view in rec.views.values():
        s, f = view.pixels.shape[:2]
        view.pixels[:] = (np.arange(s * f).reshape(s, f, 1, 1) * 7 % 256).astype(np.uint8)
    return rec


def test_export_and_read_back_legacy_layout(tmp_path):
    store = StudyStore.create(tmp_path / "store")
    rec = _constant_frames(make_record("c" * 16))
    store.write_study(rec)
    store.add_labels(pd.DataFrame({"study_key": ["c" * 16], "lvef": [48.0], "Amyloid": [1.0]}))
    master = export_legacy(store, tmp_path / "legacy", size=40)
    table = pd.read_csv(master)
    assert list(table.columns[:3]) == ["parent_folder", "accession", "split"]
    assert table.loc[0, "Amyloid"] == 1.0 and table.loc[0, "lvef"] == 48.0
    path = tmp_path / "legacy" / table.loc[0, "parent_folder"] / f"{'c' * 16}.h5"
    with h5py.File(path, "r") as f:
        ds = f["SAX"]
        assert ds.shape == (3, 21, 40, 40) and ds.dtype == np.float32 and ds.compression == "gzip"
        assert list(ds.attrs["slice_frames"]) == [6, 13] and ds.attrs["total_images"] == 21
        assert list(f["4CH"].attrs["slice_frames"]) == []
    views = read_legacy(path)
    slices = split_slices(views["SAX"])
    lo, hi = rec.views["SAX"].window
    for s, frames in enumerate(slices):
        expected = lo + rec.views["SAX"].pixels[s, :, 0, 0].astype(np.float32) * (hi - lo) / 255
        np.testing.assert_allclose(frames.mean(axis=(1, 2)), expected, rtol=1e-4)


def test_legacy_import_roundtrip(tmp_path):
    store = StudyStore.create(tmp_path / "store")
    rec = _constant_frames(make_record("d" * 16))
    store.write_study(rec)
    master = pd.read_csv(export_legacy(store, tmp_path / "legacy", size=24))
    path = tmp_path / "legacy" / master.loc[0, "parent_folder"] / f"{'d' * 16}.h5"
    back = legacy_to_record(path, "e" * 16, "p" * 16, "siteA")
    assert back.views["SAX"].pixels.shape == (3, 7, 24, 24) and back.views["4CH"].pixels.shape == (1, 9, 24, 24)
    assert back.views["SAX"].provenance["spacing_source"] == "assumed"
    original = rec.views["SAX"].pixels[:, :, 0, 0].astype(float)
    recovered = back.views["SAX"].pixels[:, :, 0, 0].astype(float)
    assert np.corrcoef(original.ravel(), recovered.ravel())[0, 1] > 0.99
    StudyStore.create(tmp_path / "store2").write_study(back)
