"""Acceptance tests of issue 3 on a copy of the synthetic cohort: faults, and a run killed half-way then resumed.

The ``tiny_cohort`` session fixture is never modified: its ``dicom/`` is copied once per module and the faults are
injected into the copy. The truth used here comes from the generator (the masks' slice count, the site's naming
conventions in ``cmrclip.synth.sites``), not from the ingestion code under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from cmrclip.ingest.conftest import truth_view
from cmrclip.ingest.deid import hash_key
from cmrclip.ingest.pipeline import IngestConfig, IngestSummary, ingest
from cmrclip.ingest.store import StudyStore
from cmrclip.synth.sites import SITES, Site

SALT = "acceptance-salt"
CROP = 32


@dataclass
class CohortStudy:
    """One study of the copied cohort: its folder, site, and SAX files as ``slices[s][f]`` (base to apex)."""

    accession: str
    folder: Path
    site: Site
    slices: list[list[Path]]

    @property
    def key(self) -> str:
        return hash_key(self.accession, SALT)

    @property
    def matrix(self) -> tuple[int, int]:
        ds = pydicom.dcmread(self.slices[0][0], stop_before_pixels=True)
        return int(ds.Rows), int(ds.Columns)


def _sax_slices(folder: Path, site: Site) -> list[list[Path]]:
    """SAX files grouped by slice position along the normal, each slice ordered by TriggerTime."""
    by_pos: dict[float, list[tuple[float, Path]]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if truth_view(site, str(ds.SeriesDescription)) != "SAX":
            continue
        o = np.asarray(ds.ImageOrientationPatient, float)
        along = round(float(np.dot(ds.ImagePositionPatient, np.cross(o[:3], o[3:]))), 1)
        by_pos.setdefault(along, []).append((float(ds.TriggerTime), path))
    return [[p for _, p in sorted(by_pos[d])] for d in sorted(by_pos)]


def _studies(cohort: Path, dicom: Path) -> list[CohortStudy]:
    truth = pd.read_csv(cohort / "ground_truth.csv", dtype=str)
    out = []
    for row in truth.itertuples():
        folder = dicom / row.patient_id / row.study_id
        out.append(CohortStudy(row.study_id, folder, SITES[row.site], _sax_slices(folder, SITES[row.site])))
    return out


def _rel(path: Path, study: CohortStudy) -> str:
    """How the fault report names a file: the series folder and file name survive redaction."""
    return path.relative_to(study.folder).as_posix()


def _rewrite(path: Path, change) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


def _halve_matrix(ds: pydicom.Dataset) -> None:
    small = np.ascontiguousarray(ds.pixel_array[::2, ::2])
    ds.Rows, ds.Columns = small.shape
    ds.PixelSpacing = [2 * float(v) for v in ds.PixelSpacing]
    ds.PixelData = small.tobytes()


@dataclass
class Injected:
    """A fault put into the copy, and what the report must say about it."""

    study: CohortStudy
    file: str  # series folder / file name, or "" for faults about a slice rather than a file
    stage: str
    reason: str  # a part of the reason


def _inject(studies: list[CohortStudy]) -> tuple[list[Injected], dict[str, int]]:
    """Break the copy; return the expected faults and each damaged study's expected SAX slice count."""
    one = [s for s in studies if s.site.sax_one_series]
    split = [s for s in studies if not s.site.sax_one_series]
    assert len(one) >= 5 and len(split) >= 3, "the tiny cohort no longer has the sites this test needs"
    a, b, c, e, _ = one[:5]
    d, f, _ = split[:3]
    want: list[Injected] = []
    # a: a truncated file (half of its pixel data gone)
    bad = a.slices[1][2]
    bad.write_bytes(bad.read_bytes()[: -a.matrix[0] * a.matrix[1]])
    want.append(Injected(a, _rel(bad, a), "pixels", "pixel data is less than expected"))
    # b: a zero-byte image, an extra zero-byte file, a text file, random bytes and a truncated header
    zero = b.slices[2][0]
    zero.write_bytes(b"")
    (b.folder / "empty.dcm").write_bytes(b"")
    (b.folder / "notes.txt").write_text("scanner log, not an image\n")
    (b.folder / "junk.dcm").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (b.folder / "cut_header.dcm").write_bytes(b.slices[0][0].read_bytes()[:300])
    rows = "{}x{}".format(*b.matrix)
    want += [Injected(b, _rel(zero, b), "scan", "zero-byte file"), Injected(b, "empty.dcm", "scan", "zero-byte file")]
    want += [Injected(b, name, "scan", "not a DICOM file") for name in ("notes.txt", "junk.dcm")]
    want.append(Injected(b, "cut_header.dcm", "scan", "DICOM without an image"))
    want.append(Injected(b, "", "geometry", f"5 phases of {rows}, expected 6 phases of {rows}; dropped"))
    # c: one slice of the SAX series misses two phases
    for p in c.slices[3][1:3]:
        p.unlink()
    rows = "{}x{}".format(*c.matrix)
    want.append(Injected(c, "", "geometry", f"4 phases of {rows}, expected 6 phases of {rows}; dropped"))
    # d: a duplicated instance (same SOPInstanceUID under another name)
    dup = d.slices[0][0].parent / "zz_copy_of_instance.dcm"
    shutil.copy(d.slices[0][0], dup)
    original = f"dicom/{hash_key(d.folder.parent.name, SALT)}/{d.key}/{_rel(d.slices[0][0], d)}"
    want.append(Injected(d, _rel(dup, d), "geometry", f"duplicate instance of {original}; ignored"))
    # e: an image without pixel data
    _rewrite(e.slices[2][4], lambda ds: delattr(ds, "PixelData"))
    want.append(Injected(e, _rel(e.slices[2][4], e), "pixels", "slice 2: no pixel data; dropped"))
    # f: one SAX slice (its own series at this site) acquired with half the matrix
    (rows, cols), full = f.matrix, "{}x{}".format(*f.matrix)
    for p in f.slices[1]:
        _rewrite(p, _halve_matrix)
    half = f"{(rows + 1) // 2}x{(cols + 1) // 2}"
    want.append(Injected(f, "", "geometry", f"6 phases of {half}, expected 6 phases of {full}; dropped"))
    n_sax = {s.key: len(s.slices) - (s is not d) for s in (a, b, c, d, e, f)}
    return want, n_sax


