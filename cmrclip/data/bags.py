"""A study as a bag of clips: one clip per long-axis view and per selected short-axis slice, padded in batches.

The bag of a study holds one clip for each 2CH/3CH/4CH cine and for a subset of its SAX slices (drop the extreme
basal/apical slices, keep every k-th), as the original system did. Batches hold several studies with different
numbers of clips: :func:`collate_bags` pads them and returns a ``clip_mask``. Unknown labels (NULL in the manifest)
are kept as NaN and become ``target_mask`` False, so the loss ignores them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from cmrclip.conditions import condition_keys
from cmrclip.config import StrictModel
from cmrclip.data.sampling import ViewShape, cycle_frame_indices, study_clips
from cmrclip.errors import DataError, LabelError, StoreError

__all__ = [
    "BagConfig",
    "ClipRef",
    "Fault",
    "StudyBagDataset",
    "bag_count_summary",
    "collate_bags",
    "frame_indices",
    "label_matrix",
    "plan_bag",
]

logger = logging.getLogger(__name__)

View = Literal["SAX", "2CH", "3CH", "4CH"]
ClipTransform = Callable[[np.ndarray], torch.Tensor]
NORMAL = "normal"


class BagConfig(StrictModel):
    """Which clips make up a study's bag."""

    views: tuple[View, ...] = ("4CH", "2CH", "3CH", "SAX")
    required_views: tuple[View, ...] = ()
    sax_drop_extremes: bool = True
    sax_every: int = 2
    max_clips: int = 32
    frames: int = 16


@dataclass(frozen=True)
class ClipRef:
    """One clip of a bag: a view and a slice index within it."""

    view: str
    slice_index: int


@dataclass(frozen=True)
class Fault:
    """A study that was skipped, and why (the fault list of a run)."""

    study: str
    stage: str
    reason: str


def plan_bag(study: str, views: Mapping[str, ViewShape], cfg: BagConfig) -> list[ClipRef]:
    """List the clips of a study's bag from its views' metadata (via :func:`cmrclip.data.sampling.study_clips`).

    Args:
        study: the study key (named in error messages).
        views: view name -> metadata with ``n_slices`` and ``n_frames`` (``StudyFile.views``).
        cfg: the bag config.

    Raises:
        StoreError: if the study lacks a view listed in ``cfg.required_views``, or no clip is usable.
    """
    missing = [v for v in cfg.required_views if v not in views]
    if missing:
        raise StoreError(
            f"study {study}: the store has no {missing} view(s) (it has {sorted(views)}); "
            "remove them from bags.required_views or re-ingest the study with those series"
        )
    usable = {v: m for v, m in views.items() if m.n_frames >= 1 and m.n_slices >= 1}
    try:
        specs = study_clips(usable, cfg.frames, list(cfg.views), cfg.sax_drop_extremes, cfg.sax_every)
    except DataError as exc:
        raise StoreError(
            f"study {study}: no usable clip among views {list(cfg.views)} (the store has {sorted(views)}); "
            "check the study's ingest or widen bags.views"
        ) from exc
    refs = [ClipRef(s.view, s.slice_index) for s in specs]
    if len(refs) > cfg.max_clips:
        keep = np.linspace(0, len(refs) - 1, cfg.max_clips).round().astype(int)
        refs = [refs[i] for i in keep]
    return refs


def frame_indices(n_frames: int, frames: int, offset: float = 0.0) -> np.ndarray:
    """``frames`` indices over one cycle of ``n_frames``, starting at phase ``offset`` in [0, 1) of the cycle."""
    return cycle_frame_indices(n_frames, frames, int(offset * n_frames))


def _derive_normal(values: np.ndarray) -> np.ndarray:
    """1 where every condition is known and 0, 0 where any is 1, NaN otherwise."""
    any_pos = np.nan_to_num(values, nan=0.0).max(axis=1) > 0
    all_known = ~np.isnan(values).any(axis=1)
    out = np.full(len(values), np.nan, dtype=np.float32)
    out[any_pos] = 0.0
    out[all_known & ~any_pos] = 1.0
    return out


