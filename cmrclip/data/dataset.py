"""Pretraining dataset over the study store: one clip (or ``k`` clips) and one text sample of its report per study.

Randomness comes only from a generator seeded by ``(seed, epoch, index)``, so a sample does not depend on which
worker reads it or on how many were read before: a run resumed mid-epoch draws the same clips. The report text
sampler and the clip normalisation are injected by the caller (``data`` does not import ``text`` or ``models``).
Each worker opens the store lazily, and every study file is closed right after its clip is read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cmrclip.data.sampling import sample_study_clips
from cmrclip.data.transforms import Compose, RandTemporalJitter, seed_from
from cmrclip.errors import DataError
from cmrclip.ingest.store import StudyStore

__all__ = ["PretrainDataset", "TextSampler", "studies_with_reports"]

logger = logging.getLogger(__name__)

TextSampler = Callable[[str, np.random.Generator], str]
"""``sampler(report, rng) -> text``: picks sections/sentences of a report (``cmrclip.text.sampling``)."""


def studies_with_reports(manifest: pd.DataFrame) -> pd.DataFrame:
    """Keep the manifest rows usable for pretraining (a non-empty report), sorted by ``study_key``.

    Raises:
        DataError: if the manifest lacks the needed columns or no study has a report.
    """
    missing = [c for c in ("study_key", "patient_key", "report") if c not in manifest.columns]
    if missing:
        raise DataError(f"the manifest lacks column(s) {missing}; ingest the reports with `cmrclip ingest --reports`")
    has_text = manifest["report"].notna() & (manifest["report"].astype(str).str.strip() != "")
    kept = manifest.loc[has_text].sort_values("study_key").reset_index(drop=True)
    if kept.empty:
        raise DataError(f"none of the {len(manifest)} studies has a report; pretraining needs report text")
    if len(kept) < len(manifest):
        logger.info("pretraining on %d of %d studies (the others have no report)", len(kept), len(manifest))
    return kept


class PretrainDataset(torch.utils.data.Dataset):
    """(clip, report text) pairs, one per study.

    Items are dicts: ``video`` float32 ``[3, T, H, W]`` (after ``transform``; ``[k, 3, T, H, W]`` when
    ``clips_per_study=k > 1``), ``text`` str, ``study_key``, ``patient_key``, ``index`` int, ``view`` str and
    ``slice_index`` int (of the first clip).
    """

    def __init__(
        self,
        store_root: Path,
        studies: pd.DataFrame,
        transform: Compose,
        text_sampler: TextSampler | None = None,
        n_frames: int = 16,
        seed: int = 0,
        train: bool = True,
        allowed_views: Sequence[str] | None = None,
        temporal_jitter: RandTemporalJitter | None = None,
        drop_sax_ends: bool = True,
        clips_per_study: int = 1,
    ) -> None:
        """Set up the dataset (nothing is opened until the first item is read).

        Args:
            store_root: the study store folder.
            studies: manifest rows to use (see :func:`studies_with_reports`); ``report`` holds the text.
            transform: clip pipeline from ``[T, H, W]`` in [0, 1] to a model input (randomized per item).
            text_sampler: report -> text sample; ``None`` uses the whole report.
            n_frames: frames per clip.
            seed: base seed of every draw.
            train: random phase offsets; when False every item is the same clip at every epoch.
            allowed_views: restrict clips to these views.
            temporal_jitter: optional per-frame index jitter (training only).
            drop_sax_ends: skip the first and last SAX slice when there are more than 5.
            clips_per_study: clips per draw (:func:`~cmrclip.data.sampling.sample_study_clips`: distinct views
                first, then more SAX slices), stacked so that the model can embed the study from all of them.
        """
        self.store_root = Path(store_root)
        self.keys = studies["study_key"].astype(str).tolist()
        self.patients = studies["patient_key"].astype(str).tolist()
        self.reports = studies["report"].astype(str).tolist()
        self.transform, self.text_sampler = transform, text_sampler
        self.n_frames, self.seed, self.train = n_frames, seed, train
        self.allowed_views, self.drop_sax_ends = allowed_views, drop_sax_ends
        self.clips_per_study = int(clips_per_study)
        self.temporal_jitter = temporal_jitter if train else None
        self.epoch = 0
        self._store: StudyStore | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_store"] = None  # each worker opens its own
        return state

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draws ``__getitem__`` returns (call before creating the loader's iterator)."""
        self.epoch = int(epoch)

    @property
    def store(self) -> StudyStore:
        """The study store, opened on first use in each process."""
        if self._store is None:
            self._store = StudyStore(self.store_root)
        return self._store

    def rng_for(self, index: int) -> np.random.Generator:
        """The generator of one draw: seeded by (seed, epoch, index) in training, (seed, index) otherwise."""
        words = [self.seed, self.epoch, index] if self.train else [self.seed, 2**31 - 1, index]
        return np.random.default_rng(words)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Read one study's clip and text sample.

        Raises:
            StoreError: if the study file cannot be read (the study is named; nothing is substituted).
        """
        rng = self.rng_for(index)
        key = self.keys[index]
        with self.store.open(key) as study:
            specs = sample_study_clips(
                study.views, rng, self.clips_per_study, self.n_frames, self.allowed_views, random_phase=self.train,
                drop_sax_ends=self.drop_sax_ends,
            )  # fmt: skip
            clips = []
            for spec in specs:
                frames = np.asarray(spec.frames)
                if self.temporal_jitter is not None:
                    frames = seed_from(self.temporal_jitter, rng)(frames, study.views[spec.view].n_frames)
                clips.append(study.read_clip(spec.view, spec.slice_index, frames))
        videos = [self.transform.apply(clip, rng) for clip in clips]
        video = videos[0] if self.clips_per_study == 1 else torch.stack(videos)
        text = self.text_sampler(self.reports[index], rng) if self.text_sampler else self.reports[index]
        return {
            "video": video,
            "text": text,
            "study_key": key,
            "patient_key": self.patients[index],
            "index": index,
            "view": specs[0].view,
            "slice_index": specs[0].slice_index,
        }
