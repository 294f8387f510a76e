"""A study model on real hearts: the real studies in one store, then LVEF, group, OOD score and embedding per study.

Used by ``benchmarks/real_hearts.py`` and by the demo's "real hearts" panel. ACDC ED/ES volumes become a SAX cine
through :func:`cmrclip.ingest.edes.edes_view`; ACDC cine folders, M&Ms-2 folders and Sunnybrook archives are ingested
as ``cmrclip ingest`` would. The store uses the pixel spacing and crop of the model's training store.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cmrclip.errors import CmrclipError
from cmrclip.evaluate.realhearts import plot_real_lvef, score_table
from cmrclip.evaluate.report import ReportSection
from cmrclip.ingest.deid import hash_key
from cmrclip.ingest.edes import edes_view
from cmrclip.ingest.pipeline import IngestConfig, ingest
from cmrclip.ingest.realsets import RealSubject, acdc_cine_subjects, mnms2_subjects, sunnybrook_subjects
from cmrclip.ingest.store import StudyRecord, StudyStore
from cmrclip.segment import Segmenter, segment_study
from cmrclip.segment.volumes import Volumes
from cmrclip.serve.inputs import open_source
from cmrclip.serve.predict import load_model
from cmrclip.synth.hearts import GROUP_CONDITIONS

__all__ = [
    "group_from_conditions",
    "real_hearts_section",
    "real_store",
    "score_real",
    "score_volumes",
    "volume_features",
]

logger = logging.getLogger(__name__)


def _edes_view(job: tuple[np.ndarray, np.ndarray, float, int]) -> Any:
    image_ed, image_es, spacing_mm, crop = job
    return edes_view(image_ed, image_es, out_spacing_mm=spacing_mm, crop_size=crop)


def _write_edes(
    store: StudyStore, subjects: list[RealSubject], volumes: Mapping[str, tuple[np.ndarray, ...]], cfg: IngestConfig
) -> dict[tuple[str, str], str]:
    """ACDC ED/ES volumes as interpolated cines (the registrations in ``cfg.workers`` processes)."""
    jobs = [(*volumes[s.subject], cfg.spacing_mm, cfg.crop_size) for s in subjects]
    workers = min(cfg.workers or os.cpu_count() or 1, len(jobs))
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            views = list(pool.map(_edes_view, jobs))
    else:
        views = [_edes_view(job) for job in jobs]
    out = {}
    for s, view in zip(subjects, views, strict=True):
        key = hash_key(f"acdc_edes/{s.subject}", cfg.salt.get_secret_value())
        store.write_study(StudyRecord(key, key, "acdc", {"SAX": view}))
        out[(s.dataset, s.subject)] = f"{store.root}#{key}"
    return out


def real_store(
    subjects: Sequence[RealSubject],
    root: Path,
    cfg: IngestConfig,
    volumes: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[tuple[str, str], str]:
    """Write the real studies into a new store at ``root`` (replaced); ``(dataset, subject) -> "ROOT#key"``.

    Args:
        subjects: the studies (``acdc_edes`` ones need their ``(ED, ES)`` volumes in ``volumes``).
        root: the store folder (deleted first: new keys are found as the difference before/after each ingest).
        cfg: ingest options (salt, spacing and crop as the model's training store).
        volumes: ACDC ED/ES volumes ``[z, y, x]`` by subject.

    A study that cannot be read is logged and left out.
    """
    shutil.rmtree(root, ignore_errors=True)
    store = StudyStore.create(root)
    unique = list({(s.dataset, s.subject): s for s in subjects}.values())
    entries = _write_edes(store, [s for s in unique if s.dataset == "acdc_edes"], volumes or {}, cfg)
    for s in unique:
        if s.dataset == "acdc_edes":
            continue
        try:
            before = set(store.keys())
            ingest([s.path], root, cfg)
            key = next(iter(set(store.keys()) - before), None)
        except CmrclipError as exc:
            key = None
            logger.warning("%s %s could not be read: %s", s.dataset, s.subject, exc)
        if key is None:
            logger.warning("%s %s gave no study; left out", s.dataset, s.subject)
            continue
        entries[(s.dataset, s.subject)] = f"{root}#{key}"
    return entries


def group_from_conditions(probs: Mapping[str, float]) -> str:
    """The ACDC group whose taxonomy keys are the most probable on average (``NOR``: the ``normal`` output)."""
    score = {g: float(np.mean([probs.get(k, 0.0) for k in keys])) for g, keys in GROUP_CONDITIONS.items() if keys}
    score["NOR"] = probs.get("normal", 0.0)
    return max((g for g in score if g != "HF-I"), key=lambda g: score[g])


def score_real(bundle: Path, entries: Mapping[tuple[str, str], str], salt: str) -> pd.DataFrame:
    """The bundle's predictions on the real studies of ``entries`` (from :func:`real_store`).

    Columns: ``dataset``, ``subject``, ``lvef_pred``, ``group_pred`` (:func:`group_from_conditions`), ``ood`` (the
    guard's score) and ``embedding`` (the study embedding).
    """
    model, rows = load_model(bundle, salt=salt), []
    for (dataset, subject), entry in entries.items():
        pred = model.predict(entry)
        probs = {c.key: c.probability for c in pred.conditions}
        rows.append({"dataset": dataset, "subject": subject, "lvef_pred": pred.lvef.value if pred.lvef else np.nan,
                     "group_pred": group_from_conditions(probs), "ood": pred.ood_distance,
                     "embedding": model.embed(entry)})  # fmt: skip
    return pd.DataFrame(rows)


def _log_ratio(a: float | None, b: float | None = 1.0) -> float:
    return float(np.log(a / b)) if a and b else 0.0


def volume_features(volumes: Volumes) -> np.ndarray:
    """A study's volumes as one feature row (0 where a value is missing).

    LVEF and RVEF as fractions; the logs of LV EDV, ESV, mass, RV EDV and ESV; the logs of RV/LV EDV and mass/EDV.
    """
    v = volumes
    ratios = [(v.edv_ml, 1.0), (v.esv_ml, 1.0), (v.lv_mass_g, 1.0), (v.rvedv_ml, 1.0), (v.rvesv_ml, 1.0),
              (v.rvedv_ml, v.edv_ml), (v.lv_mass_g, v.edv_ml)]  # fmt: skip
    return np.array([(v.lvef or 0.0) / 100, (v.rvef or 0.0) / 100] + [_log_ratio(x, y) for x, y in ratios])


def score_volumes(segmenter: Segmenter, entries: Mapping[tuple[str, str], str]) -> pd.DataFrame:
    """Volumetric LVEF of the real studies of ``entries`` (from :func:`real_store`) by a segmenter.

    Columns as :func:`score_real`: ``group_pred`` is empty (volumes give no group by themselves), ``ood`` NaN and
    ``embedding`` the study's :func:`volume_features`. A study without a SAX view gets NaN LVEF and zero features.
    """
    rows = []
    for (dataset, subject), entry in entries.items():
        with open_source(entry) as study:
            if "SAX" in study.views:
                v = segment_study(segmenter, study).volumes
            else:
                logger.warning("%s %s has no SAX view (%s): no volumes", dataset, subject, sorted(study.views))
                v = Volumes()
        rows.append({"dataset": dataset, "subject": subject, "lvef_pred": np.nan if v.lvef is None else v.lvef,
                     "group_pred": "", "ood": np.nan, "embedding": volume_features(v)})  # fmt: skip
    return pd.DataFrame(rows)


def _shared_subjects(root: Path) -> list[RealSubject]:
    """The real cines (and M&Ms-2) of a folder in the layout of ``../shared/data`` that are present."""
    out: list[RealSubject] = []
    if (root / "acdc_cine").is_dir():
        out += acdc_cine_subjects(root / "acdc_cine")
    tars = sorted((root / "sunnybrook" / "dicom_tar_xz").glob("*.tar.xz"))
    if tars:
        out += sunnybrook_subjects(tars)
    mnms = sorted(p for p in root.glob("mnms2_*") if p.is_dir())
    return out + (mnms2_subjects(mnms) if mnms else [])


def real_hearts_section(
    bundle: Path, sources: Path | None, out_dir: Path, cfg: IngestConfig, trained_on: set[str] = frozenset()
) -> ReportSection:
    """A report section: the bundle's LVEF on the real studies of ``sources`` against their truth (plot + table).

    Args:
        bundle: the study model.
        sources: folder in the layout of ``../shared/data`` (None or missing: the section says so).
        out_dir: where the real store and the figure go.
        cfg: ingest options matching the model's training store (salt, spacing, crop).
        trained_on: subjects whose hearts built training studies (shown hollow, left out of the metrics).
    """
    title = "Real hearts: predicted vs true LVEF on real studies"
    subjects = _shared_subjects(Path(sources)) if sources is not None and Path(sources).is_dir() else []
    if not subjects:
        where = sources or "../shared/data"
        text = f"Not shown: no real data found at {where} (set CMRCLIP_SHARED_DATA to a folder in its layout: "
        return ReportSection(title, text=text + "acdc_cine/, sunnybrook/, mnms2_*/).")
    entries = real_store(subjects, out_dir / "real_store", cfg)
    truth = {(s.dataset, s.subject): s.lvef for s in subjects}
    table = score_real(bundle, entries, cfg.salt.get_secret_value()).drop(columns=["embedding", "group_pred"])
    table["lvef_true"] = [truth[k] for k in zip(table["dataset"], table["subject"], strict=True)]
    table["role"] = ["train" if s in trained_on else "test" for s in table["subject"]]
    test = table[table["role"] == "test"].assign(encoder="model", setting="zero_label", group_true="", group_pred="")
    cells = score_table(test)["zero_label"]["model"] if len(test) else {}
    plot = plot_real_lvef(table, out_dir / "real_hearts.png", "evaluation subjects: filled; training hearts: hollow")
    used = ", ".join(sorted(trained_on)) or "none (the model saw synthetic studies only)"
    text = (f"{len(table)} real studies from {sources}; hearts used to build training studies: {used}. Metrics over "
            "the evaluation subjects only. ood: the model's out-of-distribution score (> 1 warns).")  # fmt: skip
    metrics = [{"dataset": d} | {k: round(v, 3) for k, v in c.items()} for d, c in cells.items()]
    return ReportSection(title, text=text, table=pd.DataFrame(metrics), images=[plot])