@dataclass
class FaultyRun:
    src: Path
    store: Path
    studies: list[CohortStudy]
    injected: list[Injected]
    n_sax: dict[str, int]
    summary: IngestSummary


def _config() -> IngestConfig:
    return IngestConfig(salt=SALT, workers=1, crop_size=CROP)


@pytest.fixture(scope="module")
def faulty_run(tiny_cohort, tmp_path_factory) -> FaultyRun:
    root = tmp_path_factory.mktemp("faulty")
    src = root / "dicom"
    shutil.copytree(tiny_cohort / "dicom", src)
    studies = _studies(tiny_cohort, src)
    injected, n_sax = _inject(studies)
    summary = ingest([src], root / "store", _config())
    return FaultyRun(src, root / "store", studies, injected, n_sax, summary)


def _masks_slices(tiny_cohort: Path, accession: str) -> int:
    with np.load(tiny_cohort / "masks" / f"{accession}.npz") as z:
        return int(z["labels"].shape[0])


def test_faulty_cohort_copy_stores_good_studies_and_lists_every_fault(faulty_run, tiny_cohort):
    run = faulty_run
    assert (run.summary.stored, run.summary.partial, run.summary.rejected) == (3, 5, 0)
    lines = (run.store / "ingest_report.jsonl").read_text(encoding="utf-8").splitlines()
    faults = [json.loads(line) for line in lines]
    assert all(list(f) == ["study", "file", "stage", "reason"] for f in faults)
    unmatched = list(faults)
    for want in run.injected:
        key = "" if want.stage == "scan" else want.study.key  # unreadable files cannot be attributed to a study
        hits = [
            f
            for f in unmatched
            if f["study"] == key
            and f["stage"] == want.stage
            and want.reason in f["reason"]
            and f["file"].endswith("/" + want.file if want.file else "")
            and (want.stage != "scan" or f"/{want.study.key}/" in f["file"])  # the accession is redacted to its key
        ]
        assert len(hits) == 1, (want, faults)
        unmatched.remove(hits[0])
    assert unmatched == []  # nothing else was reported: the untouched studies and views have no fault
    report = "\n".join(lines)
    assert [s.accession for s in run.studies if s.accession in report] == []  # file names in reasons redacted too
    assert [s.folder.parent.name for s in run.studies if s.folder.parent.name in report] == []
    store = StudyStore(run.store)
    manifest = store.manifest().set_index("study_key")
    assert sorted(manifest.index) == sorted(s.key for s in run.studies)  # every study stored, damaged ones too
    for study in run.studies:
        assert _masks_slices(tiny_cohort, study.accession) == len(study.slices)
        with store.open(study.key) as sf:
            assert sorted(sf.views) == ["2CH", "3CH", "4CH", "SAX"]
            assert sf.views["SAX"].n_slices == run.n_sax.get(study.key, len(study.slices))
            assert {m.n_frames for m in sf.views.values()} == {6}
            for view in sf.views:  # the stored series is the one the generator wrote for that view
                assert truth_view(study.site, sf.view_attrs(view)["series_description"]) == view
            times = sf.geometry("SAX")["trigger_times_ms"]
            assert (np.diff(times, axis=1) > 0).all()


