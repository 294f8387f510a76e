from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from cmrclip.errors import ConfigError
from cmrclip.ingest.deid import hash_key
from cmrclip.ingest.merge import merge_stores
from cmrclip.ingest.pipeline import IngestConfig, ingest
from cmrclip.ingest.store import StudyStore

SALT = "test-salt"
PATIENTS = [("MRN001234", "ACC98765"), ("MRN005678", "ACC55555"), ("MRN009999", "ACC11111")]


def config(**kw) -> IngestConfig:
    return IngestConfig(salt=SALT, workers=1, crop_size=32, **kw)


@pytest.fixture(scope="module")
def dicom_root(tmp_path_factory) -> Path:
    from cmrclip.ingest.conftest import write_cine_study

    root = tmp_path_factory.mktemp("cohort") / "dicom"
    for seed, (pid, acc) in enumerate(PATIENTS):
        write_cine_study(root, pid, acc, seed=seed)
    return root


def _digests(store: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((store / "studies").glob("*.h5"))}


def _all_strings(store: Path) -> list[str]:
    """Every string in the store: file names, manifest cells, HDF5 attributes, reports, configs."""
    out = [str(p.relative_to(store)) for p in store.rglob("*")]
    df = StudyStore(store).manifest()
    out += [str(v) for v in df.to_numpy().ravel()]

    def visit(name: str, obj: h5py.HLObject) -> None:
        out.extend([name, *map(str, obj.attrs.values())])

    for p in (store / "studies").glob("*.h5"):
        with h5py.File(p, "r") as f:
            f.visititems(visit)
            out += [str(v) for v in f.attrs.values()]
    out += [p.read_text(encoding="utf-8") for p in [*store.glob("*.jsonl"), *store.glob("*.yaml")]]
    out.append((store / "manifest.sqlite").read_bytes().decode("latin-1"))
    return out


def test_views_from_descriptions_and_phi_free(dicom_root, tmp_path):
    reports = tmp_path / "reports.jsonl"
    lines = [{"study_id": a, "text": f"Patient {p} (Doe^Jane{p[-3:]}), acc {a}: normal LV."} for p, a in PATIENTS]
    lines.append({"study_id": "ACC00000", "text": "orphan report"})
    reports.write_text("".join(json.dumps(x) + "\n" for x in lines))
    labels = tmp_path / "ground_truth.csv"
    labels.write_text("study_id,patient_id,site,lvef,Hypertrophic.Cardiomyopathy\nACC98765,MRN001234,siteB,61.5,1\n")
    store = tmp_path / "store"
    xwalk = tmp_path / "crosswalk.csv"  # outside the store
    summary = ingest([dicom_root], store, config(crosswalk_file=xwalk), reports=reports, labels=labels)
    table = pd.read_csv(xwalk, dtype=str)
    assert set(zip(table["study_id"], table["study_key"], strict=True)) == {(a, hash_key(a, SALT)) for _, a in PATIENTS}
    assert (summary.stored, summary.partial, summary.rejected) == (3, 0, 0)
    df = StudyStore(store).manifest().set_index("study_key")
    assert set(df.index) == {hash_key(acc, SALT) for _, acc in PATIENTS}
    assert all(v == ["SAX", "2CH", "3CH", "4CH"] for v in df["views"])
    assert (df["n_sax_slices"] == 4).all() and (df["n_clips"] == 7).all()
    key = hash_key("ACC98765", SALT)
    assert df.loc[key, "lvef"] == 61.5 and df.loc[key, "Hypertrophic.Cardiomyopathy"] == 1.0
    assert df.loc[key, "site"] == "siteB"
    assert df.loc[key, "report"].endswith("normal LV.") and "MRN001234" not in df.loc[key, "report"]
    assert summary.reports_joined == 3 and summary.labels_joined == 1
    faults = StudyStore(store).faults()
    assert any(f["stage"] == "reports" and f["reason"] == "report matches no stored study" for f in faults)
    assert sum(f["stage"] == "labels" and "no label row" in f["reason"] for f in faults) == 2
    assert sum("skipped series 1" in f["reason"] for f in faults) == 3  # the localisers
    with StudyStore(store).open(key) as study:
        assert {study.view_attrs(v)["view_source"] for v in study.views} == {"description"}
        assert study.attrs["patient_key"] == hash_key("MRN001234", SALT)
    phi = [x for pid, acc in PATIENTS for x in (pid, acc, f"Jane{pid[-3:]}")] + ["19700101", "Mercy General", SALT]
    text = "\n".join(_all_strings(store))
    assert [p for p in phi if p in text] == []


def test_views_from_geometry_without_descriptions(tmp_path, cine_factory):
    for seed, (pid, acc) in enumerate(PATIENTS):
        cine_factory(tmp_path / "dicom", pid, acc, seed=seed, descriptions=False)
    ingest([tmp_path / "dicom"], tmp_path / "store", config())
    store = StudyStore(tmp_path / "store")
    for key in store.manifest()["study_key"]:
        with store.open(key) as study:
            assert sorted(study.views) == ["2CH", "3CH", "4CH", "SAX"]
            assert {study.view_attrs(v)["view_source"] for v in study.views} == {"geometry"}