def label_matrix(manifest: pd.DataFrame, targets: Sequence[str]) -> np.ndarray:
    """The ``[n_studies, K]`` float32 label matrix of ``targets`` (NaN = unknown), with ``normal`` derived.

    Raises:
        LabelError: for a target that is neither a condition key nor ``normal``, a condition column missing from the
            manifest, or values other than 0/1/NULL.
    """
    keys = condition_keys()
    unknown = [t for t in targets if t not in keys and t != NORMAL]
    if unknown:
        raise LabelError(f"unknown label name(s) {unknown}; use keys from cmrclip/configs/conditions.yaml or 'normal'")
    needed = [t for t in targets if t != NORMAL] + (keys if NORMAL in targets else [])
    absent = sorted({c for c in needed if c not in manifest.columns})
    if absent:
        raise LabelError(f"the manifest has no label column(s) {absent[:5]}; add them with StudyStore.add_labels")
    out = np.full((len(manifest), len(targets)), np.nan, dtype=np.float32)
    for j, name in enumerate(targets):
        if name == NORMAL:
            out[:, j] = _derive_normal(manifest[keys].to_numpy(dtype=np.float32))
            continue
        col = pd.to_numeric(manifest[name], errors="coerce").to_numpy(dtype=np.float32)
        bad = ~np.isnan(col) & (col != 0) & (col != 1)
        if bad.any():
            where = manifest["study_key"].iloc[int(np.argmax(bad))]
            raise LabelError(f"label column {name!r} holds {col[bad][0]} for study {where}; use 1, 0 or empty")
        n_missing = int(np.isnan(col).sum())
        if n_missing:
            logger.info("label column %r: %d missing value(s) are masked", name, n_missing)
        out[:, j] = col
    return out


@dataclass
class _Entry:
    study_key: str
    patient_key: str
    refs: list[ClipRef]
    n_frames: dict[str, int]


