"""Contrastive pretraining of the video tower against report text (``cmrclip pretrain``).

Plain torch, ``torchrun``-compatible: each step draws one clip and one text sample per study, embeds both towers,
and minimises the symmetric InfoNCE over the global batch (gathered across ranks, same-patient pairs masked). Every
``checkpoint_every`` optimizer steps the full training state goes to ``OUT/checkpoints/last.pt``; ``resume=True``
continues from it exactly. After each epoch the loss, temperature, learning rate and held-out retrieval recall go to
``OUT/metrics.jsonl``. At the end ``OUT/encoder.pt`` and ``OUT/clip.pt`` are written.

Studies come from the store's one patient-level split (:func:`cmrclip.data.store_split.ensure_split`): the
``train`` split trains, the ``val`` split is the held-out retrieval set, and the ``test`` split is never read. The
training patients and the input recipe are recorded in both checkpoints' info, so that later jobs can refuse to
score a patient the weights were trained on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import Tensor, nn

from cmrclip.config import StrictModel, save_config
from cmrclip.data.bags import BagConfig
from cmrclip.data.dataset import PretrainDataset, studies_with_reports
from cmrclip.data.loader import make_loader
from cmrclip.data.store_split import ensure_split
from cmrclip.data.transforms import AugmentConfig, RandTemporalJitter
from cmrclip.errors import ConfigError
from cmrclip.ingest.store import StudyStore
from cmrclip.models.clip import ClipModel
from cmrclip.models.loss import key_ids
from cmrclip.models.prompts import retrieval_recall
from cmrclip.models.recipe import InputRecipe, clip_transform, recipe_for
from cmrclip.models.text import cache_text_features, load_tokenizer, tokenize
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.text.sampling import TextSampler, TextSamplerConfig, make_text_sampler
from cmrclip.train.checkpoint import TrainState, load_training_state, save_training_state
from cmrclip.train.contrastive import (
    ContrastiveTask,
    ModelSection,
    TextFeatureCache,
    build_clip_model,
)
from cmrclip.train.distributed import DistEnv, ResumableSampler, cleanup, init_distributed
from cmrclip.train.optim import OptimConfig, build_optimizer, build_scheduler

__all__ = [
    "CLIP_FORMAT",
    "DataSection",
    "ModelSection",
    "PretrainConfig",
    "PretrainResult",
    "TrainSection",
    "build_datasets",
    "pretrain",
    "pretrain_recipe",
    "split_held_out",
]

logger = logging.getLogger(__name__)

CLIP_FORMAT = "cmrclip-clip/1"
"""``OUT/clip.pt``: ``{"format", "video": <encoder checkpoint dict>, "text_config", "embed_dim", "state_dict"}``."""


class DataSection(StrictModel):
    """Clip sampling, augmentation and report text."""

    n_frames: int = 16
    size: tuple[int, int] | None = None  # clip rows, cols; None: the video preset's input size
    views: list[str] | None = ["SAX"]  # noqa: RUF012 (pydantic copies defaults)
    drop_sax_ends: bool = True
    clips_per_study: int = Field(1, ge=1)
    """Clips drawn per study per step (distinct views first, then more SAX slices); the study's embedding is the
    mean of theirs, in training and in the held-out retrieval. 1: one random clip, as the original."""
    num_workers: int = 1
    augment: AugmentConfig = AugmentConfig()
    text_sampler: TextSamplerConfig | None = TextSamplerConfig(
        sections=("impression", "findings"), max_sentences=6, deterministic=True
    )  # None: the whole report, always
    shuffle_reports: bool = False  # control experiment: pair training clips with other studies' reports


class TrainSection(StrictModel):
    """Loop settings (``steps`` and ``checkpoint_every`` count optimizer steps)."""

    batch_size: int = 64
    accum_steps: int = 1
    steps: int = 150
    checkpoint_every: int = 50
    eval_batch_size: int = 64
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool = True  # autocast on GPU only
    mask_same_patient: bool = True
    torch_threads: int | None = None


class PretrainConfig(StrictModel):
    """Everything ``cmrclip pretrain`` needs; the defaults equal ``cmrclip/configs/pretrain.yaml`` (tested)."""

    store_root: str | None = None
    seed: int = 0
    val_share: float = 0.15
    """Split shares and seed: used only if the store has no split yet (it is then written once to the store)."""
    test_share: float = 0.15
    split_seed: int = 0
    model: ModelSection = ModelSection()
    data: DataSection = DataSection()
    train: TrainSection = TrainSection()
    optim: OptimConfig = OptimConfig(warmup_steps=10)


@dataclass
class PretrainResult:
    """What a run produced: files and the last epoch's metrics."""

    out_dir: Path
    steps: int
    metrics: dict[str, Any] = field(default_factory=dict)
    clips_per_s: float = float("nan")  # training clips per second over the whole run


