"""Batch jobs over JSONL report files: ``cmrclip reports label`` and ``cmrclip reports deid``.

Input lines hold ``id`` and ``text`` (and, for de-identification, an optional ``identifiers`` list). A bad line
(not JSON, no text, empty text, undecodable bytes) gets a status in the output instead of stopping the job.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from cmrclip.conditions import condition_keys
from cmrclip.errors import ReportError
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.text.deid import DeidMode, deidentify
from cmrclip.text.labeler import label_report
from cmrclip.text.normalize import decode_report
from cmrclip.text.surrogate import Surrogates

__all__ = [
    "TABLE_MEASURES",
    "BatchSummary",
    "ReportRecord",
    "deid_file",
    "label_file",
    "label_store",
    "labels_table",
    "read_reports",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportRecord:
    """One input line: its ``id``, ``text`` (``None`` when unusable), ``identifiers``, a ``status`` and flags."""

    id: Any
    text: str | None
    identifiers: tuple[str, ...] = ()
    status: str = "ok"
    flags: tuple[str, ...] = ()
    patient: str | None = None


@dataclass
class BatchSummary:
    """Counts of a batch job: reports read, per status, and (for labelling) positives per condition."""

    reports: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    positives: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)


def _record(lineno: int, raw: bytes) -> ReportRecord:
    decoded = decode_report(raw)
    try:
        data = json.loads(decoded.text)
    except json.JSONDecodeError:
        return ReportRecord(id=f"line:{lineno}", text=None, status="invalid_json", flags=decoded.flags)
    if not isinstance(data, dict):
        return ReportRecord(id=f"line:{lineno}", text=None, status="invalid_json", flags=decoded.flags)
    report_id = data.get("id", data.get("study_id", f"line:{lineno}"))
    text = data.get("text")
    identifiers = tuple(str(v) for v in data.get("identifiers") or () if v)
    if not isinstance(text, str):
        return ReportRecord(id=report_id, text=None, status="missing_text", flags=decoded.flags)
    patient = data.get("patient_id", data.get("patient"))
    return ReportRecord(
        id=report_id,
        text=text,
        identifiers=identifiers,
        flags=decoded.flags,
        patient=None if patient is None else str(patient),
    )


def read_reports(path: Path) -> Iterator[ReportRecord]:
    """Yield the records of a JSONL file, one per non-blank line, never raising on a bad line.

    Raises:
        ReportError: if the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"report file {path} does not exist; expected JSONL lines with 'id' and 'text'")
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if raw.strip():
            yield _record(lineno, raw)


def _run(
    in_path: Path, out_path: Path, task: str, one: Callable[[ReportRecord, BatchSummary], dict], progress: ProgressFn
) -> BatchSummary:
    records = list(read_reports(in_path))
    summary = BatchSummary()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for i, record in enumerate(records, start=1):
            line = one(record, summary)
            summary.reports += 1
            summary.statuses[line["status"]] += 1
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            progress(task, i, len(records))
    tmp.replace(out_path)
    return summary


def label_file(
    in_path: Path, out_path: Path, synonyms: Path | None = None, progress: ProgressFn = null_progress
) -> BatchSummary:
    """Label every report of ``in_path`` into ``out_path``.

    Output lines hold ``id``, ``labels``, ``lvef``, ``evidence``, ``status``, ``flags`` and ``measurements``.

    Raises:
        ReportError: if ``in_path`` does not exist.
        ConfigError: if ``synonyms`` is invalid.
    """

    def one(record: ReportRecord, summary: BatchSummary) -> dict:
        if record.text is None:
            return {"id": record.id, "labels": {}, "lvef": None, "evidence": {}, "status": record.status,
                    "flags": list(record.flags)}  # fmt: skip
        result = label_report(record.text, synonyms=synonyms)
        summary.positives.update(k for k, v in result.labels.items() if v == "positive")
        line = result.to_json(record.id)
        line["flags"] = sorted(set(line["flags"]) | set(record.flags))
        return line

    return _run(in_path, out_path, "label", one, progress)


def deid_file(
    in_path: Path,
    out_path: Path,
    progress: ProgressFn = null_progress,
    mode: DeidMode = "tag",
    key: str = "",
) -> BatchSummary:
    """De-identify every report of ``in_path`` into ``out_path`` (JSONL: ``id``, ``text``, ``removed``, ``status``).

    A line's optional ``identifiers`` list (patient name, IDs, physicians) is removed as well. In ``surrogate``
    mode a line's ``patient_id`` (else its ``id``), salted with the secret ``key``, fixes its fake names and date
    offset, so all reports of one patient agree.

    Raises:
        ReportError: if ``in_path`` does not exist.
    """
    surrogates: dict[str, Surrogates] = {}

    def one(record: ReportRecord, summary: BatchSummary) -> dict:
        if record.text is None:
            return {"id": record.id, "text": None, "removed": {}, "status": record.status, "flags": list(record.flags)}
        patient = f"{key}\0{record.patient if record.patient is not None else record.id}"
        shared = surrogates.setdefault(patient, Surrogates(patient)) if mode == "surrogate" else None
        result = deidentify(record.text, record.identifiers, mode=mode, surrogates=shared)
        summary.removed.update(result.counts)
        status = result.status
        return {"id": record.id, "text": result.text, "removed": dict(result.counts), "status": status,
                "flags": list(record.flags)}  # fmt: skip

    return _run(in_path, out_path, "deid", one, progress)


