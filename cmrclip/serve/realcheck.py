"""A study model on real hearts: the real studies in one store, then LVEF, group, OOD score and embedding per study.

Used by ``benchmarks/real_hearts.py`` and by the demo's "real hearts" panel. ACDC ED/ES volumes become a SAX cine
through :func:`cmrclip.ingest.edes.edes_view`; ACDC cine folders, M&Ms-2 folders and Sunnybrook archives are ingested
as ``cmrclip ingest`` would. The store uses the pixel spacing and crop of the model's training store.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cmrclip.errors import CmrclipError
from cmrclip.ingest.deid import hash_key
from cmrclip.ingest.edes import edes_view
from cmrclip.ingest.pipeline import IngestConfig, ingest
from cmrclip.ingest.realsets import RealSubject
from cmrclip.ingest.store import StudyRecord, StudyStore
from cmrclip.serve.predict import load_model
from cmrclip.synth.hearts import GROUP_CONDITIONS

__all__ = ["group_from_conditions", "real_store", "score_real"]

logger = logging.getLogger(__name__)


def _write_edes(store: StudyStore, subject: RealSubject, volumes: tuple[np.ndarray, ...], cfg: IngestConfig) -> str:
    key = hash_key(f"acdc_edes/{subject.subject}", cfg.salt)
    view = edes_view(*volumes, out_spacing_mm=cfg.spacing_mm, crop_size=cfg.crop_size)
    store.write_study(StudyRecord(key, key, "acdc", {"SAX": view}))
    return key


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
    store, entries = StudyStore.create(root), {}
    for s in {(s.dataset, s.subject): s for s in subjects}.values():
        try:
            if s.dataset == "acdc_edes":
                key = _write_edes(store, s, (volumes or {})[s.subject], cfg)
            else:
                before = set(store.keys())
                ingest([s.path], root, cfg)
                key = next(iter(set(store.keys()) - before), None)
        except (CmrclipError, KeyError) as exc:
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