@dataclass
class StudyBagDataset(torch.utils.data.Dataset):
    """Study bags from a study store (``cmrclip.ingest.store.StudyStore`` or anything with its read API).

    Studies that cannot be used (missing view, no clip, unreadable file) are skipped at construction and listed in
    ``faults``; the run goes on without them.

    Args:
        store: object with ``open(study_key)`` returning a context manager with ``views`` and ``read_clip``.
        manifest: the rows to use (``study_key``, ``patient_key``, label columns).
        targets: condition keys (and optionally ``normal``) to predict.
        regression: numeric columns to predict (e.g. ``["lvef"]``); NULL values are masked.
        cfg: which clips form a bag.
        clip_transform: maps a ``[T, H, W]`` float array in [0, 1] to a ``[3, T, H', W']`` tensor, e.g.
            ``cmrclip.data.transforms.build_clip_transform``; if it has ``apply(clip, rng)`` it is re-drawn per
            clip when training.
        train: random phase offset per clip when True (seeded), phase 0 otherwise.
        seed: seed of the phase offsets.
    """

    store: Any
    manifest: pd.DataFrame
    targets: Sequence[str]
    regression: Sequence[str]
    cfg: BagConfig
    clip_transform: ClipTransform
    train: bool = False
    seed: int = 0
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.manifest = self.manifest.reset_index(drop=True)
        self.labels = label_matrix(self.manifest, self.targets)
        self.reg_values = self._regression_matrix()
        self.entries: list[tuple[int, _Entry]] = []
        for i, row in self.manifest.iterrows():
            entry = self._plan(str(row["study_key"]), str(row.get("patient_key", "")))
            if entry is not None:
                self.entries.append((int(i), entry))
        self._epoch = 0

    def _regression_matrix(self) -> np.ndarray:
        absent = [c for c in self.regression if c not in self.manifest.columns]
        if absent:
            raise LabelError(
                f"the manifest has no regression column(s) {absent}; known numeric targets come from ingest"
            )
        cols = [pd.to_numeric(self.manifest[c], errors="coerce") for c in self.regression]
        return np.stack(cols, axis=1).astype(np.float32) if cols else np.zeros((len(self.manifest), 0), np.float32)

    def _plan(self, study_key: str, patient_key: str) -> _Entry | None:
        try:
            with self.store.open(study_key) as study:
                views = dict(study.views)
            refs = plan_bag(study_key, views, self.cfg)
        except (DataError, OSError, KeyError) as exc:
            self.faults.append(Fault(study_key, "bag", str(exc)))
            logger.warning("skipping study %s: %s", study_key, exc)
            return None
        return _Entry(study_key, patient_key, refs, {v: int(m.n_frames) for v, m in views.items()})

    def set_epoch(self, epoch: int) -> None:
        """Change the random phase offsets of the next pass (training only)."""
        self._epoch = epoch

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def study_keys(self) -> list[str]:
        """Keys of the usable studies, in dataset order."""
        return [e.study_key for _, e in self.entries]

    def item_info(self, index: int) -> dict[str, Any]:
        """Item ``index`` without its clips (views, targets, regression values, keys): no file is read."""
        row, entry = self.entries[index]
        return {
            "views": [r.view for r in entry.refs],
            "targets": torch.from_numpy(self.labels[row]),
            "regression": torch.from_numpy(self.reg_values[row]),
            "study_key": entry.study_key,
            "patient_key": entry.patient_key,
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        _, entry = self.entries[index]
        rng = np.random.default_rng([self.seed, self._epoch, index])
        clips = []
        with self.store.open(entry.study_key) as study:
            for ref in entry.refs:
                offset = float(rng.random()) if self.train else 0.0
                frames = frame_indices(entry.n_frames[ref.view], self.cfg.frames, offset)
                clip = study.read_clip(ref.view, ref.slice_index, frames)
                if self.train and hasattr(self.clip_transform, "apply"):
                    clips.append(self.clip_transform.apply(clip, rng))
                else:
                    clips.append(self.clip_transform(clip))
        return {"clips": torch.stack(clips), **self.item_info(index)}


def _pad(tensors: list[torch.Tensor], n: int) -> torch.Tensor:
    out = tensors[0].new_zeros((len(tensors), n, *tensors[0].shape[1:]))
    for i, t in enumerate(tensors):
        out[i, : len(t)] = t
    return out


def collate_bags(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad bags of different sizes into one batch (works for ``clips`` or cached ``features`` bags).

    Returns:
        ``{"clips" or "features": [B, N, ...], "clip_mask": [B, N] bool, "views": list[list[str]], "targets":
        [B, K] (0 where unknown), "target_mask": [B, K] bool, "regression": [B, R], "regression_mask": [B, R],
        "lvef": [B] and "lvef_mask": [B] (the first regression column), "study_key", "patient_key"}``.
    """
    if not items:
        raise DataError("collate_bags got an empty batch")
    key = "clips" if "clips" in items[0] else "features"
    sizes = [len(it[key]) for it in items]
    n = max(sizes)
    mask = torch.arange(n)[None, :] < torch.tensor(sizes)[:, None]
    targets = torch.stack([it["targets"] for it in items]).float()
    regression = torch.stack([it["regression"] for it in items]).float()
    batch = {
        key: _pad([it[key] for it in items], n),
        "clip_mask": mask,
        "views": [list(it["views"]) for it in items],
        "targets": torch.nan_to_num(targets, nan=0.0),
        "target_mask": ~torch.isnan(targets),
        "regression": torch.nan_to_num(regression, nan=0.0),
        "regression_mask": ~torch.isnan(regression),
        "study_key": [it["study_key"] for it in items],
        "patient_key": [it.get("patient_key", "") for it in items],
    }
    if regression.shape[1]:
        batch["lvef"] = batch["regression"][:, 0]
        batch["lvef_mask"] = batch["regression_mask"][:, 0]
    return batch


def bag_count_summary(dataset: StudyBagDataset) -> str:
    """One line describing the bags (studies, clips per study, faults)."""
    sizes = [len(e.refs) for _, e in dataset.entries]
    mean = sum(sizes) / len(sizes) if sizes else math.nan
    return f"{len(sizes)} studies, {mean:.1f} clips/study, {len(dataset.faults)} skipped"
