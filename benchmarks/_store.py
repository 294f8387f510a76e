"""A synthetic cohort ingested into a small study store, shared by the benchmarks (made once per work folder)."""

from __future__ import annotations

import time
from pathlib import Path

from cmrclip.ingest.pipeline import IngestConfig, ingest
from cmrclip.ingest.store import StudyStore
from cmrclip.synth import generate_cohort


def make_store(work: Path, studies: int, matrix: int = 96, workers: int = 1) -> Path:
    """``work/cohort`` (synthetic, 16 phases) and ``work/store`` (2 mm, 96 px); reuses what exists."""
    cohort, store = work / "cohort", work / "store"
    if not (cohort / "reports.jsonl").is_file():
        t = time.perf_counter()
        generate_cohort(cohort, n_studies=studies, seed=0, matrix=matrix, phases=16, workers=workers)
        print(f"synth: {studies} studies in {time.perf_counter() - t:.0f} s")
    if not (store / "manifest.sqlite").is_file() or len(StudyStore(store).manifest()) == 0:
        t = time.perf_counter()
        cfg = IngestConfig(salt="bench-salt", spacing_mm=2.0, crop_size=96, workers=2)
        summary = ingest([cohort / "dicom"], store, cfg, reports=cohort / "reports.jsonl",
                         labels=cohort / "ground_truth.csv")  # fmt: skip
        print(f"ingest: {summary.line()} in {time.perf_counter() - t:.0f} s")
    return store
