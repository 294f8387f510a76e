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
