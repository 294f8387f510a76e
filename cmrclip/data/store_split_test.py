from __future__ import annotations

import pandas as pd
import pytest

from cmrclip.data.store_split import check_no_test_leak, ensure_split, split_patients, write_split
from cmrclip.errors import ConfigError, DataError, LeakageError
from cmrclip.ingest.store import StudyStore


@pytest.fixture
def store(toy_store, tmp_path):
    import shutil

    shutil.copytree(toy_store, tmp_path / "store")
    root = StudyStore(tmp_path / "store")
    root.set_split(dict.fromkeys(root.manifest()["study_key"]))  # start without a split
    return root


def test_split_is_drawn_once_by_patient_and_then_read(store, caplog):
    first = ensure_split(store, seed=3)
    assert "wrote" in caplog.text and set(first["split"]) == {"train", "val", "test"}
    assert first.groupby("patient_key")["split"].nunique().max() == 1
    stored = store.manifest()
    assert list(stored["split"]) == list(first["split"])
    caplog.clear()
    again = ensure_split(store, val=0.4, test=0.4, seed=99)  # shares and seed no longer matter
    assert list(again["split"]) == list(first["split"]) and "wrote" not in caplog.text


def test_new_studies_join_their_patients_split(store):
    first = ensure_split(store)
    keys = first["study_key"].tolist()
    store.set_split({keys[0]: None, keys[1]: None})  # e.g. studies ingested later
    again = ensure_split(store)
    assert list(again["split"]) == list(first["split"])


def test_write_split_refuses_to_redraw_without_force(store):
    write_split(store, seed=1)
    with pytest.raises(ConfigError, match="--force"):
        write_split(store, seed=2)
    redrawn = write_split(store, val=0.25, test=0.25, seed=2, force=True)
    assert len(split_patients(redrawn, "test")) == 3  # 12 patients x 0.25


def test_a_mixed_patient_split_is_refused(store):
    keys = store.manifest().sort_values("patient_key")["study_key"].tolist()
    store.set_split(dict.fromkeys(keys, "train") | {keys[0]: "test"})  # keys[0] and keys[1]: one patient
    with pytest.raises(DataError, match="more than one split"):
        ensure_split(store)


def test_leak_check_names_the_patients():
    manifest = pd.DataFrame(
        {"study_key": list("abcd"), "patient_key": ["p1", "p2", "p3", "p4"], "split": ["train", "val", "test", "test"]}
    )
    check_no_test_leak(["p1", "p2"], manifest, "the encoder e.pt")
    check_no_test_leak(None, manifest, "a foreign encoder")  # not recorded: logged, not checked
    with pytest.raises(LeakageError, match=r"2 test patient\(s\) .* the encoder e.pt: p3, p4"):
        check_no_test_leak(["p1", "p3", "p4"], manifest, "the encoder e.pt")
