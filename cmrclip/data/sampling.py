"""Clip sampling: which view, slice and frames of a study make one training or inference clip.

A clip is ``n_out`` frames spread uniformly over one slice's whole cardiac cycle. Frame indices always index a single
slice (``[0, F)``), so a clip can never start or end in a neighbouring slice (the original system's off-by-one).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cmrclip.errors import DataError

__all__ = [
    "VIEW_ORDER",
    "ClipSpec",
    "ViewShape",
    "cycle_frame_indices",
    "legacy_slice_ranges",
    "sample_clip",
    "sample_study_clips",
    "sax_slice_choices",
    "study_clips",
]

logger = logging.getLogger(__name__)

VIEW_ORDER = ("4CH", "2CH", "3CH", "SAX")
"""Views in the order clips of a study are enumerated."""


class ViewShape(Protocol):
    """What sampling needs to know about a view (the store's ``ViewMeta`` satisfies it)."""

    @property
    def n_slices(self) -> int:
        """Number of slices (1 for long-axis views)."""
        ...

    @property
    def n_frames(self) -> int:
        """Frames per slice (one cardiac cycle)."""
        ...


@dataclass(frozen=True)
class ClipSpec:
    """One clip of a study: a view, one of its slices, and frame indices within that slice.

    Attributes:
        view: ``"SAX"``, ``"2CH"``, ``"3CH"`` or ``"4CH"``.
        slice_index: slice within the view (0 for long-axis views).
        frames: frame indices in ``[0, n_frames)`` of that slice, in playback order.
    """

    view: str
    slice_index: int
    frames: tuple[int, ...]


def cycle_frame_indices(n_frames: int, n_out: int = 16, offset: int = 0) -> np.ndarray:
    """Indices of ``n_out`` frames spread uniformly over one cycle of ``n_frames``, starting at frame ``offset``.

    The cycle wraps around (frame ``F - 1`` is followed by frame 0 of the same slice). When ``n_frames < n_out``
    frames repeat (nearest-earlier frame); when ``n_frames > n_out`` they are subsampled with an even stride.

    Args:
        n_frames: frames in the slice's cycle (F >= 1).
        n_out: frames in the clip.
        offset: first frame, taken modulo ``n_frames``.

    Returns:
        int64 array ``[n_out]`` with values in ``[0, n_frames)``.

    Raises:
        DataError: if ``n_frames`` or ``n_out`` is not positive.
    """
    if n_frames < 1 or n_out < 1:
        raise DataError(f"cannot sample {n_out} frames from a cycle of {n_frames} frames; both must be >= 1")
    steps = np.floor(np.arange(n_out) * (n_frames / n_out)).astype(np.int64)
    return (steps + int(offset)) % n_frames


def sax_slice_choices(n_slices: int, drop_ends: bool = True) -> np.ndarray:
    """SAX slices eligible for sampling: all, or without the first and last when there are more than 5.

    Basal and apical extremes often show no ventricle; the original system dropped them in the same way.
    """
    if n_slices < 1:
        raise DataError("a SAX view with no slices cannot be sampled; re-ingest the study")
    if drop_ends and n_slices > 5:
        return np.arange(1, n_slices - 1)
    return np.arange(n_slices)


def _ordered_views(views: Mapping[str, ViewShape], allowed: Sequence[str] | None) -> list[str]:
    names = [v for v in VIEW_ORDER if v in views and (allowed is None or v in allowed)]
    if not names:
        have = sorted(views)
        raise DataError(f"study has no usable view (has {have}, allowed {allowed}); check the store or the config")
    return names


def sample_clip(
    views: Mapping[str, ViewShape],
    rng: np.random.Generator,
    n_out: int = 16,
    allowed_views: Sequence[str] | None = None,
    random_phase: bool = True,
    drop_sax_ends: bool = True,
) -> ClipSpec:
    """Draw one clip of a study: a uniformly random view, a random SAX slice, and a random phase offset.

    Args:
        views: the study's views by name.
        rng: the only source of randomness; the same generator state gives the same clip.
        n_out: frames per clip.
        allowed_views: restrict to these views (``None``: all four).
        random_phase: draw the first frame uniformly from the slice's frames (else start at frame 0).
        drop_sax_ends: see :func:`sax_slice_choices`.

    Raises:
        DataError: if the study has no usable view.
    """
    names = _ordered_views(views, allowed_views)
    view = names[int(rng.integers(len(names)))]
    slice_index = 0
    if view == "SAX":
        choices = sax_slice_choices(views[view].n_slices, drop_sax_ends)
        slice_index = int(choices[int(rng.integers(len(choices)))])
    return _clip_at(views[view], view, slice_index, rng, n_out, random_phase)


def _clip_at(
    meta: ViewShape, view: str, slice_index: int, rng: np.random.Generator, n_out: int, random_phase: bool
) -> ClipSpec:
    offset = int(rng.integers(meta.n_frames)) if random_phase else 0
    frames = cycle_frame_indices(meta.n_frames, n_out, offset)
    return ClipSpec(view=view, slice_index=slice_index, frames=tuple(int(f) for f in frames))


def sample_study_clips(
    views: Mapping[str, ViewShape],
    rng: np.random.Generator,
    k: int,
    n_out: int = 16,
    allowed_views: Sequence[str] | None = None,
    random_phase: bool = True,
    drop_sax_ends: bool = True,
) -> list[ClipSpec]:
    """Draw ``k`` clips of one study that together show as much of it as they can.

    Up to ``k`` distinct views are drawn at random (all of them when the study has at most ``k``); the remaining
    clips are further SAX slices (distinct while there are enough, else repeats), or repeats of the drawn views when
    the study has no SAX. Each clip has its own random phase offset. With ``k=1`` this is :func:`sample_clip`.

    Raises:
        DataError: if the study has no usable view or ``k < 1``.
    """
    if k < 1:
        raise DataError(f"a study draw needs at least one clip, got k={k}")
    if k == 1:
        return [sample_clip(views, rng, n_out, allowed_views, random_phase, drop_sax_ends)]
    names = _ordered_views(views, allowed_views)
    picked = [names[i] for i in sorted(rng.permutation(len(names))[: min(k, len(names))])]
    fill = ["SAX" if "SAX" in names else picked[i % len(picked)] for i in range(k - len(picked))]
    chosen = picked + fill
    sax_n = chosen.count("SAX")
    sax_slices: list[int] = []
    if sax_n:
        choices = sax_slice_choices(views["SAX"].n_slices, drop_sax_ends)
        sax_slices = [int(s) for s in rng.choice(choices, size=sax_n, replace=sax_n > len(choices))]
    specs = []
    for view in chosen:
        slice_index = sax_slices.pop() if view == "SAX" else 0
        specs.append(_clip_at(views[view], view, slice_index, rng, n_out, random_phase))
    return specs


def study_clips(
    views: Mapping[str, ViewShape],
    n_out: int = 16,
    allowed_views: Sequence[str] | None = None,
    drop_sax_ends: bool = True,
    sax_stride: int = 1,
) -> list[ClipSpec]:
    """Every clip of a study for inference: each long-axis view and each eligible SAX slice, phase offset 0.

    Args:
        views: the study's views by name.
        n_out: frames per clip.
        allowed_views: restrict to these views (``None``: all four).
        drop_sax_ends: see :func:`sax_slice_choices`.
        sax_stride: keep every ``sax_stride``-th eligible SAX slice (the original kept every second).
    """
    clips = []
    for view in _ordered_views(views, allowed_views):
        meta = views[view]
        frames = tuple(int(f) for f in cycle_frame_indices(meta.n_frames, n_out, 0))
        slices = sax_slice_choices(meta.n_slices, drop_sax_ends)[:: max(1, sax_stride)] if view == "SAX" else [0]
        clips += [ClipSpec(view=view, slice_index=int(s), frames=frames) for s in slices]
    return clips


def legacy_slice_ranges(slice_frames: Sequence[int], total_images: int) -> list[range]:
    """Per-slice frame ranges of the original system's flat HDF5 layout (REFERENCE.md §4).

    ``slice_frames`` holds the index of the **last** frame of every slice but the last, so slice ``i`` spans
    ``(slice_frames[i-1] + 1) .. slice_frames[i]`` inclusive. The original began clips at ``slice_frames[i-1]``,
    one frame into the previous slice; this function is the correct reading.

    Raises:
        DataError: if the boundaries are not increasing or fall outside ``[0, total_images)``.
    """
    ends = [int(e) for e in slice_frames] + [int(total_images) - 1]
    starts = [0] + [e + 1 for e in ends[:-1]]
    if any(s > e for s, e in zip(starts, ends, strict=True)) or total_images < 1:
        raise DataError(
            f"slice_frames {list(slice_frames)} do not split {total_images} frames into non-empty slices; "
            "check the file's attributes"
        )
    return [range(s, e + 1) for s, e in zip(starts, ends, strict=True)]
