"""Enhanced multi-frame MR files (written here with pydicom) ingest to the same store as the classic series."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cmrclip.ingest.enhanced import ENHANCED_MR, split_frames
from cmrclip.ingest.faults import read_faults
from cmrclip.ingest.pipeline import IngestConfig, ingest
from cmrclip.ingest.scan import FileRef, read_header, read_pixels
from cmrclip.ingest.store import StudyStore

_TOP = (
    "PatientID", "PatientName", "PatientBirthDate", "AccessionNumber", "StudyInstanceUID", "InstitutionName",
    "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality", "ImageType", "Rows", "Columns",
    "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
)  # fmt: skip


def _item(**values) -> Dataset:
    ds = Dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


def write_enhanced(series_dir: Path, target: Path, seed: int = 0) -> int:
    """Write a classic series folder as one Enhanced MR file, frames shuffled; remove the folder; return #frames."""
    files = [pydicom.dcmread(p) for p in sorted(series_dir.glob("*.dcm"))]
    files = [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
    first = files[0]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = ENHANCED_MR
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid(entropy_srcs=[str(series_dir)])
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for key in _TOP:
        setattr(ds, key, first.get(key))
    ds.NumberOfFrames = len(files)
    ds.InstanceNumber = 1
    shared = _item(
        PixelMeasuresSequence=Sequence([_item(PixelSpacing=first.PixelSpacing, SliceThickness=first.SliceThickness)]),
        PlaneOrientationSequence=Sequence([_item(ImageOrientationPatient=first.ImageOrientationPatient)]),
        PixelValueTransformationSequence=Sequence([_item(RescaleSlope=1, RescaleIntercept=0, RescaleType="US")]),
    )
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(
        _item(
            PlanePositionSequence=Sequence([_item(ImagePositionPatient=f.ImagePositionPatient)]),
            CardiacSynchronizationSequence=Sequence([_item(NominalCardiacTriggerDelayTime=f.TriggerTime)]),
            FrameContentSequence=Sequence([_item(StackID="1")]),
        )
        for f in files
    )
    ds.PixelData = b"".join(f.PixelData for f in files)
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    shutil.rmtree(series_dir)
    return len(files)


def ingest_one(folder: Path, store: Path) -> StudyStore:
    ingest([folder], store, IngestConfig(salt="s", workers=1, crop_size=32))
    return StudyStore(store)


def assert_same_store(a: StudyStore, b: StudyStore) -> None:
    """The same studies, views, geometry and pixels."""
    keys = a.keys()
    assert keys == b.keys() and keys
    for key in keys:
        with a.open(key) as sa, b.open(key) as sb:
            assert sorted(sa.views) == sorted(sb.views)
            for view in sa.views:
                pa, pb = sa.read_view(view), sb.read_view(view)
                np.testing.assert_array_equal(pa, pb, err_msg=view)
                for name, value in sa.geometry(view).items():
                    np.testing.assert_allclose(sb.geometry(view)[name], value, atol=1e-6, err_msg=f"{view} {name}")
                keep = ("pixel_spacing_mm", "slice_thickness_mm", "orientation", "view_source")
                attrs_a, attrs_b = sa.view_attrs(view), sb.view_attrs(view)
                for name in keep:
                    assert np.all(np.asarray(attrs_a[name]) == np.asarray(attrs_b[name])), (view, name)


@pytest.fixture(scope="module")
def classic(tmp_path_factory):
    from cmrclip.ingest.conftest import write_cine_study

    root = tmp_path_factory.mktemp("classic")
    folder = write_cine_study(root, "MRN1", "ACC1", seed=3, n_slices=4, n_phases=8, rows=24)
    return folder, ingest_one(folder, root.parent / (root.name + "_store"))


def test_enhanced_header_splits_into_frames_with_their_geometry(classic, tmp_path):
    folder, _ = classic
    study = tmp_path / "study"
    shutil.copytree(folder, study)
    n = write_enhanced(study / "s2", study / "sax_enhanced.dcm")
    head = read_header(FileRef("sax_enhanced.dcm", study / "sax_enhanced.dcm"))
    assert head.n_frames == n == 32 and len(head.frames) == n
    frames = split_frames([head])
    assert [f.frame_index for f in frames] == list(range(n))
    assert len({f.position for f in frames}) == 4 and len({f.trigger_time for f in frames}) == 8
    assert {f.pixel_spacing for f in frames} == {(2.0, 2.0)} and {f.slice_thickness for f in frames} == {8.0}
    pixels = read_pixels(head.ref)
    assert pixels.shape == (32, 24, 24) and pixels.dtype == np.float32


@pytest.mark.slow
def test_mixed_enhanced_and_classic_study_gives_the_classic_store(classic, tmp_path):
    folder, reference = classic
    study = tmp_path / "MRN1" / "ACC1"
    shutil.copytree(folder, study)
    write_enhanced(study / "s2", study / "enhanced" / "sax.dcm", seed=1)  # SAX: 4 slices x 8 phases
    write_enhanced(study / "s3", study / "enhanced" / "4ch.dcm", seed=2)  # 4CH: 1 slice x 8 phases
    store = ingest_one(tmp_path / "MRN1", tmp_path / "store")  # 2CH and 3CH stay classic single-frame files
    assert_same_store(reference, store)
    assert not [f for f in read_faults(store.report_path) if f.stage in ("geometry", "pixels")]
