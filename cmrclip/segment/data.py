"""Labelled SAX stacks for training and evaluation: the ACDC pack, M&Ms-2 NIfTI, Sunnybrook masks, synthetic hearts.

Every loader returns :class:`LabelledStack` with labels in this package's convention (0 background, 1 LV cavity,
2 LV myocardium, 3 RV cavity). ACDC's own labels (1 RV, 2 myocardium, 3 LV) are mapped on reading. Real data is
read where it lies (``../shared/data`` layout, see its MANIFEST.md); nothing is copied.
"""

from __future__ import annotations

import csv
import io
import logging
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmrclip.conditions import condition_keys
from cmrclip.errors import DataError
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.synth.anatomy import Tissue
from cmrclip.synth.hearts import RealHeart
from cmrclip.synth.identity import plan_cohort
from cmrclip.synth.realistic import plan_real_studies
from cmrclip.synth.realstudy import render_real_study
from cmrclip.synth.study import render_study

__all__ = ["LabelledStack", "load_acdc_pack", "load_mnms2_sax", "realistic_stacks", "synthetic_stacks"]

logger = logging.getLogger(__name__)

_ACDC_TO_OURS = np.array([0, 3, 2, 1], dtype=np.uint8)  # ACDC 1 RV, 2 MYO, 3 LV -> ours 3, 2, 1


@dataclass
class LabelledStack:
    """One subject's SAX images with expert (or exact synthetic) masks.

    Attributes:
        subject: subject id (e.g. ``patient001``).
        images: float32 ``[S, F, H, W]`` grey levels (F = 2 for ED/ES pairs: ED first).
        labels: uint8 ``[S, F, H, W]`` (0 bg, 1 LV cavity, 2 LV myocardium, 3 RV cavity).
        pixel_spacing_mm: (row, column) spacing, None when unknown (the ACDC pack).
        slice_spacing_mm: centre-to-centre slice spacing, None when unknown.
        source: ``acdc``, ``mnms2``, ``synthetic``, ...
        group: diagnosis group where known.
        lvef: reference LVEF (%) where known.
    """

    subject: str
    images: np.ndarray
    labels: np.ndarray
    pixel_spacing_mm: tuple[float, float] | None
    slice_spacing_mm: float | None
    source: str
    group: str = ""
    lvef: float | None = None


def _acdc_lvef(tar_path: Path) -> dict[str, float]:
    table = tar_path.parent / "labels.csv"
    if not table.is_file():
        return {}
    with table.open(encoding="utf-8") as fh:
        return {row["patient"]: float(row["LVEF_pct"]) for row in csv.DictReader(fh)}


def load_acdc_pack(tar_path: Path, progress: ProgressFn = null_progress) -> list[LabelledStack]:
    """Read every ``GROUP/patientXXX.npz`` of the ACDC ED/ES pack (``acdc_40_patients_ed_es.tar.xz`` layout).

    Raises:
        DataError: if the archive is missing or holds no patient.
    """
    tar_path = Path(tar_path)
    if not tar_path.is_file():
        raise DataError(f"ACDC pack {tar_path} not found; give the acdc_40_patients_ed_es.tar.xz of ../shared/data")
    lvef = _acdc_lvef(tar_path)
    out = []
    with tarfile.open(tar_path) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".npz")), key=lambda m: m.name)
        for i, member in enumerate(members):
            handle = tar.extractfile(member)
            if handle is None:
                continue
            z = np.load(io.BytesIO(handle.read()))
            images = np.stack([z["image_ed"], z["image_es"]], axis=1).astype(np.float32)
            labels = _ACDC_TO_OURS[np.stack([z["label_ed"], z["label_es"]], axis=1)]
            group, name = member.name.split("/")[-2], Path(member.name).stem
            out.append(LabelledStack(name, images, labels, None, None, "acdc", group, lvef.get(name)))
            progress("acdc", i + 1, len(members))
    if not out:
        raise DataError(f"{tar_path} holds no GROUP/patientXXX.npz; is it the ACDC ED/ES pack?")
    return out


