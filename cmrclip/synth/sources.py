"""Readers of the real ED/ES sources: ACDC packs (``GROUP/patientXXX.npz`` in a ``.tar.xz``) and their labels.

An ACDC pack holds, per patient, ``image_ed``/``image_es`` (axes z, y, x) and ``label_ed``/``label_es`` (0
background, 1 RV cavity, 2 LV myocardium, 3 LV cavity: :data:`ACDC_LABELS`), under a folder named after the
diagnostic group (``DCM``, ``HCM``, ``MINF``, ``NOR``, ``RV``; ``UNKNOWN`` for a test pack). ``labels.csv`` beside
the pack (columns ``patient``, ``group``, ``LVEF_pct``, ...) gives the group and LVEF when present.

ACDC packs keep **no voxel spacing**. Readers return the arrays only; whoever needs millimetres assumes ACDC's
typical 1.5 mm in-plane and 10 mm between slices (:data:`ACDC_ASSUMED_SPACING_MM`), unless a cine of the same
patient gives the spacing. LVEF is a ratio of volumes and does not depend on the spacing.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmrclip.errors import DataError

__all__ = ["ACDC_ASSUMED_SPACING_MM", "ACDC_GROUPS", "ACDC_LABELS", "AcdcSubject", "read_acdc_pack", "read_labels_csv"]

logger = logging.getLogger(__name__)

ACDC_LABELS = {"RV": 1, "MYO": 2, "LV": 3}
"""Label values of ACDC masks (the convention every real heart in :mod:`cmrclip.synth` is converted to)."""
ACDC_GROUPS = ("DCM", "HCM", "MINF", "NOR", "RV")
ACDC_ASSUMED_SPACING_MM = (10.0, 1.5, 1.5)
"""(slice, row, column) spacing assumed for ACDC pack volumes, which carry none."""

_MEMBER = re.compile(r"^(?:.*/)?(?P<group>[A-Za-z]+)/(?P<subject>patient\d+)\.npz$")


@dataclass(frozen=True)
class AcdcSubject:
    """One patient of an ACDC pack: ED and ES volumes ``[z, y, x]`` and their masks (ACDC label values).

    ``group`` is None for ``UNKNOWN/`` members without a group in ``labels.csv``; ``lvef``/``rvef`` are None where
    ``labels.csv`` has none; ``label_ed``/``label_es`` are None when the pack has no masks (``require_masks=False``).
    """

    subject: str
    group: str | None
    image_ed: np.ndarray
    image_es: np.ndarray
    label_ed: np.ndarray | None
    label_es: np.ndarray | None
    lvef: float | None
    rvef: float | None
    source: str


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def read_labels_csv(path: Path) -> dict[str, dict[str, str]]:
    """Rows of a per-patient CSV keyed by its ``patient`` (or ``subject``) column.

    Raises:
        DataError: if the file is missing or has neither column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: labels file not found; pass an existing CSV")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    key = next((k for k in ("patient", "subject") if rows and k in rows[0]), None)
    if key is None:
        raise DataError(f"{path}: expected a 'patient' or 'subject' column; got {list(rows[0]) if rows else []}")
    return {row[key]: row for row in rows}


def _open_pack(path: Path) -> tarfile.TarFile:
    if not path.is_file():
        raise DataError(f"{path}: ACDC pack not found; give the path of a .tar.xz of GROUP/patientXXX.npz files")
    try:
        return tarfile.open(path)
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"{path}: not a readable tar archive ({exc}); expected GROUP/patientXXX.npz inside") from exc


def _load_member(tf: tarfile.TarFile, member: tarfile.TarInfo, path: Path, require_masks: bool) -> dict:
    fh = tf.extractfile(member)
    if fh is None:
        raise DataError(f"{path}!{member.name}: not a regular file")
    try:
        with np.load(io.BytesIO(fh.read())) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}!{member.name}: not a readable .npz ({exc})") from exc
    need = ["image_ed", "image_es"] + (["label_ed", "label_es"] if require_masks else [])
    missing = [k for k in need if k not in arrays]
    if missing:
        what = "has no masks" if "image_ed" in arrays else "is not an ACDC ED/ES volume"
        raise DataError(f"{path}!{member.name} {what}: missing {missing}; keys are {sorted(arrays)}")
    if arrays["image_ed"].shape != arrays["image_es"].shape or arrays["image_ed"].ndim != 3:
        raise DataError(f"{path}!{member.name}: image_ed/image_es must be two [z, y, x] volumes of one shape")
    return arrays


def read_acdc_pack(
    path_tar_xz: Path | str, labels_csv: Path | str | None = None, *, require_masks: bool = True
) -> list[AcdcSubject]:
    """Read every patient of an ACDC ED/ES pack, sorted by subject id.

    Args:
        path_tar_xz: the pack (``GROUP/patientXXX.npz`` members; ``UNKNOWN/`` for an unlabelled test pack).
        labels_csv: per-patient table (``patient``, ``group``, ``LVEF_pct``, ``RVEF_pct``); default:
            ``labels.csv`` beside the pack when it exists. Its group wins over the folder name.
        require_masks: raise when a member has no ``label_ed``/``label_es`` (else they are None).

    Raises:
        DataError: for a missing or unreadable file, a pack without ``GROUP/patientXXX.npz`` members, or a member
            without masks (naming the file).
    """
    path = Path(path_tar_xz)
    table_path = Path(labels_csv) if labels_csv is not None else path.with_name("labels.csv")
    table = read_labels_csv(table_path) if labels_csv is not None or table_path.is_file() else {}
    out = []
    with _open_pack(path) as tf:
        members = [(m, _MEMBER.match(m.name)) for m in tf.getmembers() if m.isfile()]
        members = [(m, match) for m, match in members if match]
        if not members:
            raise DataError(f"{path}: no GROUP/patientXXX.npz members; this is not an ACDC ED/ES pack")
        for member, match in sorted(members, key=lambda x: x[1]["subject"]):
            arrays = _load_member(tf, member, path, require_masks)
            subject = match["subject"]
            row = table.get(subject, {})
            group = row.get("group") or (match["group"] if match["group"] != "UNKNOWN" else None)
            out.append(AcdcSubject(
                subject, group or None, arrays["image_ed"], arrays["image_es"], arrays.get("label_ed"),
                arrays.get("label_es"), _float(row.get("LVEF_pct") or row.get("lvef")), _float(row.get("RVEF_pct")),
                str(path),
            ))  # fmt: skip
    logger.info("read %d subjects from %s", len(out), path)
    return out
