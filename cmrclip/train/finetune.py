"""Fine-tune a study model (LVEF + conditions) on study bags from a store: ``cmrclip finetune``.

Writes ``OUT/model.pt`` (:mod:`cmrclip.models.bundle`), ``OUT/predictions_{val,test}.csv`` (docs §6),
``OUT/metrics.jsonl`` (one line per epoch), ``OUT/faults.jsonl`` (skipped studies) and the resolved config.

Modes (:data:`cmrclip.models.heads.Mode`): ``linear`` (frozen encoder and projection), ``projection`` (the
projection and head train), ``finetune`` (everything trains, the encoder at ``encoder_lr``) and ``scratch`` (a random
encoder, all trained); the former ``transfer`` is accepted as ``finetune`` with a warning. With a frozen encoder
(``linear``, ``projection``) and ``cache_features: true``, every clip is encoded once (no augmentation, phase 0) and
the head trains on the cached encoder features: the same model, orders of magnitude faster on a CPU.

The split is the store's one patient-level split (:func:`cmrclip.data.store_split.ensure_split`); a run refuses an
encoder (or prompt-prior CLIP model) that was trained on one of the store's test patients. At a label fraction the
validation labels are subsampled like the training ones, and ``labelled_n`` counts every label the run used.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from cmrclip.conditions import condition_keys
from cmrclip.config import StrictModel, save_config
from cmrclip.data.bags import NORMAL, BagConfig, Fault, StudyBagDataset, collate_bags
from cmrclip.data.splits import label_fraction
from cmrclip.data.store_split import check_no_test_leak, ensure_split
from cmrclip.data.transforms import AugmentConfig
from cmrclip.errors import ConfigError, DataError
from cmrclip.ingest.store import StudyStore
from cmrclip.models.bundle import save_bundle
from cmrclip.models.convert import CheckpointInfo, load_video_encoder
from cmrclip.models.heads import HeadConfig, Mode, StudyModel, configure_trainable, pos_weights, study_loss
from cmrclip.models.ood import fit_ood_guard, input_statistics
from cmrclip.models.prompts import load_clip_info, prompt_classifier
from cmrclip.models.recipe import InputRecipe, clip_transform, recipe_for
from cmrclip.models.registry import build_video_encoder
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.train.optim import OptimConfig, build_scheduler, check_optimizer_covers

__all__ = ["FinetuneConfig", "FinetuneResult", "load_encoder", "predictions_table", "run_finetune"]

logger = logging.getLogger(__name__)


class FinetuneConfig(StrictModel):
    """Everything ``cmrclip finetune`` needs; defaults (``configs/finetune.yaml``) run on the synthetic cohort."""

    store_root: str = "runs/store"
    out_dir: str = "runs/finetune"
    encoder_path: str | None = None
    """Initial encoder (``cmrclip pretrain``'s ``encoder.pt``, or any checkpoint ``load_video_encoder`` reads)."""
    clip_path: str | None = None
    """The CLIP checkpoint (``cmrclip pretrain``'s ``clip.pt``) whose text tower embeds the prompts of
    ``head.prompt_prior``; the same for every init of a grid, so that only the video tower differs."""
    prompts_file: str | None = None
    """Prompts for ``head.prompt_prior`` (default: the packaged ``prompts.yaml``)."""
    model: str = "tiny"
    """Video preset used when ``mode: scratch`` (random init)."""
    mode: Mode = "projection"
    head: HeadConfig = HeadConfig()
    bags: BagConfig = BagConfig()
    targets: list[str] | Literal["all"] = "all"
    include_normal: bool = True
    regression: tuple[str, ...] = ("lvef",)
    label_fraction: float = 1.0
    """Share of patients whose labels are used, in the training AND the validation split (nested per seed)."""
    val_share: float = 0.15
    """Split shares and seed: used only if the store has no split yet (it is then written once to the store)."""
    test_share: float = 0.15
    split_seed: int = 0
    seed: int = 0
    epochs: int = 30
    batch_size: int = 8
    optim: OptimConfig = OptimConfig(lr=1e-3, weight_decay=0.01, warmup_steps=10)
    encoder_lr: float | None = None
    huber_delta: float = 1.0
    cache_features: bool = True
    augment: AugmentConfig | None = None
    device: str = "cpu"


@dataclass
class FinetuneResult:
    """Where a run wrote its outputs and its headline numbers."""

    out_dir: Path
    bundle: Path
    metrics: dict[str, float]
    faults: list[Fault] = field(default_factory=list)


@dataclass
class _Splits:
    train: StudyBagDataset
    val: StudyBagDataset
    test: StudyBagDataset
    recipe: InputRecipe
    manifest: pd.DataFrame


def _target_list(cfg: FinetuneConfig) -> list[str]:
    targets = condition_keys() if cfg.targets == "all" else list(cfg.targets)
    if cfg.include_normal and NORMAL not in targets:
        targets.append(NORMAL)
    return targets


def _labelled(rows: pd.DataFrame, cfg: FinetuneConfig) -> pd.DataFrame:
    """The rows whose labels a run at ``cfg.label_fraction`` may use (the same patient draw in train and val)."""
    return rows[label_fraction(rows, cfg.label_fraction, seed=cfg.seed)] if len(rows) else rows


def _check_upstream(cfg: FinetuneConfig, encoder: nn.Module, manifest: pd.DataFrame) -> None:
    """Fail if a test patient trained the encoder (or the CLIP model of the prompt prior)."""
    info = getattr(encoder, "info", None)
    check_no_test_leak(info.train_patients if info else [], manifest, f"the encoder {cfg.encoder_path}")
    if cfg.head.prompt_prior and cfg.clip_path:
        check_no_test_leak(load_clip_info(Path(cfg.clip_path)).train_patients, manifest, f"the CLIP {cfg.clip_path}")


def _datasets(cfg: FinetuneConfig, store: StudyStore, encoder: nn.Module) -> _Splits:
    manifest = ensure_split(store, cfg.val_share, cfg.test_share, cfg.split_seed)
    if manifest.empty:
        raise DataError(f"the store {store.root} has no study; run `cmrclip ingest` first")
    _check_upstream(cfg, encoder, manifest)
    recipe = recipe_for(encoder, cfg.bags)
    plain = clip_transform(recipe)
    cached = cfg.cache_features and cfg.mode in ("linear", "projection")
    train_tf = plain if cached or cfg.augment is None else clip_transform(recipe, cfg.augment)
    targets = _target_list(cfg)

    def make(rows: pd.DataFrame, train: bool, tf: Any) -> StudyBagDataset:
        return StudyBagDataset(store, rows, targets, cfg.regression, recipe.bags, tf, train=train, seed=cfg.seed)

    split = manifest["split"]
    out = _Splits(
        make(_labelled(manifest[split == "train"], cfg), not cached, train_tf),
        make(_labelled(manifest[split == "val"], cfg), False, plain),
        make(manifest[split == "test"], False, plain),
        recipe,
        manifest,
    )
    logger.info("labelled studies used: %d train, %d val; %d test", len(out.train), len(out.val), len(out.test))
    return out


def load_encoder(cfg: FinetuneConfig) -> nn.Module:
    """The initial video encoder of a run: random (``scratch``) or read from ``encoder_path``.

    Raises:
        ConfigError: if ``scratch`` is given a checkpoint or another mode lacks one.
    """
    match cfg.mode:
        case "scratch":
            if cfg.encoder_path:
                raise ConfigError("mode 'scratch' trains from a random init; remove encoder_path or use 'finetune'")
            encoder = build_video_encoder(cfg.model, seed=cfg.seed)
            encoder.info = CheckpointInfo(preset=encoder.config.name, train_patients=[])
            return encoder
        case "linear" | "projection" | "finetune":
            if not cfg.encoder_path:
                raise ConfigError(f"mode {cfg.mode!r} needs encoder_path (e.g. OUT/encoder.pt from `cmrclip pretrain`)")
        case _:
            raise ConfigError(f"unknown mode {cfg.mode!r}")
    path = Path(cfg.encoder_path)
    if not path.is_file():
        raise ConfigError(f"encoder_path {path} does not exist; run `cmrclip pretrain` or fix the path")
    return load_video_encoder(path)


def _build_model(cfg: FinetuneConfig, targets: Sequence[str]) -> StudyModel:
    encoder = load_encoder(cfg)
    prior = None
    if cfg.head.prompt_prior:
        if not cfg.clip_path:
            raise ConfigError("head.prompt_prior needs clip_path (the clip.pt written by `cmrclip pretrain`)")
        prompts = Path(cfg.prompts_file) if cfg.prompts_file else None
        prior = prompt_classifier(Path(cfg.clip_path), targets, prompts)
    return StudyModel(encoder, encoder.video_proj, encoder.out_dim, cfg.head, targets, cfg.regression, prior)


def _cache(
    model: StudyModel,
    ds: StudyBagDataset,
    device: torch.device,
    progress: ProgressFn,
    store: dict[str, torch.Tensor] | None = None,
) -> list[dict]:
    """Encoder features of every bag, computed once with the frozen encoder (reused from ``store`` if given)."""
    items = []
    store = {} if store is None else store
    model.encoder.eval()
    with torch.no_grad():
        for i, key in enumerate(ds.study_keys):
            if key not in store:
                store[key] = model.encoder.features(ds[i]["clips"].to(device)).cpu()
            items.append(ds.item_info(i) | {"features": store[key]})
            progress("encode clips", i + 1, len(ds))
    return items


def _loader(data: Any, batch_size: int, shuffle: bool, seed: int) -> torch.utils.data.DataLoader:
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        data, batch_size=batch_size, shuffle=shuffle, collate_fn=collate_bags, generator=gen, drop_last=False
    )