def _nifti_zyx(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asarray(img.dataobj)
    return np.transpose(data, (2, 1, 0)), tuple(float(z) for z in img.header.get_zooms()[:3])


def load_mnms2_sax(folder: Path, subject: str = "001", lvef: float | None = None) -> LabelledStack:
    """Read an M&Ms-2 subject's SAX ED/ES images and masks (``{subject}_SA_{ED,ES}(_gt).nii.gz``).

    Raises:
        DataError: if a file is missing.
    """
    folder = Path(folder)
    names = [f"{subject}_SA_{p}{g}.nii.gz" for p in ("ED", "ES") for g in ("", "_gt")]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"M&Ms-2 subject {subject} in {folder} lacks {missing}")
    (ed, zooms), (ed_gt, _), (es, _), (es_gt, _) = (_nifti_zyx(folder / n) for n in names)
    images = np.stack([ed, es], axis=1).astype(np.float32)
    labels = np.stack([ed_gt, es_gt], axis=1).astype(np.uint8)  # M&Ms: 1 LV, 2 MYO, 3 RV, as ours
    return LabelledStack(f"mnms2_{subject}", images, labels, (zooms[1], zooms[0]), zooms[2], "mnms2", "", lvef)


def _synthetic_labels(tissue: np.ndarray) -> np.ndarray:
    out = np.zeros(tissue.shape, dtype=np.uint8)
    out[np.isin(tissue, [Tissue.LV_BLOOD, Tissue.TRABECULAE])] = 1
    out[tissue == Tissue.LV_MYO] = 2
    out[tissue == Tissue.RV_BLOOD] = 3
    return out


def _edes_stack(
    subject: str, source: str, pixels: np.ndarray, tissue: np.ndarray, spacing: float, step: float | None
) -> LabelledStack:
    """The ED (largest LV cavity) and ES (smallest) frames of a rendered ``[S, F, H, W]`` cine and its Tissue masks."""
    labels = _synthetic_labels(tissue)
    lv = (labels == 1).sum(axis=(0, 2, 3))
    frames = [int(np.argmax(lv)), int(np.argmin(lv))]
    images = pixels[:, frames].astype(np.float32)
    return LabelledStack(subject, images, labels[:, frames], (spacing, spacing), step, source, "", None)


def _step(planes: list) -> float | None:
    return float(np.linalg.norm(planes[1].position - planes[0].position)) if len(planes) > 1 else None


def synthetic_stacks(n_studies: int, seed: int, progress: ProgressFn = null_progress) -> list[LabelledStack]:
    """Render synthetic hearts (the ``cmrclip synth --masks`` generator, in memory) at their ED and ES frames."""
    plans = plan_cohort(n_studies, seed, None, condition_keys(), repeat_fraction=0.0)
    out = []
    for i, plan in enumerate(plans):
        _, _, views = render_study(plan)
        sax = views["SAX"]
        out.append(_edes_stack(plan.accession, "synthetic", np.stack(sax.images), np.stack(sax.labels),
                               float(sax.planes[0].spacing), _step(sax.planes)))  # fmt: skip
        progress("synthetic", i + 1, len(plans))
    return out


def realistic_stacks(
    hearts: Sequence[RealHeart], n_studies: int, seed: int, workers: int = 1, progress: ProgressFn = null_progress
) -> list[LabelledStack]:
    """Render realistic studies (``cmrclip synth --anatomy real``, in memory) at their ED and ES frames.

    Real anatomy from ``hearts`` moved through the cycle and restyled, with the exact masks of the rendered study.

    Raises:
        ConfigError: if no heart has RV, myocardium and LV labels.
    """
    jobs = plan_real_studies(n_studies, seed, hearts, workers=workers, repeat_fraction=0.0)
    out = []
    for i, (plan, heart, motion) in enumerate(jobs):
        pixels, tissue, planes, _ = render_real_study(plan, heart, motion)
        out.append(_edes_stack(f"{plan.accession}_{heart.subject}", "realistic", pixels, tissue,
                               float(planes[0].spacing), _step(planes)))  # fmt: skip
        progress("realistic", i + 1, len(jobs))
    return out
