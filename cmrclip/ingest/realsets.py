"""Real evaluation sets in the shared layouts, with their truth: ACDC cine folders, Sunnybrook archives, M&Ms-2.

Each reader returns :class:`RealSubject` records (dataset, subject id as in the source, where its images are, group,
LVEF) and raises :class:`~cmrclip.errors.DataError` naming the file for a missing path, a wrong layout or a truth
table that lacks a subject. ACDC ED/ES packs are read by :func:`cmrclip.synth.sources.read_acdc_pack`.

Truth, unless a labels CSV (``subject,group,lvef``; Sunnybrook ``subject,lvef``) gives it:

- ACDC cines: ``Info.cfg``'s ``Group``; LVEF from ``cines.csv`` beside the patient folders (``LVEF_pct``: the whole
  heart's, from the full-stack masks), else from the ED/ES masks of the cine slices.
- Sunnybrook: ``labels_derived/summary.json`` of the shared layout (``../labels_derived`` from the archives).
- M&Ms-2: LVEF from the SAX ED/ES masks (label 1 = LV cavity).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from cmrclip.errors import DataError
from cmrclip.synth.sources import read_labels_csv

__all__ = ["RealSubject", "acdc_cine_subjects", "mnms2_subjects", "read_truth", "sunnybrook_subjects"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RealSubject:
    """One real study to score, with its truth (None where unknown).

    ``dataset`` is ``acdc_cine``, ``acdc_edes``, ``sunnybrook`` or ``mnms2``; ``subject`` is named as in the source
    (``patient061``, ``SCD0000101``, ``mnms2_001``); ``path`` is where its images are.
    """

    dataset: str
    subject: str
    path: Path
    group: str | None
    lvef: float | None


def _number(value: str | None, where: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise DataError(f"{where}: {value!r} is not a number") from exc


def read_truth(path: Path | str, subjects: Sequence[str], columns: Sequence[str] = ("group", "lvef")) -> dict:
    """``{subject: {column: value}}`` from a truth CSV (``subject`` + ``columns``) holding every one of ``subjects``.

    Raises:
        DataError: if the file is missing, lacks a column, or lacks a subject (naming the file and the subjects).
    """
    path = Path(path)
    rows = read_labels_csv(path)
    first = next(iter(rows.values()), {})
    missing_cols = [c for c in columns if c not in first]
    if missing_cols:
        raise DataError(f"{path}: missing column(s) {missing_cols}; expected subject,{','.join(columns)}")
    absent = sorted(set(subjects) - set(rows))
    if absent:
        raise DataError(f"{path}: no truth for subject(s) {absent[:8]}; add a row per test subject")
    out = {}
    for s in subjects:
        row = rows[s]
        out[s] = {c: _number(row[c], f"{path} ({s}, {c})") if c == "lvef" else (row[c] or None) for c in columns}
    return out


def _info(folder: Path) -> dict[str, str]:
    text = (folder / "Info.cfg").read_text(encoding="utf-8", errors="replace")
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)}


def _patient_folders(path: Path) -> list[Path]:
    if not path.is_dir():
        raise DataError(f"{path}: cine folder not found; give a folder in ACDC's layout (patientXXX/Info.cfg ...)")
    inside = sorted(p for p in path.iterdir() if (p / "Info.cfg").is_file())
    found = [path] if (path / "Info.cfg").is_file() else inside
    if not found:
        raise DataError(f"{path}: no patientXXX/Info.cfg inside; expected ACDC's cine layout")
    for folder in found:
        if not (folder / f"{folder.name}_4d.nii.gz").is_file():
            raise DataError(f"{folder / (folder.name + '_4d.nii.gz')}: cine not found (ACDC's layout)")
    return found


def _lvef_from_masks(ed: Path, es: Path, cavity: int) -> float:
    for p in (ed, es):
        if not p.is_file():
            raise DataError(f"{p}: mask not found; give the LVEF in a labels CSV instead")
    edv, esv = (float((np.asarray(nib.load(p).dataobj) == cavity).sum()) for p in (ed, es))
    if edv <= 0:
        raise DataError(f"{ed}: no LV cavity (label {cavity}) in the ED mask")
    return 100.0 * (edv - esv) / edv


def _cine_lvef(folder: Path, info: dict[str, str], table: dict) -> float:
    row = table.get(folder.name)
    if row and row.get("LVEF_pct"):
        return float(row["LVEF_pct"])
    ed, es = (folder / f"{folder.name}_frame{int(info[k]):02d}_gt.nii.gz" for k in ("ED", "ES"))
    return _lvef_from_masks(ed, es, cavity=3)


def acdc_cine_subjects(path: Path | str, labels_csv: Path | str | None = None) -> list[RealSubject]:
    """The patients of an ACDC-layout cine folder (one ``patientXXX`` folder, or a folder of them).

    Args:
        path: the folder.
        labels_csv: truth (``subject,group,lvef``) for a test folder whose ``Info.cfg`` lacks ``Group``.

    Raises:
        DataError: for a missing folder, a wrong layout, or a subject without truth.
    """
    folders = _patient_folders(Path(path))
    names = [f.name for f in folders]
    truth = read_truth(labels_csv, names) if labels_csv is not None else None
    beside = folders[0].parent / "cines.csv"
    table = read_labels_csv(beside) if truth is None and beside.is_file() else {}
    out = []
    for folder in folders:
        info = _info(folder)
        if truth is not None:
            group, lvef = truth[folder.name]["group"], truth[folder.name]["lvef"]
        else:
            if "ED" not in info or "ES" not in info:
                raise DataError(f"{folder / 'Info.cfg'}: no ED/ES frames and no --cine-test-labels CSV for the truth")
            group, lvef = info.get("Group") or None, _cine_lvef(folder, info, table)
        out.append(RealSubject("acdc_cine", folder.name, folder, group, lvef))
    return out


def sunnybrook_subjects(tars: Sequence[Path | str], lvef_csv: Path | str | None = None) -> list[RealSubject]:
    """Sunnybrook archives (``SCDxxxxxxx.tar.xz``) with their LVEF (CSV ``subject,lvef`` or the shared summary).

    Raises:
        DataError: for a missing archive or a subject without LVEF.
    """
    paths = [Path(t) for t in tars]
    for p in paths:
        if not p.is_file():
            raise DataError(f"{p}: Sunnybrook archive not found")
    names = [p.name.split(".")[0] for p in paths]
    if lvef_csv is not None:
        truth = {s: v["lvef"] for s, v in read_truth(lvef_csv, names, ("lvef",)).items()}
    else:
        summary = paths[0].parent.parent / "labels_derived" / "summary.json" if paths else Path()
        if not summary.is_file():
            raise DataError(f"no --sunnybrook-lvef CSV and no {summary}; give the LVEF as subject,lvef")
        cases = json.loads(summary.read_text(encoding="utf-8"))
        truth = {c["patient_id"]: float(c["LVEF_pct_polygons"]) for c in cases}
        if absent := sorted(set(names) - set(truth)):
            raise DataError(f"{summary}: no LVEF for {absent}; pass --sunnybrook-lvef")
    return [RealSubject("sunnybrook", n, p, None, truth[n]) for n, p in zip(names, paths, strict=True)]


def mnms2_subjects(folders: Sequence[Path | str]) -> list[RealSubject]:
    """M&Ms-2 subject folders (``NNN_SA_ED.nii.gz``, ``NNN_SA_ES(_gt).nii.gz`` ...); LVEF from the SAX masks.

    Raises:
        DataError: for a missing folder or masks.
    """
    out = []
    for folder in map(Path, folders):
        eds = sorted(folder.glob("*_SA_ED_gt.nii.gz")) if folder.is_dir() else []
        if not eds:
            raise DataError(f"{folder}: no NNN_SA_ED_gt.nii.gz inside; expected the M&Ms-2 layout")
        for ed in eds:
            number = ed.name.split("_")[0]
            lvef = _lvef_from_masks(ed, folder / f"{number}_SA_ES_gt.nii.gz", cavity=1)
            out.append(RealSubject("mnms2", f"mnms2_{number}", folder, None, lvef))
    return out
