"""The zero-shot job (``cmrclip zeroshot``): score a store's studies with the prompt classifiers, and retrieval.

Conditions and LVEF come from ``cmrclip.models.prompts``; every number is also computed with a seeded random video
tower of the same architecture, so each can be read beside chance. Studies come from the store's one split (the
``test`` split by default); the job refuses a CLIP model that was pretrained on one of the store's test patients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from cmrclip.conditions import condition_keys
from cmrclip.config import StrictModel
from cmrclip.data.bags import BagConfig, StudyBagDataset
from cmrclip.data.store_split import check_no_test_leak, ensure_split
from cmrclip.ingest.store import StudyStore
from cmrclip.models.heads import study_embedding
from cmrclip.models.prompts import (
    clip_text_fn,
    condition_scores,
    load_clip_model,
    load_prompts,
    lvef_estimates,
    retrieval_recall,
)
from cmrclip.models.recipe import clip_transform, recipe_for
from cmrclip.models.registry import build_video_encoder
from cmrclip.progress import ProgressFn, null_progress

__all__ = ["ZeroshotConfig", "ZeroshotResult", "run_zeroshot"]

logger = logging.getLogger(__name__)


class ZeroshotConfig(StrictModel):
    """``cmrclip zeroshot`` settings."""

    store_root: str = "runs/store"
    clip_path: str = "runs/pretrain/clip.pt"
    out_dir: str = "runs/zeroshot"
    prompts_file: str | None = None
    split: Literal["all", "train", "val", "test"] = "test"
    """The store split to score: ``test`` (default), the studies no model upstream saw; the others include
    studies whose reports (the source of the labels) pretraining read."""
    val_share: float = 0.15
    """Split shares and seed: used only if the store has no split yet (it is then written once to the store)."""
    test_share: float = 0.15
    split_seed: int = 0
    bags: BagConfig = BagConfig()
    random_seed: int = 0
    ks: tuple[int, ...] = (1, 5, 10)


@dataclass
class ZeroshotResult:
    """Predictions tables (docs §6 format) and retrieval recalls, for the CLIP model and a random video tower."""

    predictions: pd.DataFrame
    random_predictions: pd.DataFrame
    retrieval: dict[str, float]
    random_retrieval: dict[str, float]
    n_reports: int


def _rows(cfg: ZeroshotConfig, store: StudyStore, clip: Any) -> pd.DataFrame:
    """The studies to score, after checking that no test patient trained the CLIP model."""
    manifest = ensure_split(store, cfg.val_share, cfg.test_share, cfg.split_seed)
    check_no_test_leak(clip.video.info.train_patients, manifest, f"the CLIP model {cfg.clip_path}")
    if cfg.split == "all":
        logger.warning("zero-shot on every split: train/val scores include reports pretraining read")
        return manifest
    return manifest[manifest["split"] == cfg.split]


@torch.no_grad()
def _study_embeddings(video: Any, ds: StudyBagDataset, progress: ProgressFn, task: str) -> torch.Tensor:
    out = []
    for i in range(len(ds)):
        out.append(study_embedding(video.encode(ds[i]["clips"])[None])[0])
        progress(task, i + 1, len(ds))
    return torch.stack(out) if out else torch.zeros(0, video.config.proj_dim)


def _table(ds: StudyBagDataset, keys: list[str], scores: np.ndarray, lvef: np.ndarray) -> pd.DataFrame:
    rows = [r for r, _ in ds.entries]
    cols: dict[str, Any] = {"study_key": ds.study_keys, "patient_key": [e.patient_key for _, e in ds.entries]}
    cols |= {"lvef_pred": lvef, "lvef": ds.reg_values[rows, 0]}
    for j, key in enumerate(keys):
        cols[f"{key}_score"] = scores[:, j]
        cols[key] = ds.labels[rows, j]
    return pd.DataFrame(cols)


def _evaluate(video: Any, ctx: dict[str, Any], progress: ProgressFn, task: str) -> tuple[pd.DataFrame, dict]:
    emb = _study_embeddings(video, ctx["ds"], progress, task)
    scores = condition_scores(emb, ctx["text_fn"], ctx["prompts"], ctx["keys"], ctx["scale"])
    lvef = lvef_estimates(emb, ctx["text_fn"], ctx["prompts"].lvef, ctx["scale"])
    recall = retrieval_recall(emb[ctx["with_report"]], ctx["report_emb"], ctx["ks"]) if len(ctx["report_emb"]) else {}
    return _table(ctx["ds"], ctx["keys"], scores, lvef), recall


def run_zeroshot(cfg: ZeroshotConfig, progress: ProgressFn = null_progress) -> ZeroshotResult:
    """Score every selected study by prompts, estimate LVEF, and measure retrieval; also with a random video tower.

    Raises:
        CheckpointError: if the CLIP checkpoint cannot be loaded.
        ConfigError, LabelError: for a bad prompts file.
    """
    clip, tokenizer = load_clip_model(Path(cfg.clip_path))
    prompts = load_prompts(Path(cfg.prompts_file) if cfg.prompts_file else None)
    store = StudyStore(Path(cfg.store_root))
    recipe = recipe_for(clip.video, cfg.bags)
    keys = condition_keys()
    rows = _rows(cfg, store, clip)
    ds = StudyBagDataset(store, rows, keys, ["lvef"], recipe.bags, clip_transform(recipe))
    reports = store.manifest().set_index("study_key")["report"].reindex(ds.study_keys)
    with_report = torch.tensor(reports.notna().to_numpy(), dtype=torch.bool)
    text_fn = clip_text_fn(clip, tokenizer)
    texts = [str(t) for t in reports[with_report.numpy()]]
    ctx = {
        "ds": ds, "keys": keys, "prompts": prompts, "text_fn": text_fn, "ks": cfg.ks, "with_report": with_report,
        "scale": float(clip.scale().detach()),
        "report_emb": F.normalize(text_fn(texts), dim=-1) if texts else torch.zeros(0),
    }  # fmt: skip
    predictions, recall = _evaluate(clip.video, ctx, progress, "zero-shot")
    random_video = build_video_encoder(clip.video.config, seed=cfg.random_seed).eval()
    random_predictions, random_recall = _evaluate(random_video, ctx, progress, "zero-shot (random encoder)")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(out_dir / "predictions_zeroshot.csv", index=False)
    random_predictions.to_csv(out_dir / "predictions_zeroshot_random.csv", index=False)
    logger.info("zero-shot on %d studies (%d with reports); %d skipped", len(ds), len(texts), len(ds.faults))
    return ZeroshotResult(predictions, random_predictions, recall, random_recall, len(texts))
