"""Fixtures of the serve tests: a tiny randomly initialised study-model bundle, a small phantom study store and a
stand-in segmenter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cmrclip.conditions import condition_keys
from cmrclip.ingest.store import StudyRecord, StudyStore, ViewData
from cmrclip.models.bundle import save_bundle
from cmrclip.models.heads import HeadConfig, StudyModel
from cmrclip.models.registry import build_video_encoder


def phantom_view(n_slices: int, n_frames: int = 20, size: int = 72, seed: int = 0) -> ViewData:
    """A bright disk (the LV blood pool) that contracts and relaxes once per cycle, on a noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    pixels = np.empty((n_slices, n_frames, size, size), dtype=np.uint8)
    for s in range(n_slices):
        for f in range(n_frames):
            radius = size * (0.22 - 0.06 * np.sin(np.pi * f / n_frames)) * (1 - 0.05 * abs(s - n_slices / 2))
            img = 40 + 160 * (r < radius) + 40 * ((r >= radius) & (r < radius + 4)) + rng.normal(0, 8, r.shape)
            pixels[s, f] = np.clip(img, 0, 255).astype(np.uint8)
    return ViewData(
        pixels=pixels,
        trigger_times_ms=np.tile(np.arange(n_frames) * 40.0, (n_slices, 1)),
        positions_mm=np.stack([np.zeros(n_slices), np.zeros(n_slices), np.arange(n_slices) * 10.0], axis=1),
        pixel_spacing_mm=(1.5, 1.5),
        slice_thickness_mm=8.0,
        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        window=(0.0, 255.0),
        view_source="description",
        series_description="cine",
    )


@pytest.fixture(scope="session")
def phantom_store(tmp_path_factory):
    """A store with one SAX + 4CH study (key ``a1b2...``) and one SAX-only study (``c3d4...``)."""
    store = StudyStore.create(tmp_path_factory.mktemp("serve") / "store")
    full = {"SAX": phantom_view(7, seed=1), "4CH": phantom_view(1, seed=2)}
    store.write_study(StudyRecord("a1b2c3d4e5f60718", "p" * 16, "siteA", full))
    store.write_study(StudyRecord("c3d4e5f607182930", "q" * 16, "siteA", {"SAX": phantom_view(6, seed=3)}))
    return store


def _tiny_model() -> StudyModel:
    encoder = build_video_encoder("tiny", seed=0)
    return StudyModel(encoder, encoder.video_proj, encoder.out_dim, HeadConfig(), condition_keys(), ["lvef"])


@pytest.fixture(scope="session")
def plain_bundle(tmp_path_factory):
    """A tiny random bundle with an LVEF calibration block only (no condition calibration: loads fast)."""
    rng = np.random.default_rng(1)
    truth = rng.normal(55, 10, 30)
    calibration = {"lvef_pred": (truth + rng.normal(0, 5, 30)).tolist(), "lvef_true": truth.tolist()}
    return save_bundle(tmp_path_factory.mktemp("plain") / "model.pt", _tiny_model(), calibration)


