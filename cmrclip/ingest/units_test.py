"""Unit tests of the ingestion pieces: scan, geometry, views, preprocessing, de-identification."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import pytest

from cmrclip.errors import ConfigError
from cmrclip.ingest.conftest import LONG_AXIS, header, lax_orientation, sax_frame
from cmrclip.ingest.deid import hash_key, redact
from cmrclip.ingest.faults import Fault, loses_data, read_faults
from cmrclip.ingest.geometry import order_cine
from cmrclip.ingest.pipeline import _remove_stale_temps
from cmrclip.ingest.preprocess import heart_centre, patient_to_pixel, resample_crop, window_uint8
from cmrclip.ingest.scan import Header, expand_sources, read_header, read_pixels
from cmrclip.ingest.store import StudyStore
from cmrclip.ingest.views import SeriesPlane, identify_views, load_view_rules, view_from_description


def test_order_by_geometry_not_names_or_instance_numbers():
    rng = np.random.default_rng(0)
    hs = []
    for s in range(3):
        for f in range(5):
            inst = int(rng.integers(1000))  # InstanceNumber carries no order
            hs.append(header(f"f{rng.integers(1e6)}", (0.0, 0.0, 10.0 * (2 - s)), 30.0 * f + s, inst))
    rng.shuffle(hs)
    layout, faults = order_cine(hs)
    assert faults == [] and (layout.n_slices, layout.n_frames) == (3, 5)
    np.testing.assert_allclose(layout.positions_mm[:, 2], [0, 10, 20])
    assert np.all(np.diff(layout.trigger_times_ms, axis=1) > 0)
    assert layout.provenance["phase_order"] == "trigger_time"


def test_duplicates_and_short_slices_reported():
    hs = [header(f"s{s}f{f}", (0.0, 0.0, 8.0 * s), 40.0 * f, s * 10 + f) for s in range(3) for f in range(6)]
    hs.append(header("copy", (0.0, 0.0, 0.0), 0.0, 99, sop="s0f0"))  # same SOPInstanceUID
    hs.append(header("resent", (0.0, 0.0, 0.0), 40.0, 98))  # new UID, same position and time
    hs = [h for h in hs if h.ref.name not in ("s2f1", "s2f4")]  # slice 2 misses two phases
    layout, faults = order_cine(hs, "key")
    assert layout.n_slices == 2
    reasons = [f.reason for f in faults]
    dup = [f for f in faults if "duplicate instance of" in f.reason]
    assert len(dup) == 1 and {dup[0].file, dup[0].reason.split()[3].rstrip(";")} == {"copy", "s0f0"}
    assert any("same position and TriggerTime" in r for r in reasons)
    assert any("4 phases of 8x8, expected 6 phases" in r for r in reasons)
    assert [loses_data(f) for f in faults].count(True) == 1


def test_descriptions_map_to_views():
    rules = load_view_rules()
    cases = {
        "SAX_FIESTA_BH": "SAX",
        "cine_sa": "SAX",
        "CINE_segmented_SAX_b7": "SAX",
        "sBTFE_SA": "SAX",
        "CINE_segmented_LAX_4Ch": "4CH",
        "FIESTA CINE LVOT": "3CH",
        "cine 2ch": "2CH",
        "trufi_3ch": "3CH",
        "LGE_SAX_PSIR": "OTHER",
        "flow_ao_venc150": "OTHER",
        "localizer": "OTHER",
        "cine_lax": None,
        "": None,
    }
    assert {d: view_from_description(d, rules) for d in cases} == cases


def test_geometry_identifies_views():
    u, v = sax_frame()
    sax = tuple(np.concatenate([v, -u]))
    planes = [SeriesPlane("", sax, 10)] + [SeriesPlane("", tuple(lax_orientation(x)), 1) for x in ("3CH", "4CH", "2CH")]
    planes.append(SeriesPlane("", sax, 1))  # a SAX slice acquired as its own series
    decisions = identify_views(planes)
    assert [d.view for d in decisions] == ["SAX", "3CH", "4CH", "2CH", "SAX"]
    assert {d.source for d in decisions} == {"geometry"}
    assert identify_views([SeriesPlane("", tuple(lax_orientation("4CH")), 1)])[0].view == "OTHER"  # no SAX


def test_resample_crop_keeps_geometry():
    vol = np.zeros((1, 2, 50, 40), np.float32)
    vol[0, :, 30, 12] = 100.0
    spacing, pos, ori = (0.8, 1.2), np.array([5.0, -3.0, 7.0]), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    centre_rc = np.array([5 + 15.5 * 1.25, 7 + 15.5 / 1.2])  # puts acquired pixel (30, 12) on output (20, 6)
    out, inside, grid = resample_crop(vol, centre_rc, spacing, 1.0, 32)
    point = pos + np.array([12 * 1.2, 30 * 0.8, 0.0])
    new_pos = pos + np.array([grid.origin_rc[1] * spacing[1], grid.origin_rc[0] * spacing[0], 0.0])
    np.testing.assert_allclose(patient_to_pixel(point, new_pos, ori, (1.0, 1.0)), [20, 6], atol=1e-9)
    assert np.unravel_index(np.argmax(out[0, 0]), out.shape[2:]) == (20, 6)
    assert inside.all()


def test_window_and_heart_centre():
    rng = np.random.default_rng(1)
    vol = rng.normal(100, 5, (3, 8, 40, 40)).astype(np.float32)
    for f in range(8):
        vol[:, f, 10 : 10 + 4 + f, 25:29] += 500  # moving structure near (12, 27)
    pixels, (lo, hi) = window_uint8(vol)
    assert pixels.dtype == np.uint8 and lo < 100 < hi and (pixels == 255).mean() < 0.01
    centre = heart_centre(vol, np.zeros((3, 3)), (1, 0, 0, 0, 1, 0), (1.0, 1.0), smooth_mm=2.0)
    assert abs(centre[1] - 15) < 5 and abs(centre[0] - 27) < 4  # (x = col, y = row)


def test_archives_and_bad_files(tmp_path, cine_factory):
    root = cine_factory(tmp_path / "dicom", "MRN1", "ACC1", n_slices=1, n_phases=2, views=("SAX",))
    one = next((root / "s2").glob("*.dcm"))
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.write(one, "x/one.dcm")
        zf.writestr("x/readme.txt", "hello")
    with tarfile.open(tmp_path / "b.tar.gz", "w:gz") as tf:
        tf.add(one, "y/one.dcm")
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8bgarbage")
    faults: list[Fault] = []
    refs = expand_sources([tmp_path / "a.zip", tmp_path / "b.tar.gz", tmp_path / "empty.dcm"], tmp_path / "w", faults)
    names = [r.name for r in refs]
    assert names == ["a.zip!x/one.dcm", "a.zip!x/readme.txt", "b.tar.gz!y/one.dcm", "empty.dcm"]
    outs = [read_header(r) for r in refs]
    assert isinstance(outs[0], Header) and isinstance(outs[2], Header)
    assert "not a DICOM" in outs[1].reason and outs[3].reason == "zero-byte file"
    np.testing.assert_array_equal(read_pixels(refs[0]), read_pixels(refs[2]))
    bad: list[Fault] = []
    expand_sources([tmp_path / "broken.tar.gz", tmp_path / "missing"], tmp_path / "w", bad)
    assert [f.reason.split(":")[0] for f in bad] == ["unreadable archive", "source does not exist"]


def test_keys_are_salted_and_stable():
    assert hash_key("ACC1", "s") == hash_key(" ACC1 ", "s") != hash_key("ACC1", "t")
    assert len(hash_key("ACC1", "s")) == 16
    with pytest.raises(ConfigError):
        hash_key("ACC1", "")
    assert redact("in/MRN123/ACC9/x.dcm", {"MRN123": "k1", "ACC9": "k2"}) == "in/k1/k2/x.dcm"


def test_long_axis_is_unit():
    assert abs(np.linalg.norm(LONG_AXIS) - 1) < 1e-9


def test_torn_fault_line_skipped(tmp_path):
    report = tmp_path / "ingest_report.jsonl"
    good = Fault("k1", "a.dcm", "scan", "zero-byte file")
    report.write_text(good.to_json() + "\n" + good.to_json()[:25], encoding="utf-8")  # a run killed mid-append
    assert read_faults(report) == [good]


def test_stale_temps_of_dead_runs_removed(tmp_path):
    store = StudyStore.create(tmp_path / "store")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    stale = store.root / "studies" / f".abc.h5.{int(dead.stdout)}.tmp"
    live = store.root / "studies" / f".def.h5.{os.getpid()}.tmp"
    stale.write_bytes(b"half")
    live.write_bytes(b"busy")
    _remove_stale_temps(store)
    assert not stale.exists() and live.exists()