TABLE_MEASURES = ("rvef", "lvedv_ml", "lvesv_ml", "lv_mass_g")
"""Measurements after the condition columns of :func:`labels_table` (manifest numeric targets besides LVEF)."""

_CODES = {"positive": 1.0, "negative": 0.0, "unknown": float("nan")}


def _coded(labels: dict[str, str], uncertain: str, unmentioned: str) -> dict[str, float]:
    out = {}
    for key in condition_keys():
        value = labels.get(key)
        if value is None:
            out[key] = _CODES[unmentioned]
        else:
            out[key] = _CODES[uncertain] if value == "uncertain" else _CODES[value]
    return out


def labels_table(
    label_jsonl: Path,
    uncertain: Literal["unknown", "positive", "negative"] = "unknown",
    unmentioned: Literal["negative", "unknown"] = "negative",
) -> pd.DataFrame:
    """Turn ``reports label`` output into the table ``cmrclip ingest --labels`` joins into the manifest.

    Args:
        label_jsonl: output of :func:`label_file` (``id`` must be the study identifier, e.g. accession number).
        uncertain: how an ``uncertain`` label is coded: unknown (NaN), positive (1) or negative (0).
        unmentioned: how a condition the report does not mention is coded (reports rarely list every absent
            condition, so "negative" is the usual choice for training).

    Returns:
        Columns ``study_id``, ``lvef``, one per condition key (1.0, 0.0 or NaN = unknown), then the other stated
        measurements ``rvef``, ``lvedv_ml``, ``lvesv_ml``, ``lv_mass_g`` (NaN when not stated). Reports whose status
        is not ``ok`` are all unknown.
    """
    rows = []
    for line in Path(label_jsonl).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        ok = record.get("status") == "ok"
        row: dict[str, Any] = {"study_id": str(record["id"]), "lvef": record.get("lvef") if ok else None}
        if ok:
            row |= _coded(record.get("labels") or {}, uncertain, unmentioned)
            row |= {k: (record.get("measurements") or {}).get(k) for k in TABLE_MEASURES}
        rows.append(row)
    return pd.DataFrame(rows, columns=["study_id", "lvef", *condition_keys(), *TABLE_MEASURES])


def label_store(
    root: Path,
    uncertain: Literal["unknown", "positive", "negative"] = "unknown",
    unmentioned: Literal["negative", "unknown"] = "negative",
    overwrite: bool = False,
    synonyms: Path | None = None,
    progress: ProgressFn = null_progress,
) -> BatchSummary:
    """Label the de-identified reports held in a study store's manifest and write the labels into it.

    Args:
        root: the study store (``cmrclip ingest`` output); its ``report`` column is labelled.
        uncertain: how ``uncertain`` labels are written (see :func:`labels_table`).
        unmentioned: how conditions the report does not mention are written.
        overwrite: replace labels already in the manifest (e.g. from a curated table); by default only unknown
            (NULL) cells are filled.
        synonyms: extra synonyms YAML for the labeler.
        progress: called as ``progress("label", done, total)``.

    Returns:
        Counts: reports labelled (``statuses``: ok/empty/no_report) and positives per condition.

    Raises:
        StoreError: if ``root`` is not a study store.
    """
    from cmrclip.ingest.store import StudyStore

    store = StudyStore(root)
    manifest = store.manifest().set_index("study_key")
    summary, rows = BatchSummary(), []
    for i, (key, text) in enumerate(manifest["report"].items(), start=1):
        summary.reports += 1
        if not isinstance(text, str) or not text.strip():
            summary.statuses["no_report"] += 1
            continue
        result = label_report(text, synonyms=synonyms)
        summary.statuses[result.status] += 1
        summary.positives.update(k for k, v in result.labels.items() if v == "positive")
        row = {"study_key": key, "lvef": result.lvef, **_coded(result.labels, uncertain, unmentioned)}
        if not overwrite:
            row |= {c: manifest.at[key, c] for c in row if c != "study_key" and pd.notna(manifest.at[key, c])}
        rows.append(row)
        progress("label", i, len(manifest))
    if rows:
        store.add_labels(pd.DataFrame(rows))
    return summary
