"""Patient-level splits and nested label fractions.

Studies of one patient always land in the same split (no leakage through repeat scans), and the labelled subsets
used by the data-efficiency experiment are drawn per patient and nest: with one seed, the 1 % subset is contained in
the 5 % subset, which is contained in the 10 % subset, and so on.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cmrclip.errors import DataError

__all__ = [
    "DEFAULT_FRACTIONS",
    "SPLITS",
    "assign_splits",
    "check_patient_disjoint",
    "label_fraction",
    "label_fractions",
    "patient_order",
]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.01, 0.05, 0.10, 0.25, 0.50, 1.0)


def _require_columns(manifest: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    missing = [c for c in columns if c not in manifest.columns]
    if missing:
        raise DataError(f"{where}: the manifest lacks column(s) {missing}; pass the store's `studies` table")


def _seed_for(seed: int, purpose: str) -> int:
    """Derive a stable 64-bit seed from ``seed`` and a purpose string (so split and fraction draws differ)."""
    digest = hashlib.sha256(f"{purpose}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def patient_order(patient_keys: Sequence[str], seed: int, purpose: str = "fraction") -> list[str]:
    """Return the unique patient keys in a random order fixed by ``seed`` (independent of the input order)."""
    unique = sorted({str(p) for p in patient_keys})
    rng = np.random.default_rng(_seed_for(seed, purpose))
    return [unique[i] for i in rng.permutation(len(unique))]


def check_patient_disjoint(manifest: pd.DataFrame, split_column: str = "split") -> None:
    """Raise :class:`DataError` if any patient has studies in more than one split.

    Args:
        manifest: table with ``patient_key``, ``study_key`` and ``split_column``.
        split_column: the column holding ``train``/``val``/``test`` (NULL rows are ignored).
    """
    _require_columns(manifest, ["patient_key", "study_key", split_column], "check_patient_disjoint")
    rows = manifest.dropna(subset=[split_column])
    per_patient = rows.groupby("patient_key")[split_column].nunique()
    leaking = per_patient[per_patient > 1].index.tolist()
    if leaking:
        raise DataError(
            f"patient(s) {leaking[:5]} have studies in more than one split (column {split_column!r}); "
            "splits must be by patient: clear the column or re-run assign_splits"
        )


def _counts(n: int, val: float, test: float) -> tuple[int, int]:
    """Patients for val and test: rounded shares, at least one each when there are 3+ patients and a share > 0."""
    n_val = round(n * val)
    n_test = round(n * test)
    if n >= 3:
        n_val = max(n_val, 1 if val > 0 else 0)
        n_test = max(n_test, 1 if test > 0 else 0)
    if n_val + n_test >= n:
        raise DataError(f"{n} patient(s) are too few for val={val} and test={test} shares; add studies")
    return n_val, n_test


def assign_splits(
    manifest: pd.DataFrame,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    keep_existing: bool = True,
) -> pd.Series:
    """Assign every study to ``train``/``val``/``test`` by patient.

    Args:
        manifest: the store's ``studies`` table (needs ``study_key`` and ``patient_key``; ``split`` is optional).
        val: share of patients in the validation split.
        test: share of patients in the test split.
        seed: seed of the patient shuffle.
        keep_existing: if the manifest's ``split`` column is fully filled, keep it (after checking that it is by
            patient) instead of drawing a new one.

    Returns:
        A Series of split names indexed like ``manifest``.

    Raises:
        DataError: if columns are missing, the shares are invalid, or an existing split mixes a patient's studies.
    """
    _require_columns(manifest, ["study_key", "patient_key"], "assign_splits")
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DataError(f"assign_splits: val={val} and test={test} must be shares in [0, 1) summing below 1")
    if keep_existing and "split" in manifest.columns and manifest["split"].notna().all():
        bad = sorted(set(manifest["split"]) - set(SPLITS))
        if bad:
            raise DataError(f"manifest column 'split' holds {bad}; allowed values are {list(SPLITS)}")
        check_patient_disjoint(manifest)
        logger.info("keeping the manifest's existing patient-level split")
        return manifest["split"].astype(str)
    order = patient_order(manifest["patient_key"].tolist(), seed, purpose="split")
    n_val, n_test = _counts(len(order), val, test)
    which = dict.fromkeys(order[:n_test], "test")
    which.update(dict.fromkeys(order[n_test : n_test + n_val], "val"))
    split = manifest["patient_key"].astype(str).map(lambda p: which.get(p, "train"))
    logger.info("split %d patients: %d test, %d val, %d train", len(order), n_test, n_val, len(order) - n_val - n_test)
    return split.rename("split")


def label_fraction(manifest: pd.DataFrame, fraction: float, seed: int = 0) -> pd.Series:
    """Choose the studies whose labels are kept at a labelled ``fraction`` of patients.

    The first ``ceil(fraction * n_patients)`` patients of a seeded patient order are kept (at least one), so for one
    seed the subsets nest: every study kept at 1 % is kept at 5 %.

    Args:
        manifest: the training rows (needs ``patient_key``).
        fraction: share of patients to keep, in (0, 1].
        seed: seed of the patient order (use the experiment's seed, not the split's).

    Returns:
        A boolean Series indexed like ``manifest``: True where the study's labels are kept.

    Raises:
        DataError: if the fraction is outside (0, 1] or the column is missing.
    """
    _require_columns(manifest, ["patient_key"], "label_fraction")
    if not 0 < fraction <= 1:
        raise DataError(f"label fraction {fraction} must be in (0, 1]; e.g. 0.01 for 1 %")
    order = patient_order(manifest["patient_key"].tolist(), seed)
    n_keep = max(1, math.ceil(fraction * len(order) - 1e-9)) if order else 0
    keep = set(order[:n_keep])
    return manifest["patient_key"].astype(str).isin(keep).rename(f"frac_{fraction:g}")


def label_fractions(
    manifest: pd.DataFrame, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0
) -> dict[float, pd.Series]:
    """Return :func:`label_fraction` for each fraction (nested for one seed)."""
    return {float(f): label_fraction(manifest, f, seed) for f in fractions}
