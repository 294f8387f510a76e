"""Merge the stores written by shards of one ingestion (``--shard i/n``) into one store."""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cmrclip.errors import StoreError
from cmrclip.ingest import manifest as _manifest
from cmrclip.ingest.faults import Fault, read_faults
from cmrclip.ingest.store import StudyStore

__all__ = ["merge_stores"]

logger = logging.getLogger(__name__)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(df: pd.DataFrame) -> list[dict]:
    """Manifest rows without their unknown (NaN/None) cells, so merging never erases a known value."""
    return [{k: v for k, v in row.items() if _known(v)} for row in df.to_dict("records")]


def _known(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def merge_stores(parts: Sequence[Path], out: Path) -> int:
    """Copy every study of the part stores into ``out`` (created if needed) and merge manifests and fault reports.

    A study found in several parts must be byte-identical in all of them.

    Returns:
        The number of studies in the merged store.

    Raises:
        StoreError: if a part is not a store, or two parts hold different files for one study key.
    """
    target = StudyStore.create(out)
    options = [p / "ingest_options.json" for p in map(Path, parts) if (p / "ingest_options.json").is_file()]
    if len({o.read_text(encoding="utf-8") for o in options}) > 1:
        raise StoreError(f"the stores {list(parts)} were ingested with different options; merge like with like")
    if options and not (target.root / "ingest_options.json").is_file():
        shutil.copyfile(options[0], target.root / "ingest_options.json")
    faults: set[Fault] = set(read_faults(target.report_path))
    for part in map(StudyStore, parts):
        df = part.manifest()
        known = set(target.manifest()["study_key"])
        extra = [c for c in df.columns if c not in set(_manifest.BASE_COLUMNS) | set(_manifest.label_columns())]
        for key in df["study_key"]:
            src, dst = part.study_path(key), target.study_path(key)
            if key in known and dst.is_file():
                if _digest(src) != _digest(dst):
                    raise StoreError(f"study {key} differs between {part.root} and {out}; re-ingest it in one shard")
                continue
            tmp = dst.with_name(f".{dst.name}.merge.tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)
        _manifest.upsert_rows(target.manifest_path, _rows(df.drop(columns=extra)))
        if extra:
            _manifest.update_labels(target.manifest_path, df[["study_key", *extra]], allow_new_columns=True)
        faults |= set(part.faults_list())
    ordered = sorted(faults)
    target.report_path.write_text("".join(f.to_json() + "\n" for f in ordered), encoding="utf-8")
    n = len(target.manifest())
    logger.info("merged %d stores into %s: %d studies", len(parts), out, n)
    return n
