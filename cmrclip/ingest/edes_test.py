"""ED/ES-only studies: pack reading and its errors, the interpolated cycle, and ingest of NIfTI ED/ES pairs."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from cmrclip.errors import CmrclipError
from cmrclip.ingest.edes import edes_cycle, edes_motion, edes_view, read_acdc_pack
from cmrclip.synth.motion import contraction_curve, exp_field, warp


def _phantom(radius: float, size: int = 64, slices: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A bright cavity of ``radius`` inside a dark 6-px wall, on a mid-grey background; image and ACDC labels."""
    yy, xx = np.mgrid[:size, :size]
    dist = np.hypot(yy - size / 2 + 2, xx - size / 2 + 1)
    labels = np.where(dist < radius, 3, np.where(dist < radius + 6, 2, 0)).astype(np.uint8)
    image = np.choose(np.minimum(labels, 3), [90.0, 0.0, 40.0, 220.0]).astype(np.float32)
    return np.repeat(image[None], slices, 0), np.repeat(labels[None], slices, 0)


def _pack(path, members: dict[str, dict[str, np.ndarray]]) -> None:
    with tarfile.open(path, "w:xz") as tf:
        for name, arrays in members.items():
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            info = tarfile.TarInfo(name)
            info.size = buf.tell()
            buf.seek(0)
            tf.addfile(info, buf)


