"""Real hearts for the realistic cohort: ED and ES images with RV/MYO/LV label maps from the shared real sources.

Every heart is converted to ACDC's label values (0 background, 1 RV cavity, 2 LV myocardium, 3 LV cavity) and axes
``[z, y, x]`` with its (slice, row, column) spacing in mm. Sources (read from the paths given, never copied):

- ACDC ED/ES packs (:func:`cmrclip.synth.sources.read_acdc_pack`): no spacing survives, so the spacing of the same
  patient's cine is used when a cine folder holds it, else ACDC's typical ``(10, 1.5, 1.5)`` mm is assumed
  (``spacing_assumed``; LVEF does not depend on it, volumes in mL do).
- ACDC cine folders (``patientXXX/patientXXX_4d.nii.gz``, ``Info.cfg``, ``_frameNN_gt``): the ED and ES frames and
  masks of the (cropped, mid-ventricular) cine; a patient also in a pack keeps the pack's whole-heart volumes.
- M&Ms-2 folders (``NNN_SA_ED.nii.gz``, ``_ES``, ``_gt``; labels 1 LV, 2 MYO, 3 RV).
- Sunnybrook folders (``dicom_tar_xz/*.tar.xz`` with ``labels_derived/*.npz``): LV cavity and myocardium at ED,
  cavity at ES, no RV.
"""

from __future__ import annotations

import gzip
import logging
import tarfile
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom

from cmrclip.errors import DataError
from cmrclip.synth.sources import ACDC_ASSUMED_SPACING_MM, read_acdc_pack

__all__ = ["GROUP_CONDITIONS", "RealHeart", "load_real_hearts"]

logger = logging.getLogger(__name__)

GROUP_CONDITIONS: dict[str, tuple[str, ...]] = {
    "DCM": ("Non.Ischemic.cardiomyopathy", "Left.Ventricular.Dilation"),
    "HCM": ("Hypertrophic.Cardiomyopathy", "Left.Ventricular.Hypertrophy"),
    "MINF": ("Ischemic.Cardiomyopathy",),
    "NOR": (),
    "RV": ("Right.Ventricular.Dilation",),
    "HF-I": ("Ischemic.Cardiomyopathy",),
}
"""Taxonomy keys of each real diagnostic group (ACDC's five; Sunnybrook's heart failure with infarction)."""

_MNMS_TO_ACDC = np.array([0, 3, 2, 1], np.uint8)  # M&Ms 1 LV, 2 MYO, 3 RV -> ACDC 3, 2, 1
_SUNNYBROOK_TO_ACDC = np.array([0, 3, 2], np.uint8)  # 1 LV cavity, 2 myocardium


@dataclass(frozen=True)
class RealHeart:
    """One real heart at ED and ES: images (float32) and ACDC label maps ``[z, y, x]``, spacing (slice, row, col)."""

    subject: str
    source: str
    image_ed: np.ndarray
    image_es: np.ndarray
    label_ed: np.ndarray
    label_es: np.ndarray
    spacing_mm: tuple[float, float, float]
    group: str | None
    spacing_assumed: bool = False

    @property
    def has_rv(self) -> bool:
        """Whether the RV cavity is labelled at ED and ES."""
        return bool((self.label_ed == 1).any() and (self.label_es == 1).any())

    @property
    def conditions(self) -> tuple[str, ...]:
        """Taxonomy keys of the heart's group (:data:`GROUP_CONDITIONS`); none for an unknown group."""
        return GROUP_CONDITIONS.get(self.group or "", ())