def _forward(model: StudyModel, batch: dict[str, Any], device: torch.device) -> Any:
    mask = batch["clip_mask"].to(device)
    if "features" in batch:
        return model(mask, features=batch["features"].to(device))
    return model(mask, clips=batch["clips"].to(device))


def _to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _train_stats(model: StudyModel, ds: StudyBagDataset) -> torch.Tensor:
    """Set the output scaling from the training labels and return the per-label positive weights."""
    reg = torch.from_numpy(ds.reg_values[[r for r, _ in ds.entries]])
    if reg.shape[1]:
        known = ~torch.isnan(reg)
        center = [
            float(reg[known[:, j], j].mean()) if known[:, j].any() else float(model.reg_center[j])
            for j in range(reg.shape[1])
        ]
        spread = [
            float(reg[known[:, j], j].std()) if known[:, j].sum() > 2 else float(model.reg_scale[j])
            for j in range(reg.shape[1])
        ]
        model.set_regression_stats(center, [s if math.isfinite(s) and s > 0 else 1.0 for s in spread])
    labels = torch.from_numpy(ds.labels[[r for r, _ in ds.entries]])
    return pos_weights(torch.nan_to_num(labels), ~torch.isnan(labels))


def _epoch(model, loader, opt, sched, pos_weight, cfg, device) -> float:  # noqa: ANN001
    model.train()
    total, n = 0.0, 0
    for batch in loader:
        out = _forward(model, batch, device)
        loss = study_loss(out, _to(batch, device), model, pos_weight, cfg.huber_delta).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip:
            nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.optim.grad_clip)
        opt.step()
        sched.step()
        total, n = total + loss.item() * len(batch["study_key"]), n + len(batch["study_key"])
    return total / max(n, 1)