@pytest.fixture(scope="session")
def tiny_model(tiny_bundle):
    """The tiny bundle, loaded once for the session (fitting 39 Platt scalers takes a few seconds)."""
    from cmrclip.serve.predict import load_model

    return load_model(tiny_bundle)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A bundle of a randomly initialised tiny StudyModel with calibration data drawn from a seeded generator."""
    torch.manual_seed(0)
    encoder = build_video_encoder("tiny", seed=0)
    targets = condition_keys()
    model = StudyModel(encoder, encoder.video_proj, encoder.out_dim, HeadConfig(), targets, ["lvef"])
    rng = np.random.default_rng(0)
    n = 60
    labels = (rng.random((n, len(targets))) < 0.3).astype(np.float32)
    labels[:5, 0] = np.nan
    scores = np.clip(0.3 * labels + 0.7 * rng.random(labels.shape), 0.01, 0.99)
    lvef_true = rng.normal(55, 10, n)
    calibration = {
        "lvef_pred": (lvef_true + rng.normal(0, 5, n)).tolist(),
        "lvef_true": lvef_true.tolist(),
        "scores": scores.tolist(),
        "labels": labels.tolist(),
        "embeddings": rng.normal(size=(n, encoder.config.proj_dim)).tolist(),
    }
    thresholds = {key: 0.5 for key in targets}
    path = tmp_path_factory.mktemp("bundle") / "model.pt"
    return save_bundle(path, model, calibration, thresholds, {"note": "random weights, for tests"})


def _dicom(pixels: np.ndarray, meta: dict) -> bytes:
    """One MR image as DICOM bytes (explicit VR little endian)."""
    import io

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    file_meta.MediaStorageSOPInstanceUID = uid = generate_uid(entropy_srcs=[str(sorted(meta.items()))])
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = file_meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = file_meta.MediaStorageSOPClassUID, uid, "MR"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    for key, value in meta.items():
        setattr(ds, key, value)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (pixels.astype(np.uint16) * 8).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def phantom_dicom_zip(n_slices: int = 6, n_frames: int = 16, size: int = 72, seed: int = 0) -> bytes:
    """A zip of a phantom cine study's DICOM files: a SAX stack and one 4CH cine (fake patient identifiers)."""
    import io
    import zipfile

    study = {"PatientID": "PHANTOM-0001", "PatientName": "PHANTOM^TEST", "AccessionNumber": "ACC0001"}
    study["StudyInstanceUID"] = "1.2.826.0.1.3680043.8.498.1"
    series = [
        ("SA cine", phantom_view(n_slices, n_frames, size, seed), (1, 0, 0, 0, 1, 0)),
        ("4ch cine", phantom_view(1, n_frames, size, seed + 1), (1, 0, 0, 0, 0, -1)),
    ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for number, (description, view, orientation) in enumerate(series, start=1):
            for s in range(view.pixels.shape[0]):
                for f in range(n_frames):
                    meta = study | {
                        "SeriesInstanceUID": f"{study['StudyInstanceUID']}.{number}",
                        "SeriesDescription": description,
                        "SeriesNumber": number,
                        "InstanceNumber": s * n_frames + f + 1,
                        "PixelSpacing": [1.5, 1.5],
                        "SliceThickness": 8.0,
                        "ImageOrientationPatient": list(orientation),
                        "ImagePositionPatient": [-54.0, -54.0, 10.0 * s] if number == 1 else [-54.0, 0.0, 54.0],
                        "TriggerTime": 40.0 * f,
                    }
                    zf.writestr(f"{description}/IM{s:02d}{f:02d}.dcm", _dicom(view.pixels[s, f], meta))
    return buf.getvalue()


@pytest.fixture(scope="session")
def make_phantom_view():
    """The phantom view builder, for tests that need views of their own size."""
    return phantom_view


@pytest.fixture(scope="session")
def phantom_zip() -> bytes:
    """The phantom DICOM study as zip bytes."""
    return phantom_dicom_zip()


class _BrightIsLv(nn.Module):
    """Logits of a stand-in segmenter: the bright pixels of the centre slice are LV cavity (a blood pool)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = x[:, x.shape[1] // 2]
        lv = 40 * (centre - 0.6)
        return torch.stack([torch.zeros_like(lv), lv, torch.full_like(lv, -10), torch.full_like(lv, -10)], dim=1)


@pytest.fixture(scope="session")
def threshold_segmenter():
    """A fixed intensity-threshold 'segmenter' (not a trained network): LV cavity where the image is bright."""
    from cmrclip.segment import Segmenter, SegModelConfig

    return Segmenter(_BrightIsLv(), SegModelConfig(roi_px=64, tta_flips=False), {"note": "threshold stand-in"})
