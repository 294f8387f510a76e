"""A realistic cohort: real hearts moved through a whole cardiac cycle, restyled, written like the analytic cohort.

For each real heart (:mod:`cmrclip.synth.hearts`) ED is registered to ES once (diffeomorphic demons on the label
maps' signed distances plus the image, :mod:`cmrclip.synth.motion`), giving a velocity ``v``. A study then:

1. draws a target LVEF in its group's range (:data:`GROUP_LVEF`) and the contraction scale ``s`` that reaches it
   on the heart's own EF(s) curve (the warp ``exp(s v)`` is a diffeomorphism for every ``s``, so ``s`` > 1
   extrapolates the real motion without folding);
2. resamples the real ED image and its label fractions onto the site's grid (pixel size, matrix, a rotation of up
   to 25 degrees, the heart off-centre by up to ~15 mm), the velocity with them;
3. warps them through ``n`` phases with the contraction curve (ES at 30-40 % of the cycle);
4. restyles every frame (:mod:`cmrclip.synth.randomise`) and writes SAX DICOM with the site's conventions.

The truth is exact for the study as written: volumes are the sums of the warped soft label fractions times the
voxel volume (EDV at frame 0, ESV at the ES frame), LV mass is 1.05 g/mL times the ED myocardium; the written
masks are their per-voxel argmax (``realistic_test.py`` checks that they give the same LVEF within a point).
Conditions are the taxonomy keys of the heart's group (:data:`cmrclip.synth.hearts.GROUP_CONDITIONS`); reports
come from :func:`cmrclip.synth.reports.write_report`. Studies are SAX only (no realistic long-axis views).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

import numpy as np

from cmrclip.conditions import condition_keys
from cmrclip.errors import ConfigError, DataError
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.synth.cohort import CohortSummary, check_out_dir, generate_cohort, write_cohort
from cmrclip.synth.hearts import GROUP_CONDITIONS, RealHeart, load_real_hearts
from cmrclip.synth.identity import StudyPlan, plan_cohort
from cmrclip.synth.realstudy import GROUP_LVEF, HeartMotion, RealisticStudy, heart_motion, make_real_study

__all__ = [
    "GROUP_CONDITIONS",
    "GROUP_LVEF",
    "SOURCES_ENV",
    "CohortChoice",
    "HeartMotion",
    "RealHeart",
    "default_sources",
    "generate_realistic_cohort",
    "heart_motion",
    "hearts_from_sources",
    "load_real_hearts",
    "plan_real_studies",
    "synth_cohort",
]

logger = logging.getLogger(__name__)


def _motions(hearts: Sequence[RealHeart], workers: int) -> list[HeartMotion]:
    if workers == 1 or len(hearts) < 2:
        return [heart_motion(h) for h in hearts]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(heart_motion, hearts))


def _assign(plans: list[StudyPlan], n_hearts: int, seed: int) -> list[int]:
    """Heart index of each study: patients cycle through a shuffled list of the hearts; visits keep the heart."""
    order = np.random.default_rng([seed, 31]).permutation(n_hearts)
    patients: dict[str, int] = {}
    for plan in plans:
        patients.setdefault(plan.patient.patient_id, len(patients))
    return [int(order[patients[p.patient.patient_id] % n_hearts]) for p in plans]


def _make_all(
    jobs: list[tuple[StudyPlan, RealHeart, HeartMotion]], out_dir: Path, masks: bool, workers: int
) -> Iterator[RealisticStudy]:
    if workers == 1 or len(jobs) < 2:
        yield from (make_real_study(*job, out_dir, masks) for job in jobs)
        return
    plans, hearts, motions = (list(x) for x in zip(*jobs, strict=True))
    n = len(jobs)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        yield from pool.map(make_real_study, plans, hearts, motions, [out_dir] * n, [masks] * n)


def plan_real_studies(
    n_studies: int,
    seed: int,
    hearts: Sequence[RealHeart],
    *,
    workers: int = 1,
    sites: list[str] | None = None,
    matrix: int | None = None,
    phases: int | None = None,
    repeat_fraction: float = 0.2,
) -> list[tuple[StudyPlan, RealHeart, HeartMotion]]:
    """The plan, heart and motion of each of ``n_studies`` realistic studies.

    Arguments as :func:`generate_realistic_cohort`; render a study with
    :func:`cmrclip.synth.realstudy.render_real_study`.

    Raises:
        ConfigError: if no heart has RV, myocardium and LV labels.
    """
    usable = [h for h in hearts if h.has_rv and (h.label_ed == 2).any()]
    if len(usable) < len(hearts):
        logger.warning("skipping %d heart(s) without RV/myocardium labels", len(hearts) - len(usable))
    if not usable:
        raise ConfigError("no real heart with RV, myocardium and LV masks was given; pass ACDC or M&Ms sources")
    plans = plan_cohort(n_studies, seed, sites, condition_keys(), matrix=matrix, phases=phases,
                        repeat_fraction=repeat_fraction)  # fmt: skip
    index = _assign(plans, len(usable), seed)
    used = sorted(set(index))
    motions = dict(zip(used, _motions([usable[i] for i in used], workers), strict=True))
    return [(plan, usable[i], motions[i]) for plan, i in zip(plans, index, strict=True)]


def generate_realistic_cohort(
    out_dir: Path,
    n_studies: int,
    seed: int,
    hearts: Sequence[RealHeart],
    *,
    masks: bool = False,
    progress: ProgressFn = null_progress,
    workers: int = 1,
    sites: list[str] | None = None,
    matrix: int | None = None,
    phases: int | None = None,
    repeat_fraction: float = 0.2,
) -> CohortSummary:
    """Write ``n_studies`` realistic SAX cine studies from ``hearts`` (and only them) in the analytic cohort's layout.

    Same arguments, same bytes (for any ``workers``). ``dicom/<PatientID>/<Accession>/<series>/``, ``reports.jsonl``,
    ``ground_truth.csv`` (lvef, lvedv_ml, lvesv_ml, lv_mass_g, rvef and the 39 condition columns) and, with
    ``masks``, ``masks/<study_id>.npz`` (labels ``[S, F, H, W]`` with :class:`cmrclip.synth.anatomy.Tissue` values).

    Args:
        out_dir: output folder (created; must not hold a cohort).
        n_studies: number of studies (>= 1).
        seed: the only source of randomness.
        hearts: real hearts with RV, myocardium and LV labels (:func:`cmrclip.synth.hearts.load_real_hearts`);
            hearts without RV labels (Sunnybrook) are skipped, as the truth needs RVEF.
        masks: also write the SAX label masks.
        progress: ``progress("synth", done, total)`` after each study.
        workers: processes (0 = one per CPU, at most 4).
        sites: site keys (all when None).
        matrix: cap the matrix size (tests use ~64-96 px).
        phases: force this many cardiac phases.
        repeat_fraction: fraction of patients with a second study (a rescan keeps the heart and its LVEF).

    Raises:
        ConfigError: for a bad count, no usable heart, or an ``out_dir`` that already holds a cohort.
    """
    out_dir = check_out_dir(out_dir, n_studies)
    workers = min(4, os.cpu_count() or 1) if workers <= 0 else workers
    jobs = plan_real_studies(n_studies, seed, hearts, workers=workers, sites=sites, matrix=matrix, phases=phases,
                             repeat_fraction=repeat_fraction)  # fmt: skip
    plans = [plan for plan, _, _ in jobs]
    outcomes = ((s.measures, s.conditions, s.report, s.n_files) for s in _make_all(jobs, out_dir, masks, workers))
    summary = write_cohort(out_dir, plans, outcomes, progress)
    logger.info("wrote %s from %d real hearts", summary, len({heart.subject for _, heart, _ in jobs}))
    return summary


SOURCES_ENV = "CMRCLIP_SHARED_DATA"
"""Environment variable naming the real-data folder (default: ``../shared/data`` from the working directory)."""


def default_sources() -> Path | None:
    """The real-data folder: ``$CMRCLIP_SHARED_DATA`` or ``../shared/data`` when it exists, else None."""
    env = os.environ.get(SOURCES_ENV)
    for candidate in ([Path(env)] if env else []) + [Path("..") / "shared" / "data"]:
        if candidate.is_dir():
            return candidate.resolve()
    return None


def hearts_from_sources(
    root: Path | str, max_hearts: int | None = None, exclude: Collection[str] = ()
) -> list[RealHeart]:
    """Real hearts from a folder in the shared layout (``acdc_ed_es/*.tar.xz``, ``acdc_cine/``, ``mnms2_*/``).

    Sunnybrook is not scanned (its masks have no RV, which the generator needs). Subjects in ``exclude`` are left out
    (real hearts kept for evaluation). ``max_hearts`` keeps that many, taking the groups in turn (the tiny demo uses
    one heart per group).

    Raises:
        DataError: if ``root`` is missing or holds none of those sources.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: real-data folder not found; pass --sources DIR (the layout of ../shared/data)")
    packs = sorted((root / "acdc_ed_es").glob("*.tar.xz"))
    cines = [root / "acdc_cine"] if (root / "acdc_cine").is_dir() else []
    mnms2 = sorted(p for p in root.glob("mnms2_*") if p.is_dir())
    if not (packs or cines or mnms2):
        raise DataError(f"{root}: no acdc_ed_es/*.tar.xz, acdc_cine/ or mnms2_*/ inside; nothing to build hearts from")
    hearts = [h for h in load_real_hearts(packs, cines, (), mnms2) if h.subject not in set(exclude)]
    if not hearts:
        raise DataError(f"{root}: every real heart is excluded ({len(set(exclude))} subjects); nothing to build from")
    if max_hearts and len(hearts) > max_hearts:  # round-robin over the groups, so a few hearts cover them all
        groups: dict[str, list[RealHeart]] = {}
        for heart in hearts:
            groups.setdefault(heart.group or "", []).append(heart)
        ranked = sorted(((i, g, h) for g, members in groups.items() for i, h in enumerate(members)),
                        key=lambda x: (x[0], x[1]))  # fmt: skip
        hearts = sorted((h for _, _, h in ranked[:max_hearts]), key=lambda h: h.subject)
    return hearts


