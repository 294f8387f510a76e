"""The data-efficiency experiment: {initialisations} x {label fractions} x {seeds} fine-tuning runs.

Each cell is one :func:`cmrclip.train.finetune.run_finetune` run in ``OUT/cells/<init>/f<fraction>/s<seed>/`` that
ends by writing ``cell.json``; a rerun skips every cell that has one, so an interrupted grid resumes where it
stopped. Label fractions are drawn per patient and nest for one seed (:mod:`cmrclip.data.splits`); the validation
and test splits are the same for every cell. ``train`` does not import ``evaluate``: the caller injects a
``score(predictions) -> {metric: (value, lower, upper)}`` function (the CLI builds it from ``cmrclip.evaluate``),
and ``OUT/table.csv`` gets one row per cell and metric with the columns ``plot_data_efficiency`` reads, plus
``n_train`` and ``n_labelled`` (every labelled study the cell used: training and validation, which is subsampled at
the same fraction). Cells with the
same frozen encoder share its cached clip features (computed once per process).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cmrclip.config import StrictModel, save_config
from cmrclip.data.splits import DEFAULT_FRACTIONS
from cmrclip.errors import ConfigError
from cmrclip.models.convert import CheckpointInfo, load_video_encoder, save_video_encoder
from cmrclip.models.heads import HeadConfig, Mode
from cmrclip.models.registry import build_video_encoder
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.train.finetune import FinetuneConfig, run_finetune

__all__ = ["ExperimentConfig", "ExperimentResult", "InitSpec", "ScoreFn", "cell_dir", "run_experiment"]

logger = logging.getLogger(__name__)

ScoreFn = Callable[[pd.DataFrame], dict[str, tuple[float, float, float]]]
"""Scores a predictions table: ``{metric: (value, lower, upper)}`` (CI bounds may be NaN)."""


class InitSpec(StrictModel):
    """One initialisation of the grid."""

    name: str
    mode: Mode = "projection"
    encoder_path: str | None = None
    random_init: bool = False
    """Use a seeded random encoder with the architecture of the grid's first checkpoint (or ``finetune.model``)."""
    prompt_prior: bool | None = None
    """Override ``finetune.head.prompt_prior`` for this init (the prior needs a video tower aligned with the text
    tower of ``finetune.clip_path``; for a random encoder it is noise)."""


class ExperimentConfig(StrictModel):
    """The grid and the fine-tuning settings shared by its cells; the defaults equal ``configs/experiment.yaml``."""

    out_dir: str = "runs/data_efficiency"
    finetune: FinetuneConfig = FinetuneConfig(
        clip_path="runs/pretrain/clip.pt", head=HeadConfig(hidden=128, attention_dim=64)
    )
    inits: tuple[InitSpec, ...] = (
        InitSpec(name="pretrained", mode="linear", encoder_path="runs/pretrain/encoder.pt", prompt_prior=True),
        InitSpec(name="random", mode="linear", random_init=True, prompt_prior=False),
    )
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS[1:]
    seeds: tuple[int, ...] = (0, 1, 2)


@dataclass
class ExperimentResult:
    """The grid's outputs: one row per (init, fraction, seed, metric)."""

    out_dir: Path
    table_path: Path
    table: pd.DataFrame
    n_run: int
    n_skipped: int


def cell_dir(out_dir: Path, init: str, fraction: float, seed: int) -> Path:
    """The folder of one cell."""
    return Path(out_dir) / "cells" / init / f"f{fraction:g}" / f"s{seed}"


def _random_encoder(cfg: ExperimentConfig, out_dir: Path, seed: int) -> Path:
    """Write (once) a seeded random encoder shaped like the grid's first checkpoint; return its path."""
    path = out_dir / "inits" / f"random_s{seed}.pt"
    if path.is_file():
        return path
    reference = next((i.encoder_path for i in cfg.inits if i.encoder_path), None)
    arch = load_video_encoder(reference).config if reference else cfg.finetune.model
    untrained = CheckpointInfo(train_patients=[], notes=[f"random init, seed {1000 + seed}: trained on no patient"])
    save_video_encoder(build_video_encoder(arch, seed=1000 + seed), path, untrained)
    return path