def _nifti(path: Path) -> nib.Nifti1Image:
    try:
        data = path.read_bytes()
        return nib.Nifti1Image.from_bytes(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable NIfTI file ({exc})") from exc


def _zyx(array: np.ndarray) -> np.ndarray:
    """NIfTI ``(x, y, z)`` -> ``[z, y, x]``."""
    return np.ascontiguousarray(np.asarray(array).transpose(2, 1, 0))


def _spacing(img: nib.Nifti1Image) -> tuple[float, float, float]:
    zooms = img.header.get_zooms()
    return float(zooms[2]), float(zooms[1]), float(zooms[0])


def _acdc_cine(folder: Path) -> RealHeart:
    subject = folder.name
    info_path = folder / "Info.cfg"
    cine_path = folder / f"{subject}_4d.nii.gz"
    if not info_path.is_file() or not cine_path.is_file():
        raise DataError(f"{folder}: expected {subject}_4d.nii.gz and Info.cfg (ACDC's layout)")
    info = dict(line.split(":", 1) for line in info_path.read_text(encoding="utf-8").splitlines() if ":" in line)
    info = {k.strip(): v.strip() for k, v in info.items()}
    img = _nifti(cine_path)
    frames = {key: int(info[key]) for key in ("ED", "ES")}
    arrays = {}
    for key, frame in frames.items():
        gt = folder / f"{subject}_frame{frame:02d}_gt.nii.gz"
        if not gt.is_file():
            raise DataError(f"{gt}: mask of the {key} frame not found; a cine heart needs its ED and ES masks")
        arrays[key] = (np.asarray(img.dataobj[..., frame - 1], np.float32), np.asarray(_nifti(gt).dataobj, np.uint8))
    return RealHeart(subject, "acdc_cine", _zyx(arrays["ED"][0]), _zyx(arrays["ES"][0]), _zyx(arrays["ED"][1]),
                     _zyx(arrays["ES"][1]), _spacing(img), info.get("Group"))  # fmt: skip


def _cine_folders(path: Path) -> list[Path]:
    if not path.is_dir():
        raise DataError(f"{path}: cine folder not found; give a folder in ACDC's layout (patientXXX/...)")
    if (path / "Info.cfg").is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and (p / "Info.cfg").is_file())
    if not found:
        raise DataError(f"{path}: no patientXXX/Info.cfg folders inside; expected ACDC's cine layout")
    return found


def _mnms2(folder: Path) -> list[RealHeart]:
    if not folder.is_dir():
        raise DataError(f"{folder}: M&Ms-2 folder not found")
    hearts = []
    for ed_path in sorted(folder.glob("*_SA_ED.nii.gz")):
        stem = ed_path.name[: -len("_SA_ED.nii.gz")]
        paths = [folder / f"{stem}_SA_{k}.nii.gz" for k in ("ED", "ES", "ED_gt", "ES_gt")]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise DataError(f"{folder}: {stem} lacks {missing}; an M&Ms-2 heart needs SAX ED/ES images and masks")
        imgs = [_nifti(p) for p in paths]
        ims = [_zyx(np.asarray(i.dataobj, np.float32)) for i in imgs[:2]]
        labs = [_MNMS_TO_ACDC[_zyx(np.asarray(i.dataobj, np.uint8))] for i in imgs[2:]]
        hearts.append(RealHeart(f"mnms2_{stem}", "mnms2", *ims, *labs, _spacing(imgs[0]), None))
    if not hearts:
        raise DataError(f"{folder}: no *_SA_ED.nii.gz (M&Ms-2 layout)")
    return hearts


def _sunnybrook_volume(tar_path: Path, positions: np.ndarray, phases: tuple[int, int]) -> list[np.ndarray]:
    """The frames ``phases`` of a Sunnybrook cine, ordered by slice position and trigger time (not by file name)."""
    by_slice: dict[float, list[tuple[float, np.ndarray]]] = {}
    with tarfile.open(tar_path) as tf:
        for member in tf.getmembers():
            fh = tf.extractfile(member) if member.isfile() else None
            if fh is None:
                continue
            ds = pydicom.dcmread(fh)
            key = round(float(ds.SliceLocation), 1)
            by_slice.setdefault(key, []).append((float(ds.TriggerTime), ds.pixel_array.astype(np.float32)))
    keys = sorted(by_slice, reverse=bool(positions[0] > positions[-1]))  # the masks' slice order
    if len(keys) != len(positions):
        raise DataError(f"{tar_path}: {len(keys)} slice locations, but the masks have {len(positions)} slices")
    out = []
    for phase in phases:
        frames = [sorted(by_slice[k], key=lambda x: x[0]) for k in keys]
        if min(len(f) for f in frames) <= phase:
            raise DataError(f"{tar_path}: fewer than {phase + 1} phases at some slice")
        out.append(np.stack([f[phase][1] for f in frames]))
    return out


