"""Generate a synthetic cohort: patients, studies (DICOM), reports and exact ground truth (docs/ARCHITECTURE.md §1)."""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

from cmrclip.conditions import condition_keys
from cmrclip.config import StrictModel
from cmrclip.errors import ConfigError
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.synth.identity import StudyPlan, plan_cohort
from cmrclip.synth.study import StudyResult, make_study

__all__ = ["GT_COLUMNS", "CohortSummary", "SynthConfig", "generate_cohort", "ground_truth_row", "write_tables"]

logger = logging.getLogger(__name__)

GT_COLUMNS = ["study_id", "patient_id", "site", "lvef", "lvedv_ml", "lvesv_ml", "lv_mass_g", "rvef"]
"""The first columns of ``ground_truth.csv``; one 0/1 column per condition key follows."""


class SynthConfig(StrictModel):
    """``cmrclip synth`` settings (defaults in ``cmrclip/configs/synth.yaml``)."""

    studies: int = 20
    seed: int = 0
    sites: list[str] | None = None
    masks: bool = False
    preview: bool = False
    matrix: int | None = None
    phases: int | None = None
    repeat_fraction: float = 0.2
    workers: int = 0
    anatomy: Literal["analytic", "real"] = "analytic"
    sources: Path | None = None

    def extra_kwargs(self) -> dict[str, object]:
        """The keyword-only arguments of :func:`generate_cohort`."""
        return {"matrix": self.matrix, "phases": self.phases, "repeat_fraction": self.repeat_fraction,
                "workers": self.workers}  # fmt: skip


@dataclass(frozen=True)
class CohortSummary:
    """What :func:`generate_cohort` wrote."""

    out_dir: Path
    n_studies: int
    n_patients: int
    n_files: int
    sites: tuple[str, ...]
    study_ids: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return (
            f"{self.n_studies} {'study' if self.n_studies == 1 else 'studies'} of {self.n_patients} patient(s) "
            f"from {len(self.sites)} site(s), {self.n_files} DICOM files in {self.out_dir}"
        )


def ground_truth_row(
    plan: StudyPlan, measures: dict[str, float], conditions: Sequence[str], keys: list[str]
) -> list[object]:
    """One ``ground_truth.csv`` row: identifiers, the measures of :data:`GT_COLUMNS` and a 0/1 per condition key."""
    row: list[object] = [plan.accession, plan.patient.patient_id, plan.site.key]
    row += [f"{measures[k]:.2f}" for k in ("lvef", "lvedv_ml", "lvesv_ml", "lv_mass_g", "rvef")]
    return row + [int(k in conditions) for k in keys]


def _make_all(plans: list[StudyPlan], out_dir: Path, masks: bool, workers: int) -> Iterator[StudyResult]:
    """Make every study, in order, in this process or in a pool of ``workers`` processes."""
    workers = min(4, os.cpu_count() or 1) if workers <= 0 else workers
    if workers == 1 or len(plans) < 2:
        yield from (make_study(plan, out_dir, masks) for plan in plans)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        yield from pool.map(make_study, plans, [out_dir] * len(plans), [masks] * len(plans))


def write_tables(out_dir: Path, keys: list[str], rows: list[list[object]], reports: list[dict]) -> None:
    """Write ``ground_truth.csv`` (header :data:`GT_COLUMNS` + ``keys``) and ``reports.jsonl``."""
    with (out_dir / "ground_truth.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(GT_COLUMNS + keys)
        writer.writerows(rows)
    with (out_dir / "reports.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in reports)


def generate_cohort(
    out_dir: Path,
    n_studies: int,
    seed: int,
    sites: list[str] | None = None,
    masks: bool = False,
    progress: ProgressFn = null_progress,
    *,
    matrix: int | None = None,
    phases: int | None = None,
    repeat_fraction: float = 0.2,
    workers: int = 1,
) -> CohortSummary:
    """Write ``n_studies`` synthetic cine CMR studies with reports and ground truth into ``out_dir``.

    Same arguments, same bytes. Some patients get two studies (a rescan or a follow-up with changed function).

    Args:
        out_dir: output folder (created); ``dicom/``, ``reports.jsonl``, ``ground_truth.csv`` and, with
            ``masks``, ``masks/<study_id>.npz`` are written into it.
        n_studies: number of studies (>= 1).
        seed: the only source of randomness.
        sites: site keys (see :data:`cmrclip.synth.sites.SITES`); all sites when None.
        masks: also write the SAX label masks.
        progress: ``progress("synth", done, total)`` after each study.
        matrix: cap the matrix size (tests use ~64-96 px).
        phases: force this many cardiac phases (tests use few).
        repeat_fraction: fraction of patients with a second study.
        workers: processes rendering studies in parallel (0 = one per CPU, at most 4); the output does not
            depend on it.

    Raises:
        ConfigError: for a bad count, an unknown site, or an ``out_dir`` that already holds a cohort.
    """
    if n_studies < 1:
        raise ConfigError(f"--studies must be >= 1 (got {n_studies})")
    out_dir = Path(out_dir)
    if (out_dir / "dicom").is_dir() and any((out_dir / "dicom").iterdir()):
        raise ConfigError(f"{out_dir} already holds a cohort (dicom/ is not empty); choose a new --out or delete it")
    keys = condition_keys()
    plans = plan_cohort(n_studies, seed, sites, keys, matrix=matrix, phases=phases, repeat_fraction=repeat_fraction)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_files = 0
    rows, reports = [], []
    for i, (plan, result) in enumerate(zip(plans, _make_all(plans, out_dir, masks, workers), strict=True)):
        n_files += result.n_files
        rows.append(ground_truth_row(plan, result.measures, plan.conditions, keys))
        reports.append({"study_id": plan.accession, "patient_id": plan.patient.patient_id, "site": plan.site.key,
                        "text": result.report})  # fmt: skip
        progress("synth", i + 1, len(plans))
    write_tables(out_dir, keys, rows, reports)
    summary = CohortSummary(
        out_dir=out_dir,
        n_studies=len(plans),
        n_patients=len({p.patient.patient_id for p in plans}),
        n_files=n_files,
        sites=tuple(sorted({p.site.key for p in plans})),
        study_ids=tuple(p.accession for p in plans),
    )
    logger.info("wrote %s", summary)
    return summary