def split_held_out(studies: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training (``train`` split) and held-out retrieval (``val`` split) studies; ``test`` studies are left out."""
    split = studies["split"].astype(str)
    return studies.loc[split == "train"].reset_index(drop=True), studies.loc[split == "val"].reset_index(drop=True)


def _text_samplers(cfg: PretrainConfig) -> tuple[TextSampler | None, TextSampler | None]:
    """Training sampler (random sentences) and held-out sampler (the same sections, deterministic)."""
    if cfg.data.text_sampler is None:
        return None, None
    held = cfg.data.text_sampler.model_copy(update={"deterministic": True})
    return make_text_sampler(cfg.data.text_sampler), make_text_sampler(held)


@dataclass
class _Run:
    """The pieces of one pretraining run."""

    cfg: PretrainConfig
    out_dir: Path
    env: DistEnv
    clip: ClipModel
    task: nn.Module
    text_inputs: Callable[[list[str]], dict[str, Tensor]]
    train_ds: PretrainDataset
    held_ds: PretrainDataset
    sampler: ResumableSampler
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    state: TrainState = field(default_factory=TrainState)


def _text_inputs_fn(clip: ClipModel, cfg: PretrainConfig, device: torch.device) -> Callable[[list[str]], dict]:
    text = clip.text
    tokenizer = load_tokenizer(text.config)

    def tokens(texts: Any) -> dict[str, Tensor]:
        return tokenize(tokenizer, texts, text.config.max_length)

    if text.frozen:
        features = TextFeatureCache(text, tokens)
        return lambda texts: {"text_features": features(texts).to(device)}
    return lambda texts: {k: v.to(device) for k, v in tokens(texts).items()}


def _with_allowed_views(studies: pd.DataFrame, views: list[str] | None) -> pd.DataFrame:
    """The studies that have at least one of ``views`` (all when ``views`` is None); the others are logged."""
    if views is None or "views" not in studies.columns:
        return studies
    keep = studies["views"].map(lambda have: any(v in views for v in (have if have is not None else [])))
    if not keep.all():
        logger.warning(
            "data.views=%s: %d of %d studies have none of these views; skipped", views, int((~keep).sum()), len(studies)
        )
    return studies.loc[keep.to_numpy()].reset_index(drop=True)


def build_datasets(cfg: PretrainConfig, clip: ClipModel) -> tuple[PretrainDataset, PretrainDataset]:
    """Training and held-out datasets of a config (held-out: by patient, no augmentation, fixed draws)."""
    if not cfg.store_root:
        raise ConfigError("store_root is not set; pass --store STORE or set store_root in the config")
    manifest = ensure_split(StudyStore(Path(cfg.store_root)), cfg.val_share, cfg.test_share, cfg.split_seed)
    train_df, held_df = split_held_out(_with_allowed_views(studies_with_reports(manifest), cfg.data.views))
    if cfg.data.shuffle_reports:
        perm = np.random.default_rng([cfg.seed, 7]).permutation(len(train_df))
        train_df = train_df.assign(report=train_df["report"].to_numpy()[perm])
        logger.warning("data.shuffle_reports: training reports are paired with other studies (control run)")
    d = cfg.data
    common = {
        "n_frames": d.n_frames,
        "seed": cfg.seed,
        "allowed_views": d.views,
        "drop_sax_ends": d.drop_sax_ends,
        "clips_per_study": d.clips_per_study,
    }
    train_text, held_text = _text_samplers(cfg)
    jitter = RandTemporalJitter(d.augment.temporal_jitter_frames, prob=d.augment.temporal_jitter_prob)
    recipe = pretrain_recipe(cfg, clip)
    train_tf, held_tf = clip_transform(recipe, d.augment), clip_transform(recipe)
    root = Path(cfg.store_root)
    train_ds = PretrainDataset(root, train_df, train_tf, train_text, train=True, temporal_jitter=jitter, **common)
    held_ds = PretrainDataset(root, held_df, held_tf, held_text, train=False, **common)
    logger.info("pretraining on %d studies, %d held out for retrieval", len(train_ds), len(held_ds))
    return train_ds, held_ds


def pretrain_recipe(cfg: PretrainConfig, clip: ClipModel) -> InputRecipe:
    """The input recipe of a pretraining run: the video preset's, at ``data.size``, from ``data.views``."""
    views = tuple(cfg.data.views) if cfg.data.views else BagConfig().views
    bags = BagConfig(views=views, sax_drop_extremes=cfg.data.drop_sax_ends, sax_every=1)
    return recipe_for(clip.video, bags, tuple(cfg.data.size) if cfg.data.size else None)


def _standardise_text_features(clip: ClipModel, cfg: PretrainConfig, train_ds: PretrainDataset) -> None:
    """Fit the frozen text tower's feature standardisation on the training reports (their deterministic text).

    The features are computed apart from the training cache, so that cache fills exactly as it would without this.
    """
    text = clip.text
    if not text.frozen or text.config.feature_norm == "none":
        return
    _, held_sampler = _text_samplers(cfg)
    rng = np.random.default_rng(cfg.seed)
    texts = [held_sampler(r, rng) for r in train_ds.reports] if held_sampler else list(train_ds.reports)
    tokenizer = load_tokenizer(text.config)
    features = cache_text_features(text, lambda t: tokenize(tokenizer, t, text.config.max_length), texts)
    text.set_feature_stats(features.float())


def _build(cfg: PretrainConfig, out_dir: Path, env: DistEnv) -> _Run:
    clip = build_clip_model(cfg.model, cfg.seed).to(env.device)
    train_ds, held_ds = build_datasets(cfg, clip)
    per_step = cfg.train.batch_size * env.world_size
    if len(train_ds) < per_step:
        raise ConfigError(f"{len(train_ds)} training studies are fewer than one global batch ({per_step})")
    task: nn.Module = ContrastiveTask(clip, cfg.train.mask_same_patient)
    if env.distributed:
        ids = [env.device.index] if env.device.type == "cuda" else None
        task = nn.parallel.DistributedDataParallel(task, device_ids=ids)
    sampler = ResumableSampler(len(train_ds), env.world_size, env.rank, seed=cfg.seed, drop_last=True)
    optimizer = build_optimizer(clip, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, cfg.train.steps)
    text_inputs = _text_inputs_fn(clip, cfg, env.device)
    _standardise_text_features(clip, cfg, train_ds)
    return _Run(cfg, out_dir, env, clip, task, text_inputs, train_ds, held_ds, sampler, optimizer, scheduler)


def _autocast(run: _Run) -> Any:
    enabled = run.env.device.type == "cuda" and run.cfg.train.bf16
    return torch.autocast(device_type=run.env.device.type, dtype=torch.bfloat16, enabled=enabled)


def _micro_step(run: _Run, batch: dict[str, Any], sync: bool = True) -> float:
    """Forward and backward of one micro-batch (loss scaled for accumulation); return its loss.

    ``sync=False`` (a micro-batch before the last of an accumulation) skips DDP's gradient all-reduce: gradients
    then add up locally and are reduced once, with the last micro-batch.
    """
    video = batch["video"].to(run.env.device, non_blocking=True)
    text = run.text_inputs(batch["text"])
    local = not sync and isinstance(run.task, nn.parallel.DistributedDataParallel)
    with run.task.no_sync() if local else contextlib.nullcontext():
        with _autocast(run):
            out = run.task(video, text, key_ids(batch["patient_key"]).to(run.env.device))
        (out["loss"] / run.cfg.train.accum_steps).backward()
    return float(out["loss"].detach())


def _optimizer_step(run: _Run) -> None:
    if run.cfg.optim.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.clip.parameters(), run.cfg.optim.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.clip.clamp_logit_scale_()
    run.state.step += 1


@torch.no_grad()
def evaluate_retrieval(run: _Run) -> dict[str, float]:
    """Recall@1/5/10 (both directions) over the held-out studies: fixed clip(s) and text sample each."""
    clip, was_training = run.clip, run.clip.training
    clip.eval()
    loader = make_loader(run.held_ds, run.cfg.train.eval_batch_size, num_workers=0, drop_last=False)
    videos, texts = [], []
    for batch in loader:
        with _autocast(run):
            videos.append(clip.encode_video(batch["video"].to(run.env.device)).float().cpu())
            text = run.text_inputs(batch["text"])
            if "text_features" in text:
                texts.append(clip.encode_text_features(text["text_features"]).float().cpu())
            else:
                texts.append(clip.encode_text(text["input_ids"], text["attention_mask"]).float().cpu())
    clip.train(was_training)
    return retrieval_recall(torch.cat(videos), torch.cat(texts)) if videos else {}


def _append_metrics(run: _Run, record: dict[str, Any]) -> None:
    if run.env.is_main:
        with (run.out_dir / "metrics.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def _trim_metrics(path: Path, before_step: int) -> None:
    """On resume, drop records written after the checkpoint (they will be recomputed identically)."""
    if path.is_file():
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        kept = [ln for ln in lines if json.loads(ln)["step"] < before_step]
        path.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")


def _checkpoint(run: _Run) -> None:
    if run.env.is_main:
        sampler = run.sampler.state_dict() | {"start": run.state.batch_in_epoch * run.cfg.train.batch_size}
        path = run.out_dir / "checkpoints" / "last.pt"
        save_training_state(path, run.task, run.optimizer, run.scheduler, sampler, run.state, run.cfg.model_dump())


def _clips_per_batch(cfg: PretrainConfig) -> int:
    return cfg.train.batch_size * cfg.data.clips_per_study


def _end_epoch(run: _Run, seconds: float) -> dict[str, Any]:
    extra = run.state.extra
    record = {
        "epoch": run.state.epoch,
        "step": run.state.step,
        "loss": extra.get("loss_sum", 0.0) / max(1, extra.get("loss_n", 0)),
        "temperature": float(1.0 / run.clip.scale().detach()),
        "lr": run.scheduler.get_last_lr()[0],
        "seconds": round(seconds, 2),
        "clips_per_s": round(extra.get("loss_n", 0) * _clips_per_batch(run.cfg) / seconds, 2) if seconds else None,
    }
    if run.env.is_main:
        record.update(evaluate_retrieval(run))
        logger.info("epoch %d step %d: %s", run.state.epoch, run.state.step, record)
    _append_metrics(run, record)
    run.state.epoch += 1
    run.state.batch_in_epoch = 0
    run.state.extra = {}
    return record


def _run_epoch(run: _Run, stop_at: int, progress: ProgressFn) -> bool:
    """Train the rest of the current epoch (or until ``stop_at`` steps); return True if the epoch finished."""
    run.sampler.set_epoch(run.state.epoch)
    run.sampler.skip(run.state.batch_in_epoch * run.cfg.train.batch_size)
    run.train_ds.set_epoch(run.state.epoch)
    loader = make_loader(run.train_ds, run.cfg.train.batch_size, run.sampler, run.cfg.data.num_workers)
    accum, extra = run.cfg.train.accum_steps, run.state.extra
    for batch in loader:
        loss = _micro_step(run, batch, sync=(run.state.batch_in_epoch + 1) % accum == 0)
        extra["loss_sum"], extra["loss_n"] = extra.get("loss_sum", 0.0) + loss, extra.get("loss_n", 0) + 1
        run.state.batch_in_epoch += 1
        if run.state.batch_in_epoch % accum:
            continue
        _optimizer_step(run)
        progress("pretrain", run.state.step, run.cfg.train.steps)
        if run.state.step % run.cfg.train.checkpoint_every == 0 or run.state.step == run.cfg.train.steps:
            _checkpoint(run)
        if run.state.step >= stop_at:
            return run.state.batch_in_epoch >= run.sampler.per_rank // run.cfg.train.batch_size
    run.optimizer.zero_grad(set_to_none=True)  # an epoch's last micro-batches short of a full accumulation
    return True


def _save_outputs(run: _Run, metrics: dict[str, Any]) -> None:
    if not run.env.is_main:
        return
    from cmrclip.models.bundle import encoder_payload
    from cmrclip.models.convert import CheckpointInfo, save_video_encoder

    clip = run.clip
    scores = {k: float(v) for k, v in metrics.items() if "r@" in k}
    info = CheckpointInfo(
        preset=clip.video.config.name,
        metrics=scores,
        notes=["cmrclip pretrain"],
        train_patients=sorted(set(run.train_ds.patients)),
        recipe=pretrain_recipe(run.cfg, clip).model_dump(mode="json"),
    )
    clip.video.info = info
    save_video_encoder(clip.video, run.out_dir / "encoder.pt", info)
    body = {
        "format": CLIP_FORMAT,  # read back by cmrclip.models.prompts.load_clip_model
        "video": encoder_payload(clip.video),
        "text_config": clip.text.config.model_dump(mode="json"),
        "embed_dim": clip.embed_dim,
        "state_dict": {k: v.detach().cpu() for k, v in clip.state_dict().items()},
    }
    torch.save(body, run.out_dir / "clip.pt")
    logger.info("wrote %s and %s", run.out_dir / "encoder.pt", run.out_dir / "clip.pt")


def pretrain(
    cfg: PretrainConfig,
    out_dir: Path,
    resume: bool = False,
    progress: ProgressFn = null_progress,
    stop_after: int | None = None,
) -> PretrainResult:
    """Pretrain the towers contrastively; see the module docstring for what is written to ``out_dir``.

    Args:
        cfg: the run's config.
        out_dir: output folder.
        resume: continue from ``out_dir/checkpoints/last.pt``.
        progress: called as ``progress("pretrain", step, steps)``.
        stop_after: stop after this many optimizer steps in total without writing the final models (as if the run
            were interrupted; for tests and time-boxed jobs).

    Raises:
        ConfigError: if the config cannot run (no store, too few studies, ...).
        CheckpointError: if ``resume`` finds no matching checkpoint.
    """
    out_dir = Path(out_dir)
    env = init_distributed(cfg.train.device)
    if cfg.train.torch_threads:
        torch.set_num_threads(cfg.train.torch_threads)
    torch.manual_seed(cfg.seed * 1000 + env.rank)
    run = _build(cfg, out_dir, env)
    if env.is_main:
        save_config(cfg, out_dir, cfg.seed)
    if resume:
        run.state, sampler_state, _ = load_training_state(
            out_dir / "checkpoints" / "last.pt", run.task, run.optimizer, run.scheduler, env.device
        )
        run.sampler.load_state_dict(sampler_state)
        _trim_metrics(out_dir / "metrics.jsonl", run.state.step)
    stop_at = min(cfg.train.steps, stop_after or cfg.train.steps)
    run.task.train()
    record: dict[str, Any] = {}
    started, clips_at_start = time.perf_counter(), run.state.step
    while run.state.step < stop_at:
        epoch_start = time.perf_counter()
        if _run_epoch(run, stop_at, progress):
            record = _end_epoch(run, time.perf_counter() - epoch_start)
    if run.state.step >= cfg.train.steps:
        if run.state.batch_in_epoch:
            record = _end_epoch(run, 0.0)
        _save_outputs(run, record)
    if env.distributed:
        cleanup()
    elapsed = time.perf_counter() - started
    clips = (run.state.step - clips_at_start) * _clips_per_batch(cfg) * cfg.train.accum_steps * env.world_size
    return PretrainResult(out_dir, run.state.step, record, clips / elapsed if elapsed > 0 else float("nan"))