def _sunnybrook(folder: Path) -> list[RealHeart]:
    labels = sorted((folder / "labels_derived").glob("*_labels_ed_es.npz"))
    if not labels:
        raise DataError(f"{folder}: no labels_derived/*_labels_ed_es.npz (the shared Sunnybrook layout)")
    hearts = []
    for path in labels:
        subject = path.name.split("_")[0]
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        tar_path = folder / "dicom_tar_xz" / f"{subject}.tar.xz"
        if not tar_path.is_file():
            raise DataError(f"{tar_path}: Sunnybrook DICOM archive not found beside {path.name}")
        phases = (int(arrays["ed_phase"]), int(arrays["es_phase"]))
        ed, es = _sunnybrook_volume(tar_path, arrays["slice_positions_mm"], phases)
        step = float(np.median(np.abs(np.diff(arrays["slice_positions_mm"]))))
        row, col = (float(s) for s in arrays["pixel_spacing_mm"])
        hearts.append(RealHeart(subject, "sunnybrook", ed, es, _SUNNYBROOK_TO_ACDC[arrays["label_ed"]],
                                _SUNNYBROOK_TO_ACDC[arrays["label_es"]], (step, row, col), "HF-I"))  # fmt: skip
    return hearts


def load_real_hearts(
    acdc_packs: tuple[Path | str, ...] | list[Path | str] = (),
    cine_dirs: tuple[Path | str, ...] | list[Path | str] = (),
    sunnybrook: tuple[Path | str, ...] | list[Path | str] = (),
    mnms2: tuple[Path | str, ...] | list[Path | str] = (),
    subjects: set[str] | None = None,
) -> list[RealHeart]:
    """Load real hearts with ED/ES images and masks from the given sources, sorted by subject.

    Args:
        acdc_packs: ACDC ED/ES packs (``.tar.xz``; ``labels.csv`` beside them gives the groups).
        cine_dirs: folders in ACDC's cine layout (a ``patientXXX`` folder, or a folder of them).
        sunnybrook: folders in the shared Sunnybrook layout.
        mnms2: M&Ms-2 folders (``NNN_SA_ED.nii.gz`` ...).
        subjects: keep only these subject ids (``patient061``, ``SCD0000101``, ``mnms2_001``); all when None.

    Raises:
        DataError: for a missing path, a pack without masks or a folder in the wrong layout (naming the file).
    """
    keep = (lambda s: True) if subjects is None else (lambda s: s in subjects)
    cines = {h.subject: h for d in cine_dirs for f in _cine_folders(Path(d)) if keep(f.name) for h in [_acdc_cine(f)]}
    hearts: dict[str, RealHeart] = {}
    for pack in acdc_packs:
        for s in read_acdc_pack(pack):
            if not keep(s.subject):
                continue
            cine = cines.get(s.subject)
            spacing = cine.spacing_mm if cine else ACDC_ASSUMED_SPACING_MM
            hearts[s.subject] = RealHeart(s.subject, "acdc_edes", s.image_ed.astype(np.float32),
                                          s.image_es.astype(np.float32), s.label_ed, s.label_es, spacing, s.group,
                                          spacing_assumed=cine is None)  # fmt: skip
    for heart in [*cines.values(), *(h for d in mnms2 for h in _mnms2(Path(d))),
                  *(h for d in sunnybrook for h in _sunnybrook(Path(d)))]:  # fmt: skip
        if keep(heart.subject):
            hearts.setdefault(heart.subject, heart)
    logger.info("loaded %d real hearts", len(hearts))
    return [hearts[k] for k in sorted(hearts)]
