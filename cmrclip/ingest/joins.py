"""Join reports and label tables to stored studies through the same salted keys; list what does not join."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cmrclip.errors import ReportError
from cmrclip.ingest.deid import hash_key
from cmrclip.ingest.faults import Fault
from cmrclip.ingest.manifest import label_columns

__all__ = ["ID_COLUMNS", "TEXT_COLUMNS", "ReportScrubber", "join_labels", "join_reports", "read_table"]

logger = logging.getLogger(__name__)

ID_COLUMNS = ("study_id", "accession", "accession_number", "AccessionNumber", "study_uid", "StudyInstanceUID")
TEXT_COLUMNS = ("text", "report", "report_text")

ReportScrubber = Callable[[str, Sequence[str]], str]
"""``scrub(text, identifiers) -> text`` with identifiers and other PHI removed (injected by the CLI)."""


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or JSON-lines table with string identifiers.

    Raises:
        ReportError: if the file is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"table {path} does not exist")
    try:
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            df = pd.DataFrame(rows)
        else:
            df = pd.read_csv(path, dtype={c: str for c in ID_COLUMNS}, keep_default_na=True)
    except (ValueError, OSError) as exc:
        raise ReportError(f"cannot read {path}: {exc}; expected CSV or JSON lines") from exc
    return df


def _id_column(df: pd.DataFrame, path: Path) -> str:
    for col in ID_COLUMNS:
        if col in df:
            return col
    raise ReportError(f"{path}: no study identifier column; name one of {list(ID_COLUMNS)}")


def _replace_ids(text: str, ids: Sequence[str]) -> str:
    for ident in sorted(ids, key=len, reverse=True):
        text = text.replace(ident, "[ID]")
    return text


def join_reports(
    path: Path,
    salt: str,
    stored: set[str],
    identifiers: Mapping[str, Sequence[str]],
    scrub: ReportScrubber | None,
) -> tuple[dict[str, str], list[Fault]]:
    """Match reports to stored studies and de-identify them.

    Args:
        path: CSV/JSONL with a study identifier column (see :data:`ID_COLUMNS`) and a text column.
        salt: The ingestion salt.
        stored: Keys of the studies in the store.
        identifiers: Per study key, the identifiers to scrub from its report (patient ID, accession, name).
        scrub: Report scrubber; without one, only the study's own identifiers are replaced.

    Returns:
        De-identified text per study key, and a fault per report or study that does not join.
    """
    df = read_table(path)
    id_col = _id_column(df, path)
    text_col = next((c for c in TEXT_COLUMNS if c in df), None)
    if text_col is None:
        raise ReportError(f"{path}: no report text column; name one of {list(TEXT_COLUMNS)}")
    texts: dict[str, str] = {}
    faults: list[Fault] = []
    for ident, text in zip(df[id_col].astype(str), df[text_col].fillna("").astype(str), strict=True):
        key = hash_key(ident, salt)
        if key not in stored:
            faults.append(Fault(key, path.name, "reports", "report matches no stored study"))
            continue
        ids = [i for i in identifiers.get(key, ()) if i]
        texts[key] = scrub(text, ids) if scrub is not None else _replace_ids(text, ids)
    faults += [Fault(k, path.name, "reports", "stored study has no report") for k in sorted(stored - set(texts))]
    return texts, faults


def join_labels(path: Path, salt: str, stored: set[str]) -> tuple[pd.DataFrame, dict[str, str], list[Fault]]:
    """Match a label table (e.g. the synthetic ``ground_truth.csv``) to stored studies.

    Returns:
        A table of ``study_key`` plus the label columns it has (NaN = unknown), the ``site`` per key when the
        table has one, and a fault per row or study that does not join.
    """
    df = read_table(path)
    id_col = _id_column(df, path)
    keys = [hash_key(str(i), salt) for i in df[id_col]]
    cols = [c for c in label_columns() if c in df]
    out = pd.DataFrame({"study_key": keys})
    for c in cols:
        out[c] = pd.to_numeric(df[c], errors="coerce").astype(float).to_numpy()
    joined = np.array([k in stored for k in keys], dtype=bool)
    faults = [Fault(k, path.name, "labels", "label row matches no stored study") for k in np.array(keys)[~joined]]
    faults += [Fault(k, path.name, "labels", "stored study has no label row") for k in sorted(stored - set(keys))]
    sites = {k: str(s) for k, s, j in zip(keys, df["site"], joined, strict=True) if j} if "site" in df else {}
    return out[joined].reset_index(drop=True), sites, faults