def _tree(store: Path) -> dict[str, bytes]:
    return {p.relative_to(store).as_posix(): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


KILLABLE = (
    "import sys\n"
    "from pathlib import Path\n"
    "from cmrclip.ingest.pipeline import IngestConfig, ingest\n"
    f"ingest([Path(sys.argv[1])], Path(sys.argv[2]), IngestConfig(salt={SALT!r}, workers=1, crop_size={CROP}))\n"
)


def _run_and_kill(src: Path, store: Path) -> int:
    """Start an ingestion in a new process group and SIGKILL it once a study is stored, preferably mid-write.

    The kill lands while the next study's temp file is being written when the polling catches it, else as soon as
    three studies are stored.
    """
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, "-c", KILLABLE, str(src), str(store)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        n_stored = len(list((store / "studies").glob("*.h5")))
        if n_stored >= 3 or (n_stored and any((store / "studies").glob(".*.tmp"))):
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")[-2000:]
    return len(list((store / "studies").glob("*.h5")))


@pytest.mark.slow
def test_killed_run_resumes_to_the_clean_store(faulty_run, tmp_path):
    store = tmp_path / "store"
    n_killed = _run_and_kill(faulty_run.src, store)
    assert 1 <= n_killed < len(faulty_run.studies)  # really killed half-way
    summary = ingest([faulty_run.src], store, _config())
    assert summary.already_stored <= n_killed
    assert summary.already_stored + summary.stored + summary.partial == len(faulty_run.studies)
    resumed, clean = _tree(store), _tree(faulty_run.store)
    assert sorted(resumed) == sorted(clean)  # no temp file or journal left behind
    differ = [name for name in clean if name != "manifest.sqlite" and resumed[name] != clean[name]]
    assert differ == []  # HDF5 files, fault report and options byte for byte
    digest = {n: hashlib.sha256(b).hexdigest()[:8] for n, b in resumed.items() if n.endswith(".h5")}
    assert len(set(digest.values())) == len(faulty_run.studies)
    pd.testing.assert_frame_equal(StudyStore(store).manifest(), StudyStore(faulty_run.store).manifest())