@torch.no_grad()
def _predict(model: StudyModel, loader: Any, device: torch.device) -> dict[str, Any]:
    model.eval()
    keys, patients, reg, reg_true, scores, labels, emb = [], [], [], [], [], [], []
    for batch in loader:
        out = _forward(model, batch, device)
        keys += batch["study_key"]
        patients += batch["patient_key"]
        reg.append(out.regression.cpu())
        reg_true.append(batch["regression"].masked_fill(~batch["regression_mask"], math.nan))
        scores.append(torch.sigmoid(out.logits).cpu())
        labels.append(batch["targets"].masked_fill(~batch["target_mask"], math.nan))
        emb.append(nn.functional.normalize((out.attention.unsqueeze(-1) * out.embeddings).sum(1), dim=-1).cpu())
    cat = lambda xs, k: torch.cat(xs) if xs else torch.zeros(0, k)  # noqa: E731
    return {
        "study_key": keys,
        "patient_key": patients,
        "reg": cat(reg, len(model.regression)),
        "reg_true": cat(reg_true, len(model.regression)),
        "scores": cat(scores, len(model.targets)),
        "labels": cat(labels, len(model.targets)),
        "embeddings": cat(emb, 1),
    }


def predictions_table(pred: dict[str, Any], targets: Sequence[str], regression: Sequence[str]) -> pd.DataFrame:
    """The predictions table (docs §6).

    Columns: ``study_key``, ``patient_key``, ``<reg>_pred`` and ``<reg>`` (e.g. ``lvef_pred``, ``lvef``), then
    ``<key>_score`` and ``<key>`` per condition (truth NaN = unknown).
    """
    cols: dict[str, Any] = {"study_key": pred["study_key"], "patient_key": pred["patient_key"]}
    for j, name in enumerate(regression):
        cols[f"{name}_pred"] = pred["reg"][:, j].numpy()
        cols[name] = pred["reg_true"][:, j].numpy()
    for j, key in enumerate(targets):
        cols[f"{key}_score"] = pred["scores"][:, j].numpy()
        cols[key] = pred["labels"][:, j].numpy()
    return pd.DataFrame(cols)


