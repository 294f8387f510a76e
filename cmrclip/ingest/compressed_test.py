"""Compressed pixel data (encoded here) ingests to the store of the uncompressed series; unknown syntaxes are faults.

Encoders: pydicom (RLE), ``pyjpegls`` (JPEG-LS), ``pylibjpeg-openjpeg`` (JPEG 2000) and GDCM (JPEG baseline,
extended and lossless; test-only dependency ``python-gdcm``). Decoding goes through pydicom's decoders (the
``pylibjpeg`` plugins, a runtime dependency; GDCM as well where it is installed).
GDCM writes 12-bit JPEG extended streams that no decoder reads back, so JPEG extended is tested with 8-bit samples.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import gdcm
import numpy as np
import pydicom
import pytest
from pydicom import uid

from cmrclip.ingest.enhanced_test import assert_same_store, ingest_one, write_enhanced
from cmrclip.ingest.faults import read_faults
from cmrclip.ingest.scan import FileRef, read_pixels

_GDCM = {
    uid.JPEGBaseline8Bit: gdcm.TransferSyntax.JPEGBaselineProcess1,
    uid.JPEGExtended12Bit: gdcm.TransferSyntax.JPEGExtendedProcess2_4,
    uid.JPEGLossless: gdcm.TransferSyntax.JPEGLosslessProcess14,
    uid.JPEGLosslessSV1: gdcm.TransferSyntax.JPEGLosslessProcess14_1,
}
_PYDICOM = {
    uid.RLELossless: {},
    uid.JPEGLSLossless: {},
    uid.JPEG2000Lossless: {},
    uid.JPEGLSNearLossless: {"jls_error": 2},
    uid.JPEG2000: {"j2k_cr": [5]},
}


def _encode(path: Path, syntax: str) -> None:
    if syntax in _PYDICOM:
        ds = pydicom.dcmread(path)
        ds.compress(syntax, **_PYDICOM[syntax])
        ds.save_as(path)
        return
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    assert reader.Read(), path
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(_GDCM[syntax]))
    change.SetInput(reader.GetImage())
    assert change.Change(), syntax
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(path) + ".tmp")
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    assert writer.Write(), syntax
    Path(str(path) + ".tmp").replace(path)


def _compress_all(folder: Path, syntax: str) -> None:
    for path in sorted(folder.rglob("*.dcm")):
        _encode(path, syntax)
        assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax


def _to_8bit(folder: Path) -> None:
    for path in sorted(folder.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.PixelData = (ds.pixel_array // 4).clip(0, 255).astype(np.uint8).tobytes()
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.save_as(path)


@pytest.fixture(scope="module")
def classic(tmp_path_factory):
    """A SAX + 4CH study (32 px: JPEG 2000 needs >= 32 for its 6 resolutions), 16-bit and 8-bit, with its store."""
    from cmrclip.ingest.conftest import write_cine_study

    out = {}
    for bits in (16, 8):
        root = tmp_path_factory.mktemp(f"classic{bits}")
        folder = write_cine_study(root / "dicom", "MRN1", "ACC1", seed=5, n_slices=3, rows=32, views=("SAX", "4CH"))
        if bits == 8:
            _to_8bit(folder)
        out[bits] = (root / "dicom", ingest_one(root / "dicom", root / "store"))
    return out


LOSSLESS = [uid.RLELossless, uid.JPEGLSLossless, uid.JPEG2000Lossless, uid.JPEGLossless, uid.JPEGLosslessSV1]
LOSSY = [  # (syntax, bits of the samples, largest mean error of the decoded frames, in % of the signal's range)
    (uid.JPEGBaseline8Bit, 8, 0.2),  # measured 0.056 (benchmarks/RESULTS.md, issue 17)
    (uid.JPEGExtended12Bit, 8, 0.2),  # 0.056
    (uid.JPEGLSNearLossless, 16, 0.3),  # 0.168
    (uid.JPEG2000, 16, 1.5),  # 1.088
]


@pytest.mark.slow
@pytest.mark.parametrize("syntax", LOSSLESS, ids=lambda s: s.name)
def test_lossless_syntaxes_give_the_identical_store(classic, syntax, tmp_path):
    source, reference = classic[16]
    shutil.copytree(source, tmp_path / "dicom")
    _compress_all(tmp_path / "dicom", syntax)
    store = ingest_one(tmp_path / "dicom", tmp_path / "store")
    assert_same_store(reference, store)
    assert not [f for f in read_faults(store.report_path) if f.stage == "pixels"]


@pytest.mark.slow
@pytest.mark.parametrize(("syntax", "bits", "tolerance"), LOSSY, ids=lambda s: getattr(s, "name", str(s)))
def test_lossy_syntaxes_decode_close_and_store_the_same_stacks(classic, syntax, bits, tolerance, tmp_path):
    """Lossy frames decode close to the originals; the store has the same stacks (the crop, centred on the
    heart found in the pixels, may move by a pixel, so stored pixels are not compared)."""
    source, reference = classic[bits]
    shutil.copytree(source, tmp_path / "dicom")
    _compress_all(tmp_path / "dicom", syntax)
    for path in sorted(source.rglob("*.dcm")):
        original = read_pixels(FileRef(path.name, path))
        decoded = read_pixels(FileRef(path.name, tmp_path / "dicom" / path.relative_to(source)))
        error = np.abs(decoded - original).mean() / np.ptp(original) * 100
        assert error <= tolerance, (path.name, error)
    store = ingest_one(tmp_path / "dicom", tmp_path / "store")
    keys = reference.keys()
    for key in keys:
        with reference.open(key) as a, store.open(key) as b:
            shapes = [{v: (m.n_slices, m.n_frames) for v, m in f.views.items()} for f in (a, b)]
            assert shapes[0] == shapes[1]
            for view in a.views:
                times = [f.geometry(view)["trigger_times_ms"] for f in (a, b)]
                np.testing.assert_array_equal(*times)


@pytest.mark.slow
def test_compressed_enhanced_multiframe_gives_the_identical_store(classic, tmp_path):
    source, reference = classic[16]
    shutil.copytree(source, tmp_path / "dicom")
    study = tmp_path / "dicom" / "MRN1" / "ACC1"
    write_enhanced(study / "s2", study / "sax.dcm")
    _encode(study / "sax.dcm", uid.JPEG2000Lossless)
    assert_same_store(reference, ingest_one(tmp_path / "dicom", tmp_path / "store"))


def test_unsupported_syntax_is_a_named_fault_for_its_series(classic, tmp_path):
    source, _ = classic[16]
    shutil.copytree(source, tmp_path / "dicom")
    for path in sorted((tmp_path / "dicom" / "MRN1" / "ACC1" / "s3").glob("*.dcm")):  # the 4CH series
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = uid.MPEG2MPML
        ds.PixelData = pydicom.encaps.encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
        ds.save_as(path)
    store = ingest_one(tmp_path / "dicom", tmp_path / "store")
    (key,) = store.keys()
    with store.open(key) as study:
        assert list(study.views) == ["SAX"]
    faults = [f for f in read_faults(store.report_path) if "transfer syntax" in f.reason]
    assert len(faults) == 1 and faults[0].stage == "series"
    assert "MPEG2 Main Profile / Main Level" in faults[0].reason and "skipped series 3" in faults[0].reason