def _cell_config(cfg: ExperimentConfig, init: InitSpec, fraction: float, seed: int, out: Path) -> FinetuneConfig:
    path = str(_random_encoder(cfg, Path(cfg.out_dir), seed)) if init.random_init else init.encoder_path
    if init.mode == "scratch" and init.random_init:
        raise ConfigError(f"init {init.name!r}: mode 'scratch' already starts from random weights; drop random_init")
    update = {
        "mode": init.mode,
        "encoder_path": None if init.mode == "scratch" else path,
        "label_fraction": fraction,
        "seed": seed,
        "out_dir": str(out),
    }
    if init.prompt_prior is not None:
        update["head"] = cfg.finetune.head.model_dump() | {"prompt_prior": init.prompt_prior}
    return FinetuneConfig.model_validate(cfg.finetune.model_dump() | update)


def _rows(init: str, fraction: float, seed: int, cell: dict) -> list[dict]:
    base = {"init": init, "fraction": fraction, "seed": seed, "n_train": cell.get("n_train", math.nan)}
    base["n_labelled"] = cell.get("n_labelled", math.nan)  # labelled studies used, train and validation
    return [
        base | {"metric": metric, "value": v, "lower": lo, "upper": hi}
        for metric, (v, lo, hi) in cell["scores"].items()
    ]


def _run_cell(
    cfg: ExperimentConfig, init: InitSpec, fraction: float, seed: int, score: ScoreFn, caches: dict[str, dict]
) -> dict:
    out = cell_dir(Path(cfg.out_dir), init.name, fraction, seed)
    cell_cfg = _cell_config(cfg, init, fraction, seed, out)
    cache = caches.setdefault(f"{cell_cfg.mode}:{cell_cfg.encoder_path}", {})  # frozen encoder: features reusable
    result = run_finetune(cell_cfg, feature_cache=cache)
    scores = score(pd.read_csv(out / "predictions_test.csv"))
    n_train, n_labelled = int(result.metrics["train_n"]), int(result.metrics["labelled_n"])
    cell = {"scores": scores, "metrics": result.metrics, "n_train": n_train, "n_labelled": n_labelled}
    (out / "cell.json").write_text(json.dumps(cell, indent=1), encoding="utf-8")
    return cell


def run_experiment(cfg: ExperimentConfig, score: ScoreFn, progress: ProgressFn = null_progress) -> ExperimentResult:
    """Run (or resume) the grid and write ``OUT/table.csv``.

    Raises:
        ConfigError: if the grid is empty, names repeat, or a cell's config is inconsistent.
    """
    if not cfg.inits or not cfg.fractions or not cfg.seeds:
        raise ConfigError("the experiment grid is empty; give at least one init, fraction and seed")
    names = [i.name for i in cfg.inits]
    if len(set(names)) != len(names):
        raise ConfigError(f"init names repeat in {names}; each init needs its own name")
    out_dir = Path(cfg.out_dir)
    save_config(cfg, out_dir)
    cells = [(i, f, s) for i in cfg.inits for f in sorted(cfg.fractions) for s in cfg.seeds]
    rows, n_run, n_skipped, caches = [], 0, 0, {}
    for k, (init, fraction, seed) in enumerate(cells):
        marker = cell_dir(out_dir, init.name, fraction, seed) / "cell.json"
        if marker.is_file():
            cell, n_skipped = json.loads(marker.read_text(encoding="utf-8")), n_skipped + 1
            logger.info("cell %s f=%g s=%d already done; skipped", init.name, fraction, seed)
        else:
            cell, n_run = _run_cell(cfg, init, fraction, seed, score, caches), n_run + 1
        rows += _rows(init.name, fraction, seed, cell)
        progress("experiment", k + 1, len(cells))
    table = pd.DataFrame(rows)
    table_path = out_dir / "table.csv"
    table.to_csv(table_path, index=False)
    logger.info("data-efficiency grid: %d cells run, %d skipped; table %s", n_run, n_skipped, table_path)
    return ExperimentResult(out_dir, table_path, table, n_run, n_skipped)