def _summary(pred: dict[str, Any], prefix: str, regression: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {f"{prefix}_n": float(len(pred["study_key"]))}
    for j, name in enumerate(regression):
        err = (pred["reg"][:, j] - pred["reg_true"][:, j]).abs()
        err = err[~torch.isnan(err)]
        out[f"{prefix}_{name}_mae"] = float(err.mean()) if len(err) else math.nan
    return out


def _youden_thresholds(pred: dict[str, Any], targets: Sequence[str]) -> dict[str, float]:
    """Per condition, the validation score threshold maximising sensitivity + specificity (0.5 without both classes)."""
    out = {}
    for j, key in enumerate(targets):
        y, s = pred["labels"][:, j].numpy(), pred["scores"][:, j].numpy()
        known = ~np.isnan(y)
        y, s = y[known], s[known]
        if y.size == 0 or y.min() == y.max():
            out[key] = 0.5
            continue
        cands = np.unique(s)
        j_stat = [(s[y == 1] >= c).mean() + (s[y == 0] < c).mean() for c in cands]
        out[key] = float(cands[int(np.argmax(j_stat))])
    return out


def _trained_info(encoder: nn.Module, splits: _Splits) -> CheckpointInfo:
    """The encoder's info with this run's training and validation patients added to its upstream ones."""
    info = getattr(encoder, "info", None) or CheckpointInfo(preset=encoder.config.name)
    used = {e.patient_key for ds in (splits.train, splits.val) for _, e in ds.entries}
    upstream = info.train_patients
    patients = sorted(used | set(upstream or ()))
    return CheckpointInfo.from_dict(info.to_dict() | {"train_patients": patients, "recipe": splits.recipe.model_dump()})


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def _fit(cfg, model, splits, device, progress, feature_cache) -> tuple[dict, list[dict]]:  # noqa: ANN001
    """Train for ``cfg.epochs``; keep the weights of the epoch with the lowest validation loss."""
    pos_weight = _train_stats(model, splits.train).to(device)
    groups = configure_trainable(model, cfg.mode, cfg.optim.lr, cfg.encoder_lr)
    opt = torch.optim.AdamW(groups, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay, betas=cfg.optim.betas)
    check_optimizer_covers(model, opt)
    cached = cfg.cache_features and cfg.mode in ("linear", "projection")
    data = {
        n: _cache(model, getattr(splits, n), device, progress, feature_cache) if cached else getattr(splits, n)
        for n in ("train", "val", "test")
    }
    train_loader = _loader(data["train"], cfg.batch_size, True, cfg.seed)
    val_loader = _loader(data["val"], cfg.batch_size, False, cfg.seed)
    sched = build_scheduler(opt, cfg.optim, cfg.epochs * len(train_loader))
    history, best, best_loss = [], None, math.inf
    for epoch in range(cfg.epochs):
        if not cached:
            splits.train.set_epoch(epoch)
        train_loss = _epoch(model, train_loader, opt, sched, pos_weight, cfg, device)
        val_loss = _eval_loss(model, val_loader, pos_weight, cfg, device) if len(data["val"]) else train_loss
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": sched.get_last_lr()[0]})
        if val_loss < best_loss:
            best_loss, best = val_loss, {k: v.detach().clone() for k, v in model.state_dict().items()}
        progress("finetune", epoch + 1, cfg.epochs)
    model.load_state_dict(best)
    return data, history


def _ood_calibration(model, splits, data, val, cfg, device) -> dict[str, torch.Tensor]:  # noqa: ANN001
    """The OOD guard (:mod:`cmrclip.models.ood`) fitted on the training studies, thresholds from validation."""
    if len(splits.train) < 2:
        logger.warning("%d training studies: the bundle gets no out-of-distribution guard", len(splits.train))
        return {}
    train = _predict(model, _loader(data["train"], cfg.batch_size, False, 0), device)
    stats = [
        np.stack([input_statistics(ds[i]["clips"]) for i in range(len(ds))]) if len(ds) else np.zeros((0, 1))
        for ds in (splits.train, splits.val)
    ]
    guard = fit_ood_guard(train["embeddings"].numpy(), stats[0], val["embeddings"].numpy(), stats[1])
    return guard.to_calibration()


@torch.no_grad()
def _eval_loss(model, loader, pos_weight, cfg, device) -> float:  # noqa: ANN001
    model.eval()
    total, n = 0.0, 0
    for batch in loader:
        loss = study_loss(_forward(model, batch, device), _to(batch, device), model, pos_weight, cfg.huber_delta)
        total, n = total + float(loss.total) * len(batch["study_key"]), n + len(batch["study_key"])
    return total / max(n, 1)


def run_finetune(
    cfg: FinetuneConfig,
    progress: ProgressFn = null_progress,
    feature_cache: dict[str, torch.Tensor] | None = None,
) -> FinetuneResult:
    """Train a study model on the store's training split and write the run's outputs to ``cfg.out_dir``.

    Args:
        cfg: the run's config.
        progress: progress callback.
        feature_cache: study key -> cached encoder features, shared by runs with the same frozen encoder, store and
            bag config (the data-efficiency grid); used only when features are cached.

    Raises:
        ConfigError: for an inconsistent config (mode vs. encoder_path, unknown targets).
        DataError: if the store has no usable training study.
    """
    torch.manual_seed(cfg.seed)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir, cfg.seed)
    device = torch.device(cfg.device)
    targets = _target_list(cfg)
    model = _build_model(cfg, targets).to(device)
    splits = _datasets(cfg, StudyStore(Path(cfg.store_root)), model.encoder)
    faults = splits.train.faults + splits.val.faults + splits.test.faults
    _write_jsonl(out_dir / "faults.jsonl", [f.__dict__ for f in faults])
    if len(splits.train) == 0:
        raise DataError(
            f"no usable training study in {cfg.store_root} (label fraction {cfg.label_fraction}); "
            f"{len(faults)} studies were skipped, see {out_dir / 'faults.jsonl'}"
        )
    data, history = _fit(cfg, model, splits, device, progress, feature_cache)
    preds = {n: _predict(model, _loader(data[n], cfg.batch_size, False, 0), device) for n in ("val", "test")}
    metrics: dict[str, float] = {
        "best_val_loss": min(h["val_loss"] for h in history),
        "train_n": len(splits.train),
        "labelled_n": len(splits.train) + len(splits.val),  # every label the run used: train and validation
    }
    for name in ("val", "test"):
        predictions_table(preds[name], targets, cfg.regression).to_csv(out_dir / f"predictions_{name}.csv", index=False)
        metrics |= _summary(preds[name], name, cfg.regression)
    _write_jsonl(out_dir / "metrics.jsonl", [*history, {"final": metrics}])
    val = preds["val"]
    calibration = {k: val[k] for k in ("study_key", "scores", "labels", "embeddings")}
    if cfg.regression and cfg.regression[0] == "lvef":
        calibration |= {"lvef_pred": val["reg"][:, 0], "lvef_true": val["reg_true"][:, 0]}
    model.encoder.info = _trained_info(model.encoder, splits)
    thresholds = _youden_thresholds(val, targets)
    calibration |= _ood_calibration(model, splits, data, val, cfg, device)
    bundle = save_bundle(out_dir / "model.pt", model, calibration, thresholds, metrics, recipe=splits.recipe)
    logger.info("finetune done: %s", metrics)
    return FinetuneResult(out_dir=out_dir, bundle=bundle, metrics=metrics, faults=faults)