def test_cycle_keeps_key_frames_and_does_not_bias_the_cavity():
    ed, lab_ed = _phantom(16)
    es, lab_es = _phantom(10)
    motion = edes_motion(ed, es, region_px=64)
    frames, k_es = edes_cycle(ed, es, n_frames=16, motion=motion)
    assert frames.shape == (3, 16, 64, 64) and k_es == int(np.argmax(contraction_curve(16)))
    np.testing.assert_array_equal(frames[:, 0], ed)
    np.testing.assert_array_equal(frames[:, k_es], es)
    areas = [warp((lab_ed == 3).astype(np.float32), exp_field(a * motion.forward)).sum() for a in (0, 0.5, 1)]
    assert areas[0] > areas[1] > areas[2]
    assert areas[2] == pytest.approx((lab_es == 3).sum(), rel=0.08)  # the warp reaches the ES cavity: EF unbiased
    mid = frames[1, k_es // 2, 32]  # in between, the cavity has an intermediate size
    assert (lab_es[1, 32] == 3).sum() < (mid > 130).sum() < (lab_ed[1, 32] == 3).sum()


def test_edes_view_has_the_store_conventions():
    ed, _ = _phantom(16, size=80)
    es, _ = _phantom(11, size=80)
    view = edes_view(ed, es, None, n_frames=12, crop_size=48)
    assert view.pixels.shape == (3, 12, 48, 48) and view.pixels.dtype == np.uint8
    assert view.pixel_spacing_mm == (1.25, 1.25) and view.slice_thickness_mm == 10.0
    assert view.provenance["spacing_source"] == "assumed" and view.provenance["es_frame"] > 0


def test_pack_errors_name_the_file(tmp_path):
    with pytest.raises(CmrclipError, match=r"missing\.tar\.xz"):
        read_acdc_pack(tmp_path / "missing.tar.xz")
    image = np.zeros((2, 8, 8), np.uint16)
    _pack(tmp_path / "nomask.tar.xz", {"NOR/patient001.npz": {"image_ed": image, "image_es": image}})
    with pytest.raises(CmrclipError, match=r"nomask.tar.xz!NOR/patient001.npz has no masks"):
        read_acdc_pack(tmp_path / "nomask.tar.xz")
    assert read_acdc_pack(tmp_path / "nomask.tar.xz", require_masks=False)[0].label_ed is None
    _pack(tmp_path / "flat.tar.xz", {"patient001.npz": {"image_ed": image, "image_es": image}})
    with pytest.raises(CmrclipError, match=r"flat.tar.xz: no GROUP/patientXXX.npz"):
        read_acdc_pack(tmp_path / "flat.tar.xz")
    (tmp_path / "text.tar.xz").write_text("not a tar")
    with pytest.raises(CmrclipError, match=r"text\.tar\.xz"):
        read_acdc_pack(tmp_path / "text.tar.xz")


def test_pack_groups_and_labels(tmp_path):
    image, labels = _phantom(10, size=16, slices=2)
    arrays = {"image_ed": image, "image_es": image, "label_ed": labels, "label_es": labels}
    _pack(tmp_path / "pack.tar.xz", {"HCM/patient021.npz": arrays, "UNKNOWN/patient099.npz": arrays})
    (tmp_path / "labels.csv").write_text("patient,group,LVEF_pct\npatient021,HCM,71.5\npatient099,,\n")
    got = read_acdc_pack(tmp_path / "pack.tar.xz")
    assert [(s.subject, s.group, s.lvef) for s in got] == [("patient021", "HCM", 71.5), ("patient099", None, None)]


@pytest.mark.slow
def test_edes_nifti_studies_ingest_finetune_predict(tmp_path):
    """M&Ms-style ED/ES NIfTI pairs become cycles in the store, train a model, and are predicted from their files."""
    import nibabel as nib
    import pandas as pd

    from cmrclip.conditions import condition_keys
    from cmrclip.ingest.deid import hash_key
    from cmrclip.ingest.pipeline import IngestConfig, ingest
    from cmrclip.ingest.store import StudyStore
    from cmrclip.models.convert import save_video_encoder
    from cmrclip.models.registry import build_video_encoder
    from cmrclip.serve.predict import load_model
    from cmrclip.train.finetune import FinetuneConfig, run_finetune

    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        lvef = float(rng.uniform(20, 70))
        folder = tmp_path / "src" / f"subj{i:02d}"
        folder.mkdir(parents=True)
        for name, radius in (("ED", 9.0), ("ES", 9.0 * np.sqrt(1 - lvef / 100))):
            image, _ = _phantom(radius, size=48)
            image = image + rng.normal(0, 5, image.shape)
            nib.save(nib.Nifti1Image(image.transpose(2, 1, 0), np.diag([2.0, 2.0, 10.0, 1.0])),
                     folder / f"subj{i:02d}_SA_{name}.nii.gz")  # fmt: skip
        rows.append({"study_key": hash_key(f"subj{i:02d}", "s"), "lvef": lvef, **dict.fromkeys(condition_keys(), 0.0),
                     "Hypertrophic.Cardiomyopathy": float(i % 3 == 0)})  # fmt: skip
    cfg = IngestConfig(salt="s", workers=1, crop_size=32, spacing_mm=2.0, nifti_keyframes=True, edes_frames=8)
    ingest([tmp_path / "src"], tmp_path / "store", cfg)
    store = StudyStore(tmp_path / "store")
    assert len(store.manifest()) == 12
    with store.open(rows[0]["study_key"]) as study:
        assert study.views["SAX"].n_frames == 8 and study.attrs["prov_es_frame"] == 3
    store.add_labels(pd.DataFrame(rows))
    encoder = build_video_encoder(
        "tiny", seed=1, overrides={"input_size": [8, 32, 32], "embed_dim": 32, "proj_dim": 64}
    )
    save_video_encoder(encoder, tmp_path / "encoder.pt")
    result = run_finetune(FinetuneConfig.model_validate({
        "store_root": str(store.root), "out_dir": str(tmp_path / "run"), "encoder_path": str(tmp_path / "encoder.pt"),
        "targets": ["Hypertrophic.Cardiomyopathy"], "epochs": 2, "batch_size": 4, "mode": "linear",
        "head": {"hidden": 16, "attention_dim": 8},
    }))  # fmt: skip
    model = load_model(result.out_dir / "model.pt")
    from_files = model.predict(tmp_path / "src" / "subj00")  # ingested on the fly with the packaged defaults
    from_store = model.predict(f"{store.root}#{rows[0]['study_key']}")
    assert from_files.lvef is not None and from_store.lvef is not None
    assert 0 <= from_files.lvef.value <= 100 and from_files.views == from_store.views == ["SAX"]
