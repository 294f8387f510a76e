"""Read predictions into one table: cmrclip CSV/JSONL, generic CSV/JSON (id, score, label) and W&B table JSON.

Every reader returns :class:`Predictions`, whose ``table`` uses the cmrclip layout (docs/ARCHITECTURE.md §6): index
``study_key`` (str), optional ``lvef_pred``/``lvef``, and per binary target ``<key>_score`` and ``<key>`` (truth 0/1,
NaN = unknown). A folder holding one file per target (as the original system exported them) is read as one table.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cmrclip.errors import DataError, LabelError

__all__ = ["DuplicatePolicy", "Predictions", "align_predictions", "read_predictions", "read_wandb_table"]

logger = logging.getLogger(__name__)

DuplicatePolicy = Literal["error", "first", "keep"]
ID_COLUMNS = ("study_key", "id", "study_id", "filenames", "filename", "study")
SCORE_COLUMNS = ("score", "scores", "prob", "probs", "probability")
LABEL_COLUMNS = ("label", "labels", "target", "truth", "y")
PRED_COLUMNS = ("pred", "preds", "prediction", "lvef_pred")
SUFFIXES = (".table.json", ".jsonl", ".json", ".csv")


@dataclass
class Predictions:
    """A predictions table in the cmrclip layout, where it came from, and what was done to read it."""

    table: pd.DataFrame
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def targets(self) -> list[str]:
        """Binary targets that have both a ``<key>_score`` and a ``<key>`` truth column, in table order."""
        cols = set(self.table.columns)
        return [c[: -len("_score")] for c in self.table.columns if c.endswith("_score") and c[: -len("_score")] in cols]

    @property
    def has_lvef(self) -> bool:
        """True when the table has both ``lvef_pred`` and ``lvef``."""
        return {"lvef_pred", "lvef"} <= set(self.table.columns)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _numeric(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Convert the score, truth and LVEF columns to float (empty/None/NA = NaN); raise on anything else."""
    out = frame.copy()
    scored = {c[: -len("_score")] for c in out.columns if c.endswith("_score")}
    for col in out.columns:
        if not (col in scored or col.endswith("_score") or col in ("lvef", "lvef_pred")):
            continue
        values = out[col].replace({"": np.nan, "None": np.nan, "NA": np.nan})
        try:
            out[col] = pd.to_numeric(values, errors="raise").astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{source}: column {col!r} has non-numeric values ({exc}); fix or remove them") from exc
    return out


def read_wandb_table(path: Path) -> pd.DataFrame:
    """Read a W&B table export (``{"columns": [...], "data": [[...], ...]}``) as a DataFrame of strings, rows kept.

    Raises:
        DataError: if the file is missing, not JSON, or not a W&B table.
    """
    path = Path(path)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read W&B table {path}: {exc}") from exc
    if not isinstance(body, dict) or "columns" not in body or "data" not in body:
        raise DataError(f"{path} is not a W&B table export: expected keys 'columns' and 'data'")
    return pd.DataFrame(body["data"], columns=body["columns"])


def _read_frame(path: Path) -> pd.DataFrame:
    try:
        if path.name.endswith(".csv"):
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if path.name.endswith(".jsonl"):
            return pd.read_json(path, lines=True, dtype=False)
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read predictions {path}: {exc}") from exc
    if isinstance(body, dict) and "columns" in body and "data" in body:
        return read_wandb_table(path)
    if isinstance(body, list):
        return pd.DataFrame(body)
    raise DataError(f"{path}: JSON predictions must be a W&B table or a list of records")


def _pick(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[c] for c in candidates if c in lower), None)


def _to_cmrclip(frame: pd.DataFrame, target: str, source: str) -> pd.DataFrame:
    """Map a generic (id, score|pred, label) frame to the cmrclip layout; cmrclip-layout frames pass through."""
    cols = [str(c) for c in frame.columns]
    if "study_key" in cols and any(c.endswith("_score") or c == "lvef_pred" for c in cols):
        return frame
    id_col = _pick(cols, ID_COLUMNS)
    label_col = _pick(cols, LABEL_COLUMNS)
    score_col, pred_col = _pick(cols, SCORE_COLUMNS), _pick(cols, PRED_COLUMNS)
    if id_col is None or (score_col is None and pred_col is None):
        raise DataError(
            f"{source}: cannot find an id column ({'/'.join(ID_COLUMNS)}) and a score ({'/'.join(SCORE_COLUMNS)}) "
            f"or prediction ({'/'.join(PRED_COLUMNS)}) column among {cols}"
        )
    out = pd.DataFrame({"study_key": frame[id_col].astype(str)})
    if score_col is not None:
        out[f"{target}_score"] = frame[score_col].to_numpy()
        out[target] = frame[label_col].to_numpy() if label_col else np.nan
    else:
        out["lvef_pred"] = frame[pred_col].to_numpy()
        out["lvef"] = frame[label_col].to_numpy() if label_col else np.nan
    return out


