"""The one patient-level split of a store, written once into its manifest, and the leakage check of every job.

Every job (pretraining, fine-tuning, zero-shot, embed, evaluation) reads the ``split`` column of the store's
manifest. ``cmrclip split`` writes it; a job that finds a store without one draws it once (seeded, by patient),
writes it and logs that it did, so the next job reads the same split. Models record the patients they were trained
on (:attr:`cmrclip.models.convert.CheckpointInfo.train_patients`), and every job that scores test studies first
checks with :func:`check_no_test_leak` that none of the test patients trained anything upstream.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pandas as pd

from cmrclip.data.splits import SPLITS, assign_splits, check_patient_disjoint, patient_order
from cmrclip.errors import ConfigError, DataError, LeakageError
from cmrclip.ingest.store import StudyStore

__all__ = ["check_no_test_leak", "ensure_split", "split_patients", "write_split"]

logger = logging.getLogger(__name__)


def _validated(manifest: pd.DataFrame, where: str) -> pd.DataFrame:
    bad = sorted(set(manifest["split"].dropna()) - set(SPLITS))
    if bad:
        raise DataError(f"{where}: manifest column 'split' holds {bad}; allowed values are {list(SPLITS)}")
    check_patient_disjoint(manifest)
    return manifest


def _complete(manifest: pd.DataFrame, val: float, test: float, seed: int) -> pd.Series:
    """Splits for the rows without one: a known patient's split, else a seeded draw among the new patients."""
    known = manifest.dropna(subset=["split"]).groupby("patient_key")["split"].first()
    missing = manifest[manifest["split"].isna()]
    out = missing["patient_key"].map(known)
    new = missing[out.isna()]
    if len(new):
        order = patient_order(new["patient_key"].tolist(), seed, purpose="split-new")
        n_test, n_val = round(len(order) * test), round(len(order) * val)
        which = dict.fromkeys(order[:n_test], "test") | dict.fromkeys(order[n_test : n_test + n_val], "val")
        out.loc[new.index] = new["patient_key"].map(lambda p: which.get(p, "train"))
    return out


def ensure_split(store: StudyStore, val: float = 0.15, test: float = 0.15, seed: int = 0) -> pd.DataFrame:
    """The store's manifest with its ``split`` column, drawing and writing the split once if it is missing.

    A fully split store is read as is (``val``/``test``/``seed`` are then ignored). Studies without a split get
    their patient's split, or, for new patients, a seeded draw at the given shares; what was written is logged.

    Args:
        store: the study store.
        val: share of patients in the validation split (only when drawing).
        test: share of patients in the test split (only when drawing).
        seed: seed of the patient shuffle (only when drawing).

    Raises:
        DataError: if the stored split mixes a patient's studies or holds unknown names.
    """
    manifest = store.manifest()
    if manifest.empty:
        return manifest.assign(split=pd.Series(dtype=object))
    if "split" not in manifest.columns:
        manifest["split"] = None
    have = manifest["split"].notna()
    if have.all():
        return _validated(manifest, str(store.root))
    if have.any():
        _validated(manifest, str(store.root))
        assigned = _complete(manifest, val, test, seed)
    else:
        assigned = assign_splits(manifest, val, test, seed=seed, keep_existing=False)
    manifest.loc[assigned.index, "split"] = assigned
    store.set_split(dict(zip(manifest.loc[assigned.index, "study_key"], assigned, strict=True)))
    counts = assigned.value_counts().to_dict()
    logger.warning(
        "store %s had no split for %d studies: wrote %s (patient-level, val %.2f, test %.2f, seed %d) to its "
        "manifest once; every later job reads this split (`cmrclip split` sets it explicitly)",
        store.root, len(assigned), counts, val, test, seed,
    )  # fmt: skip
    return manifest


def write_split(
    store: StudyStore, val: float = 0.15, test: float = 0.15, seed: int = 0, force: bool = False
) -> pd.DataFrame:
    """Draw the store's patient-level split and write it (``cmrclip split``); return the manifest.

    Raises:
        ConfigError: if the store already has a split and ``force`` is False (models trained on the old split
            would then score their own training patients).
    """
    manifest = store.manifest()
    if not force and "split" in manifest.columns and manifest["split"].notna().any():
        raise ConfigError(
            f"the store {store.root} already has a split; models trained on it would leak into a new one. "
            "Pass --force to redraw it (and retrain everything), or keep it"
        )
    if "split" in manifest.columns:
        store.set_split(dict.fromkeys(manifest["study_key"]))
    return ensure_split(store, val, test, seed)


def split_patients(manifest: pd.DataFrame, *splits: str) -> list[str]:
    """Sorted patient keys of the studies in ``splits`` (e.g. ``"train"``)."""
    return sorted(set(manifest.loc[manifest["split"].isin(splits), "patient_key"].astype(str)))


def check_no_test_leak(upstream: Iterable[str] | None, manifest: pd.DataFrame, what: str) -> None:
    """Raise if a test patient of ``manifest`` is among the patients that trained an upstream model.

    Args:
        upstream: patient keys the upstream model was trained on (``None``: not recorded, e.g. a foreign
            checkpoint; logged and not checked).
        manifest: the store's manifest with its ``split`` column.
        what: the upstream model, named in the message (e.g. ``"the encoder runs/pretrain/encoder.pt"``).

    Raises:
        LeakageError: naming the overlapping patients.
    """
    if upstream is None:
        logger.warning("%s does not record its training patients; test leakage cannot be checked", what)
        return
    leak = sorted(set(upstream) & set(split_patients(manifest, "test")))
    if leak:
        raise LeakageError(
            f"{len(leak)} test patient(s) of this store were used to train {what}: {', '.join(leak[:20])}"
            f"{' ...' if len(leak) > 20 else ''}. Test results would be contaminated; train the upstream model on "
            "this store's split (its train studies only) or evaluate on a store whose test patients it never saw"
        )