@dataclass(frozen=True)
class CohortChoice:
    """The cohort written by :func:`synth_cohort`, which anatomy it has, and a sentence saying so."""

    summary: CohortSummary
    anatomy: Literal["analytic", "real"]
    note: str
    hearts: tuple[str, ...] = ()
    """Subjects of the real hearts given to the generator (to keep out of any real-data evaluation)."""


def synth_cohort(
    out_dir: Path,
    n_studies: int,
    seed: int,
    anatomy: Literal["analytic", "real", "auto"] = "analytic",
    sources: Path | str | None = None,
    *,
    max_hearts: int | None = None,
    exclude: Collection[str] = (),
    **kwargs: object,
) -> CohortChoice:
    """Write the analytic or the realistic cohort; ``auto``/``real`` fall back to analytic without sources.

    Args:
        out_dir: output folder.
        n_studies: number of studies.
        seed: the only source of randomness.
        anatomy: ``analytic``; ``real`` (from ``sources``, or :func:`default_sources`); ``auto`` (real when sources
            exist). Without any source, ``real`` and ``auto`` write the analytic cohort and say so in ``note``.
        sources: real-data folder (an explicit folder that does not exist is an error).
        max_hearts: use at most this many real hearts.
        exclude: real subjects never used to build studies (kept for evaluation).
        **kwargs: ``masks``, ``progress``, ``workers``, ``sites``, ``matrix``, ``phases``, ``repeat_fraction``.

    Raises:
        DataError: for an explicit ``sources`` folder that is missing or holds no source.
    """
    root = Path(sources) if sources is not None else default_sources()
    if anatomy != "analytic" and root is not None:
        hearts = hearts_from_sources(root, max_hearts, exclude)
        summary = generate_realistic_cohort(out_dir, n_studies, seed, hearts, **kwargs)  # type: ignore[arg-type]
        note = f"realistic cohort: {len(hearts)} real hearts from {root}, moved, restyled, SAX only"
        return CohortChoice(summary, "real", note, tuple(h.subject for h in hearts))
    summary = generate_cohort(out_dir, n_studies, seed, **kwargs)  # type: ignore[arg-type]
    if anatomy == "analytic":
        return CohortChoice(summary, "analytic", "analytic cohort (piecewise-constant model hearts)")
    note = (f"analytic cohort: FALLBACK, no real sources found (set {SOURCES_ENV} or pass --sources; "
            "../shared/data does not exist)")  # fmt: skip
    logger.warning(note)
    return CohortChoice(summary, "analytic", note)
