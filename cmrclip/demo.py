"""The main job on the embedded default: synthetic cohort -> store -> pretraining -> fine-tuning -> evaluation.

``run_demo`` chains the library's jobs exactly as a user would run them one by one (``cmrclip synth``, ``ingest``,
``pretrain``, ``experiment data-efficiency``, ``evaluate``, ``zeroshot``) and writes one HTML report of the results.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from cmrclip.config import StrictModel, load_config, save_config
from cmrclip.data.store_split import ensure_split
from cmrclip.evaluate import ReportSection, build_html_report, run_evaluate
from cmrclip.evaluate.training import headline_scores, plot_experiment, plot_training_curves, write_zeroshot_summary
from cmrclip.handover import HandOver, hand_over, next_commands
from cmrclip.ingest.pipeline import IngestConfig, ingest
from cmrclip.ingest.store import StudyStore
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.segment.run import demo_segmentation
from cmrclip.serve.realcheck import real_hearts_section
from cmrclip.synth.preview import write_preview
from cmrclip.synth.realistic import default_sources, synth_cohort
from cmrclip.text.deid import scrub_report
from cmrclip.train.experiment import ExperimentConfig, InitSpec, cell_dir, run_experiment
from cmrclip.train.finetune import FinetuneConfig
from cmrclip.train.pretrain import PretrainConfig, pretrain
from cmrclip.train.zeroshot import ZeroshotConfig, run_zeroshot

__all__ = ["DEMO_SIZES", "DemoConfig", "DemoResult", "run_demo"]

logger = logging.getLogger(__name__)

DemoSize = Literal["tiny", "small", "medium"]


class DemoScale(StrictModel):
    """How big each stage of the demo is."""

    studies: int
    matrix: int | None
    phases: int | None
    pretrain_steps: int
    pretrain_batch: int | None
    """None: the packaged pretraining default."""
    finetune_epochs: int
    fractions: tuple[float, ...]
    seeds: tuple[int, ...]
    max_hearts: int | None = None
    """Real hearts used by the realistic cohort (None: every heart in the sources)."""
    spacing_mm: float = 2.0
    """Store resolution (a 96 px crop at 2 mm covers 19 cm: the heart, for the CPU presets' 64 px clips)."""
    crop_size: int = 96


DEMO_SIZES: dict[str, DemoScale] = {
    # a couple of minutes: the demo's test
    "tiny": DemoScale(
        studies=16, matrix=64, phases=8, pretrain_steps=4, pretrain_batch=8, finetune_epochs=3,
        fractions=(0.5, 1.0), seeds=(0,), max_hearts=5,
    ),
    # the README's `make demo`: about ten minutes on 2 CPU cores
    "small": DemoScale(
        studies=160, matrix=96, phases=20, pretrain_steps=150, pretrain_batch=None, finetune_epochs=30,
        fractions=(0.1, 0.25, 1.0), seeds=(0, 1),
    ),
    # for a GPU or a patient CPU
    "medium": DemoScale(
        studies=600, matrix=None, phases=None, pretrain_steps=1500, pretrain_batch=None, finetune_epochs=40,
        fractions=(0.05, 0.1, 0.25, 0.5, 1.0), seeds=(0, 1, 2), spacing_mm=1.25, crop_size=192,
    ),
}  # fmt: skip


_SEG_STEPS: dict[str, int] = {"tiny": 2, "small": 100, "medium": 3000}
"""Segmentation training steps per demo size (real ACDC masks when ../shared/data has them, else synthetic)."""


class DemoConfig(StrictModel):
    """Options of ``cmrclip demo``."""

    size: DemoSize = "small"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int = 0
    """Processes for synthesis and ingestion (0: one per CPU)."""
    anatomy: Literal["auto", "real", "analytic"] = "auto"
    """Cohort hearts: ``auto`` uses the realistic cohort whenever real sources exist, else the analytic one."""
    sources: Path | None = None
    """Real-data folder (None: ``$CMRCLIP_SHARED_DATA`` or ``../shared/data`` when present)."""
    hold_out_cines: bool = True
    """Keep the subjects with a real cine (``acdc_cine/``) out of the realistic cohort, so that the real-hearts panel
    scores real cines of hearts the model never saw (False: every heart builds studies; only Sunnybrook is scored)."""


def _held_out_cines(sources: Path | None) -> set[str]:
    """Subjects of ``sources/acdc_cine`` (the real cines the demo keeps for evaluation)."""
    folder = Path(sources) / "acdc_cine" if sources is not None else None
    return {p.name for p in folder.iterdir() if p.is_dir()} if folder is not None and folder.is_dir() else set()


@dataclass
class DemoResult:
    """Where the demo wrote its report, and its headline numbers."""

    out_dir: Path
    report: Path
    headline: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    handover: HandOver | None = None
    """The ready model (``OUT/model.pt``) and study (``OUT/demo_study.zip``) for the commands to try next."""


class _Clock:
    """Times each stage of the run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def stage(self, name: str, start: float) -> None:
        self.seconds[name] = round(time.perf_counter() - start, 1)
        logger.info("demo stage %s took %.1f s", name, self.seconds[name])


def _pretrain_config(store: Path, scale: DemoScale, cfg: DemoConfig) -> PretrainConfig:
    overrides = [
        f"store_root={store}",
        f"seed={cfg.seed}",
        f"train.steps={scale.pretrain_steps}",
        f"train.checkpoint_every={max(scale.pretrain_steps // 3, 1)}",
        f"train.device={cfg.device}",
        f"optim.warmup_steps={max(scale.pretrain_steps // 10, 1)}",
    ]
    if scale.pretrain_batch is not None:
        overrides.append(f"train.batch_size={scale.pretrain_batch}")
    return load_config(PretrainConfig, None, overrides, defaults="pretrain.yaml")


def _experiment_config(out: Path, store: Path, encoder: Path, scale: DemoScale, cfg: DemoConfig) -> ExperimentConfig:
    base = load_config(FinetuneConfig, None, [], defaults="finetune.yaml")
    update = {"store_root": str(store), "epochs": scale.finetune_epochs, "seed": cfg.seed, "split_seed": cfg.seed}
    finetune = base.model_copy(update=update | {"clip_path": str(encoder.parent / "clip.pt")})
    inits = (  # frozen encoders (linear probes); the pretrained one starts its condition logits from the prompts
        InitSpec(name="pretrained", mode="linear", encoder_path=str(encoder), prompt_prior=True),
        InitSpec(name="random", mode="linear", random_init=True, prompt_prior=False),
    )
    return ExperimentConfig(
        out_dir=str(out), finetune=finetune, inits=inits, fractions=scale.fractions, seeds=scale.seeds
    )


def _recall_line(metrics: dict[str, Any]) -> str:
    """``"study->report R@5 0.220 (chance 0.122), ..."`` from a pretraining run's last metrics."""
    n = metrics.get("n_candidates")
    parts = []
    for key, value in metrics.items():
        if "_r@" not in key:
            continue
        direction, k = key.split("_r@")
        name = "study->report" if direction == "video_to_text" else "report->study"
        chance = f" (chance {min(1.0, int(k) / n):.3f})" if n else ""
        parts.append(f"{name} R@{k} {value:.3f}{chance}")
    if not parts:
        return "not measured"
    return ", ".join(parts) + (f" among {int(n)} held-out studies" if n else "")


def _headline(table: pd.DataFrame, fraction: float) -> pd.DataFrame:
    rows = table[np.isclose(table["fraction"], fraction)]
    return rows.groupby(["init", "metric"], as_index=False)[["value", "lower", "upper", "n_labelled"]].mean()


def _report(out: Path, parts: dict[str, Any], clock: _Clock, cfg: DemoConfig, extra: list[ReportSection]) -> Path:
    scale = DEMO_SIZES[cfg.size]
    cohort, ingest_summary, pre, experiment, evaluation, zeroshot = (
        parts[k] for k in ("cohort", "ingest", "pretrain", "experiment", "evaluation", "zeroshot")
    )
    low = min(scale.fractions)
    sections = [
        ReportSection(
            "Synthetic cohort",
            text=f"{parts['cohort_note'][:1].upper()}{parts['cohort_note'][1:]}. "
            f"{cohort.n_studies} studies of {cohort.n_patients} patients from {len(cohort.sites)} sites "
            f"(seed {cfg.seed}), written as DICOM with reports and exact ground truth; ingested into a "
            f"de-identified store: {ingest_summary.stored} stored, {ingest_summary.partial} partial, "
            f"{ingest_summary.rejected} rejected.",
            images=[parts["preview"]],
        ),
        ReportSection(
            "Contrastive pretraining (video <-> report)",
            text=f"{pre.steps} steps; held-out retrieval recall after training: {_recall_line(pre.metrics)}",
            images=[parts["curves"]],
        ),
        ReportSection(
            "Data efficiency: pretrained vs random encoder (frozen encoders, trained MIL head; the pretrained "
            "encoder's condition logits start from the zero-shot prompts)",
            text=f"Test-set metrics by labelled fraction (mean over seeds, 95 % bootstrap CI; n_labelled: labelled "
            f"studies the run used, validation included). Headline at {low:.0%} of the labels:",
            table=_headline(experiment.table, low),
            images=[p for p in parts["efficiency_plots"] if p.is_file()],
        ),
        ReportSection(
            f"Evaluation at {low:.0%} labels: pretrained (model) vs random encoder (baseline)",
            text="Per-condition AUROC with DeLong CIs and paired DeLong tests; LVEF error with limits of agreement. "
            f"Full report: {evaluation.report.relative_to(out)}",
            table=evaluation.table[evaluation.table["target"].isin(["macro", "weighted", "lvef"])],
            images=list(evaluation.plots.values())[:4],
        ),
        ReportSection(
            "Zero-shot (text prompts, no labels)",
            text="On the test split: studies whose reports pretraining never read (macro AUROC over the "
            "cine-visible conditions with enough positives; macro_auroc_conditions says how many).",
            table=zeroshot,
        ),
        ReportSection(
            "Try it: the ready model",
            text=f"{out / 'model.pt'} is the fine-tuned cell {parts['handover'].cell} ({parts['handover'].reason}); "
            f"{out / 'demo_study.zip'} is one of its test studies. Next:\n"
            + "\n".join(next_commands(parts["handover"], out)),
        ),
        parts["real_hearts"],
        *extra,
        ReportSection("Time per stage (s)", table=[{"stage": k, "seconds": v} for k, v in clock.seconds.items()]),
    ]
    return build_html_report("cmrclip demo", sections, out / "report.html", subtitle=f"size {cfg.size}")


def _cohort(out: Path, cfg: DemoConfig, sources: Path | None, progress: ProgressFn) -> dict[str, Any]:
    """Write the demo's cohort (realistic when sources exist; the real cines held out); its report parts."""
    scale = DEMO_SIZES[cfg.size]
    held_out = _held_out_cines(sources) if cfg.hold_out_cines else set()
    choice = synth_cohort(
        out, scale.studies, cfg.seed, cfg.anatomy, sources, max_hearts=scale.max_hearts, exclude=held_out,
        matrix=scale.matrix, phases=scale.phases, workers=cfg.workers, progress=progress,
    )  # fmt: skip
    logger.info("demo cohort: %s", choice.note)
    preview = write_preview(out, choice.summary.study_ids[0])[0]
    return {"cohort": choice.summary, "cohort_note": choice.note, "cohort_hearts": choice.hearts, "preview": preview}


def run_demo(out_dir: Path, cfg: DemoConfig | None = None, progress: ProgressFn = null_progress) -> DemoResult:
    """Run the whole job on a fresh synthetic cohort in ``out_dir`` and write ``out_dir/report.html``.

    Raises:
        CmrclipError: if any stage fails on bad configuration.
    """
    cfg = cfg or DemoConfig()
    scale = DEMO_SIZES[cfg.size]
    out = Path(out_dir).resolve()
    save_config(cfg, out, cfg.seed)
    clock, parts = _Clock(), {}
    start = time.perf_counter()
    sources = Path(cfg.sources) if cfg.sources else default_sources()
    parts |= _cohort(out / "cohort", cfg, sources, progress)
    clock.stage("synth", start)
    start, store = time.perf_counter(), out / "store"
    ingest_cfg = IngestConfig(
        salt=f"cmrclip-demo-{cfg.seed}", workers=cfg.workers, spacing_mm=scale.spacing_mm, crop_size=scale.crop_size
    )
    parts["ingest"] = ingest(
        [out / "cohort" / "dicom"], store, ingest_cfg, scrub_report=scrub_report, progress=progress,
        reports=out / "cohort" / "reports.jsonl", labels=out / "cohort" / "ground_truth.csv",
    )  # fmt: skip
    ensure_split(StudyStore(store), seed=cfg.seed)  # the one patient-level split every later stage reads
    clock.stage("ingest", start)
    start = time.perf_counter()
    parts["pretrain"] = pretrain(_pretrain_config(store, scale, cfg), out / "pretrain", progress=progress)
    parts["curves"] = plot_training_curves(out / "pretrain" / "metrics.jsonl", out / "pretrain" / "curves.png")
    clock.stage("pretrain", start)
    start = time.perf_counter()
    exp_cfg = _experiment_config(out / "finetune", store, out / "pretrain" / "encoder.pt", scale, cfg)
    experiment = run_experiment(exp_cfg, headline_scores, progress=progress)
    parts["experiment"] = experiment
    parts["efficiency_plots"] = plot_experiment(experiment.table, out)
    clock.stage("finetune", start)
    start, low = time.perf_counter(), min(scale.fractions)
    cells = out / "finetune" / "cells"
    pick = f"f{low:g}/s{scale.seeds[0]}/predictions_test.csv"
    parts["evaluation"] = run_evaluate(
        next(cells.glob(f"pretrained/{pick}")), out / "evaluate", baseline=next(cells.glob(f"random/{pick}"))
    )
    zs_cfg = ZeroshotConfig(store_root=str(store), clip_path=str(out / "pretrain" / "clip.pt"), out_dir=str(out / "zs"))
    zs = run_zeroshot(zs_cfg, progress=progress)
    parts["zeroshot"] = write_zeroshot_summary(zs, out / "zs")
    clock.stage("evaluate", start)
    start, top = time.perf_counter(), max(scale.fractions)
    bundle = cell_dir(out / "finetune", "pretrained", top, scale.seeds[0]) / "model.pt"
    real_cfg = ingest_cfg.model_copy(update={"workers": 1})
    parts["real_hearts"] = real_hearts_section(
        bundle, sources, out / "real_hearts", real_cfg, trained_on=set(parts["cohort_hearts"])
    )
    clock.stage("real hearts", start)
    start = time.perf_counter()
    seg = demo_segmentation(out / "segment", store, _SEG_STEPS[cfg.size], cfg.seed, progress=progress)
    clock.stage("segment", start)
    parts["handover"] = hand_over(out, out / "cohort" / "dicom", ingest_cfg.salt.get_secret_value())
    report = _report(out, parts, clock, cfg, [ReportSection("Segmentation and volumes (MONAI U-Net)", **seg)])
    headline = _headline(experiment.table, low).to_dict(orient="records")
    summary = {"headline": headline, "seconds": clock.seconds, "cohort": parts["cohort_note"]}
    (out / "headline.json").write_text(json.dumps(summary, indent=1))
    result = {"data_efficiency": headline, "cohort": parts["cohort_note"]}
    return DemoResult(out, report, result, clock.seconds, parts["handover"])