def test_sax_stack_split_over_series_is_merged(tmp_path, cine_factory):
    cine_factory(tmp_path / "dicom", "MRN7", "ACC7", n_slices=5, views=("SAX", "4CH"), split_sax=True)
    ingest([tmp_path / "dicom"], tmp_path / "store", config())
    store = StudyStore(tmp_path / "store")
    with store.open(hash_key("ACC7", SALT)) as study:
        assert study.views["SAX"].n_slices == 5 and study.view_attrs("SAX")["prov_n_series"] == 5
        along = study.geometry("SAX")["positions_mm"] @ np.array([0.6, -0.5, -0.6]) / np.linalg.norm([0.6, 0.5, 0.6])
        np.testing.assert_allclose(np.abs(np.diff(along)), 8.0, atol=1e-3)


def test_faults_are_listed_and_good_studies_stored(dicom_root, tmp_path):
    src = tmp_path / "dicom"
    shutil.copytree(dicom_root, src)
    a, b, _ = (src / pid / acc for pid, acc in PATIENTS)
    sax_a = sorted((a / "s2").glob("*.dcm"))
    (a / "zero.dcm").write_bytes(b"")
    (a / "notes.txt").write_text("not an image")
    truncated = sax_a[0].read_bytes()
    sax_a[0].write_bytes(truncated[: len(truncated) // 2])
    shutil.copy(sax_a[1], a / "s2" / "copy_of_instance.dcm")
    sax_b = sorted((b / "s2").glob("*.dcm"), key=_pos_time)
    for p in sax_b[:2]:  # two phases of the first slice
        p.unlink()
    summary = ingest([src], tmp_path / "store", config())
    assert summary.stored + summary.partial == 3 and summary.rejected == 0
    assert summary.partial == 2
    store = StudyStore(tmp_path / "store")
    faults = store.faults()
    reasons = " | ".join(f"{f['file']}: {f['reason']}" for f in faults)
    assert "zero-byte file" in reasons and "not a DICOM file" in reasons
    assert "duplicate instance" in reasons and "copy_of_instance.dcm" in reasons
    assert "6 phases of 24x24, expected 8 phases" in reasons
    key_b = hash_key(PATIENTS[1][1], SALT)
    with store.open(key_b) as study:
        assert study.views["SAX"].n_slices == 3
    with store.open(hash_key(PATIENTS[2][1], SALT)) as study:
        assert study.views["SAX"].n_slices == 4
    assert all(set(f) == {"study", "file", "stage", "reason"} for f in faults)


def _pos_time(path: Path) -> tuple[float, float]:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return float(np.dot(ds.ImagePositionPatient, [0.6, -0.5, -0.6])), float(ds.TriggerTime)


class _StopError(Exception):
    pass


def test_resume_after_kill_gives_identical_store(dicom_root, tmp_path):
    clean = tmp_path / "clean"
    ingest([dicom_root], clean, config())

    def die_after_first(task: str, done: int, total: int) -> None:
        if task == "ingest studies" and done == 1:
            raise _StopError

    resumed = tmp_path / "resumed"
    with pytest.raises(_StopError):
        ingest([dicom_root], resumed, config(), progress=die_after_first)
    assert len(_digests(resumed)) == 1
    summary = ingest([dicom_root], resumed, config())
    assert summary.already_stored == 1 and summary.stored == 2
    assert _digests(resumed) == _digests(clean)
    a, b = StudyStore(clean).manifest(), StudyStore(resumed).manifest()
    assert a.drop(columns=["views"]).equals(b.drop(columns=["views"])) and list(a["views"]) == list(b["views"])
    assert (clean / "ingest_report.jsonl").read_bytes() == (resumed / "ingest_report.jsonl").read_bytes()


@pytest.mark.slow
def test_parallel_workers_match_serial(dicom_root, tmp_path):
    ingest([dicom_root], tmp_path / "serial", config())
    ingest([dicom_root], tmp_path / "parallel", config().model_copy(update={"workers": 2}))
    assert _digests(tmp_path / "serial") == _digests(tmp_path / "parallel")


def test_shards_partition_studies_and_merge(dicom_root, tmp_path):
    keys: set[str] = set()
    for i in range(2):
        ingest([dicom_root], tmp_path / f"shard{i}", config(shard=(i, 2)))
        part = set(StudyStore(tmp_path / f"shard{i}").manifest()["study_key"])
        assert not part & keys
        keys |= part
    assert keys == {hash_key(acc, SALT) for _, acc in PATIENTS}
    assert merge_stores([tmp_path / "shard0", tmp_path / "shard1"], tmp_path / "merged") == 3
    ingest([dicom_root], tmp_path / "whole", config())
    assert _digests(tmp_path / "merged") == _digests(tmp_path / "whole")
    a, b = StudyStore(tmp_path / "merged").manifest(), StudyStore(tmp_path / "whole").manifest()
    pd.testing.assert_frame_equal(a, b)
    assert (tmp_path / "merged" / "ingest_report.jsonl").read_text() == (
        tmp_path / "whole" / "ingest_report.jsonl"
    ).read_text()


def test_resume_with_other_options_refused(dicom_root, tmp_path):
    ingest([dicom_root / PATIENTS[0][0]], tmp_path / "s", config())
    with pytest.raises(ConfigError, match="crop_size=32 \\(now 48\\)"):
        ingest([dicom_root / PATIENTS[0][0]], tmp_path / "s", config().model_copy(update={"crop_size": 48}))


def test_salt_required(tmp_path):
    with pytest.raises(ConfigError, match="salt"):
        ingest([tmp_path], tmp_path / "store", IngestConfig())
