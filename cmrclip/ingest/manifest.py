"""The store's manifest: one SQLite table ``studies`` with a row per study, its views, counts, split and labels."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd

from cmrclip.conditions import condition_keys
from cmrclip.errors import LabelError, StoreError

__all__ = [
    "BASE_COLUMNS",
    "NUMERIC_TARGETS",
    "init_manifest",
    "label_columns",
    "read_manifest",
    "set_column",
    "update_labels",
    "upsert_rows",
]

logger = logging.getLogger(__name__)

BASE_COLUMNS: dict[str, str] = {
    "study_key": "TEXT PRIMARY KEY",
    "patient_key": "TEXT NOT NULL",
    "site": "TEXT",
    "path": "TEXT NOT NULL",
    "views": "TEXT NOT NULL",
    "n_sax_slices": "INTEGER NOT NULL",
    "n_clips": "INTEGER NOT NULL",
    "split": "TEXT",
    "report": "TEXT",
}
"""Columns every manifest has, in order, with their SQLite types."""

NUMERIC_TARGETS: tuple[str, ...] = ("lvef", "lvedv_ml", "lvesv_ml", "lv_mass_g", "rvef")
"""Numeric targets stored as REAL columns (NULL = unknown)."""


def label_columns() -> list[str]:
    """Return the REAL label columns: the numeric targets, then one per condition key."""
    return [*NUMERIC_TARGETS, *condition_keys()]


def _q(name: str) -> str:
    """Quote a column name for SQLite (condition keys contain dots)."""
    return '"' + name.replace('"', '""') + '"'


def _connect(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(path, timeout=60)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the manifest {path}: {exc}; check the store folder's permissions") from exc


def init_manifest(path: Path) -> None:
    """Create the ``studies`` table at ``path`` if it is missing (idempotent)."""
    cols = [f"{_q(k)} {v}" for k, v in BASE_COLUMNS.items()] + [f"{_q(k)} REAL" for k in label_columns()]
    with closing(_connect(path)) as con, con:
        con.execute(f"CREATE TABLE IF NOT EXISTS studies ({', '.join(cols)})")


def _existing_columns(con: sqlite3.Connection) -> list[str]:
    return [row[1] for row in con.execute("PRAGMA table_info(studies)")]


def read_manifest(path: Path) -> pd.DataFrame:
    """Read the whole ``studies`` table, sorted by ``study_key``, ``views`` decoded from JSON to lists."""
    with closing(_connect(path)) as con:
        try:
            df = pd.read_sql_query("SELECT * FROM studies ORDER BY study_key", con)
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:
            raise StoreError(f"manifest {path} is unreadable: {exc}; re-run `cmrclip ingest` to rebuild it") from exc
    df["views"] = [json.loads(v) for v in df["views"]]
    for col in label_columns():
        if col in df:
            df[col] = df[col].astype(float)
    return df


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    if hasattr(value, "item"):
        return value.item()
    return value


def upsert_rows(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert or replace study rows (keys = column names). Label columns already set are kept if not given.

    Returns:
        The number of rows written.
    """
    n = 0
    with closing(_connect(path)) as con, con:
        known = set(_existing_columns(con))
        for row in rows:
            unknown = set(row) - known
            if unknown:
                raise StoreError(f"manifest row has unknown columns {sorted(unknown)}; known: {sorted(known)}")
            names = list(row)
            placeholders = ", ".join("?" for _ in names)
            updates = ", ".join(f"{_q(c)}=excluded.{_q(c)}" for c in names if c != "study_key")
            # column names were checked against the table above; values go through placeholders
            sql = (
                f"INSERT INTO studies ({', '.join(_q(c) for c in names)}) VALUES ({placeholders}) "  # noqa: S608
                f"ON CONFLICT(study_key) DO UPDATE SET {updates}"
            )
            con.execute(sql, [_clean(row[c]) for c in names])
            n += 1
    return n


def update_labels(path: Path, labels: pd.DataFrame, allow_new_columns: bool = False) -> list[str]:
    """Write label columns for the studies in ``labels`` (a ``study_key`` column plus label columns).

    Args:
        path: The manifest file.
        labels: One row per study; NaN means unknown (written as NULL).
        allow_new_columns: Add columns that are neither a numeric target nor a condition key as REAL columns.

    Returns:
        The study keys in ``labels`` that are not in the manifest (their labels are not written).

    Raises:
        LabelError: if ``study_key`` is missing or a column is unknown and ``allow_new_columns`` is False.
    """
    if "study_key" not in labels:
        raise LabelError("labels table needs a 'study_key' column (the hashed study key from the manifest)")
    cols = [c for c in labels.columns if c != "study_key"]
    with closing(_connect(path)) as con, con:
        existing = set(_existing_columns(con))
        new = [c for c in cols if c not in existing]
        if new and not allow_new_columns:
            raise LabelError(f"unknown label columns {new}; known: {label_columns()} (or pass allow_new_columns)")
        for c in new:
            con.execute(f"ALTER TABLE studies ADD COLUMN {_q(c)} REAL")
        keys = {r[0] for r in con.execute("SELECT study_key FROM studies")}
        missing = sorted(set(labels["study_key"]) - keys)
        if cols:
            sets = ", ".join(f"{_q(c)}=?" for c in cols)
            data = [
                [_clean(float(v)) if v is not None else None for v in rec[1:]] + [rec[0]]
                for rec in labels[["study_key", *cols]].itertuples(index=False, name=None)
            ]
            con.executemany(f"UPDATE studies SET {sets} WHERE study_key=?", data)  # noqa: S608 (checked columns)
    if missing:
        logger.warning("%d labelled studies are not in the manifest", len(missing))
    return missing


def set_column(path: Path, column: str, values: Mapping[str, Any]) -> list[str]:
    """Set one existing text column (``split``, ``report``) for the given study keys; return the unknown keys."""
    if column not in BASE_COLUMNS or column in ("study_key", "path", "views"):
        raise StoreError(f"column {column!r} cannot be set this way; use one of split, report, site")
    with closing(_connect(path)) as con, con:
        keys = {r[0] for r in con.execute("SELECT study_key FROM studies")}
        con.executemany(
            f"UPDATE studies SET {_q(column)}=? WHERE study_key=?",  # noqa: S608 (column checked above)
            [(_clean(v), k) for k, v in values.items() if k in keys],
        )
    return sorted(set(values) - keys)