def _dedupe(frame: pd.DataFrame, policy: DuplicatePolicy, source: str, notes: list[str]) -> pd.DataFrame:
    dup = frame["study_key"].duplicated()
    if not dup.any():
        return frame
    examples = frame.loc[dup, "study_key"].head(3).tolist()
    if policy == "error":
        raise DataError(
            f"{source}: {int(dup.sum())} duplicated study ids (e.g. {examples}); remove them, "
            "or set duplicates=first to keep each id's first row (or duplicates=keep to keep every row)"
        )
    if policy == "keep":  # every row counts, as in the original system's exported tables
        repeat = frame.groupby("study_key").cumcount()
        renamed = frame["study_key"].where(repeat == 0, frame["study_key"] + "#" + (repeat + 1).astype(str))
        notes.append(
            f"{source}: {int(dup.sum())} duplicated study ids kept as separate rows, renamed ID#2, ID#3, ... "
            f"(duplicates=keep, as the original system's exported tables counted them; e.g. {examples})"
        )
        return frame.assign(study_key=renamed)
    notes.append(f"{source}: {int(dup.sum())} duplicated study ids dropped, first row kept (e.g. {examples})")
    return frame.loc[~dup]


def _check_truth(table: pd.DataFrame, source: str) -> None:
    truth_cols = [c[: -len("_score")] for c in table.columns if c.endswith("_score")]
    for col in truth_cols:
        if col not in table.columns:
            raise LabelError(f"{source}: score column {col}_score has no truth column {col!r}")
        values = table[col].to_numpy(dtype=np.float64)
        bad = np.unique(values[~np.isnan(values) & (values != 0) & (values != 1)])
        if bad.size:
            raise LabelError(f"{source}: truth column {col!r} must be 0/1 or empty; found {bad[:5].tolist()}")


def _read_file(path: Path, duplicates: DuplicatePolicy, notes: list[str]) -> pd.DataFrame:
    frame = _to_cmrclip(_read_frame(path), _stem(path), str(path))
    frame = _numeric(frame.assign(study_key=frame["study_key"].astype(str)), str(path))
    return _dedupe(frame, duplicates, str(path), notes)


def read_predictions(path: Path, duplicates: DuplicatePolicy = "error") -> Predictions:
    """Read a predictions file, or a folder of one file per target joined on the study id.

    Args:
        path: a ``.csv``, ``.jsonl``, ``.json`` (records or W&B table) file, or a folder of such files.
        duplicates: ``"error"`` to refuse duplicated study ids, ``"first"`` to keep each id's first row, ``"keep"``
            to keep every row (the k-th repeat of an id becomes ``ID#k``); both are noted.

    Raises:
        DataError: if the path is missing, unreadable or has no usable columns, or ids are duplicated.
        LabelError: if a truth column holds values other than 0, 1 or empty.
    """
    path = Path(path)
    notes: list[str] = []
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))
        if not files:
            raise DataError(f"{path}: no prediction files (*.csv, *.jsonl, *.json) in this folder")
        frames = [_read_file(p, duplicates, notes).set_index("study_key") for p in files]
        table = pd.concat(frames, axis=1, join="outer", sort=False)
        if table.columns.duplicated().any():
            dupes = sorted(set(table.columns[table.columns.duplicated()]))
            raise DataError(f"{path}: several files give the same columns {dupes}; keep one file per target")
    elif path.is_file():
        table = _read_file(path, duplicates, notes).set_index("study_key")
    else:
        raise DataError(f"predictions {path} do not exist; give a CSV/JSON file or a folder of them")
    _check_truth(table, str(path))
    if notes:
        logger.warning(
            "%s: %d files had duplicated study ids (duplicates=%s; see the notes)", path, len(notes), duplicates
        )
    table.index.name = "study_key"
    preds = Predictions(table=table, source=str(path), notes=notes)
    if not preds.targets and not preds.has_lvef:
        raise DataError(f"{path}: no target has both scores and truth, and there is no lvef_pred/lvef pair")
    return preds


def align_predictions(model: Predictions, baseline: Predictions) -> Predictions:
    """Return ``baseline`` reordered to ``model``'s study order, after checking both have the same studies.

    Raises:
        DataError: if the study ids differ; the message counts and shows the mismatches.
    """
    a, b = model.table.index, baseline.table.index
    only_model, only_base = a.difference(b), b.difference(a)
    if len(only_model) or len(only_base):
        raise DataError(
            f"model ({model.source}) and baseline ({baseline.source}) cover different studies: "
            f"{len(only_model)} only in the model (e.g. {list(only_model[:3])}), {len(only_base)} only in the "
            f"baseline (e.g. {list(only_base[:3])}); evaluate both on the same studies"
        )
    return Predictions(table=baseline.table.loc[a], source=baseline.source, notes=list(baseline.notes))
