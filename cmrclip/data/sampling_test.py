from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from cmrclip.data.sampling import (
    ClipSpec,
    cycle_frame_indices,
    legacy_slice_ranges,
    sample_clip,
    sample_study_clips,
    sax_slice_choices,
    study_clips,
)
from cmrclip.errors import DataError


@dataclass
class Meta:
    n_slices: int
    n_frames: int


VIEWS = {"SAX": Meta(10, 25), "4CH": Meta(1, 30), "2CH": Meta(1, 12)}


def test_cycle_spans_whole_cycle_uniformly():
    idx = cycle_frame_indices(32, 16, 0)
    assert idx.tolist() == list(range(0, 32, 2))
    idx = cycle_frame_indices(25, 16, 0)
    assert idx[0] == 0 and idx[-1] >= 23 and np.all(np.diff(idx) >= 1)


def test_cycle_wraps_within_slice_with_offset():
    idx = cycle_frame_indices(20, 16, offset=19)
    assert idx[0] == 19 and idx.min() >= 0 and idx.max() < 20
    # same set of phases as offset 0, shifted cyclically
    assert sorted(((idx - 19) % 20).tolist()) == cycle_frame_indices(20, 16, 0).tolist()


def test_cycle_repeats_when_fewer_frames():
    idx = cycle_frame_indices(8, 16, 0)
    assert idx.tolist() == [i // 2 for i in range(16)]
    assert cycle_frame_indices(1, 16, 5).tolist() == [0] * 16


def test_cycle_rejects_empty():
    with pytest.raises(DataError, match="must be >= 1"):
        cycle_frame_indices(0, 16)


def test_sample_clip_deterministic_and_in_bounds():
    a = [sample_clip(VIEWS, np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(0)
    seen_views, seen_offsets = set(), set()
    for _ in range(300):
        spec = sample_clip(VIEWS, rng)
        meta = VIEWS[spec.view]
        assert len(spec.frames) == 16
        assert all(0 <= f < meta.n_frames for f in spec.frames)
        if spec.view == "SAX":
            assert 1 <= spec.slice_index <= 8  # ends dropped when > 5 slices
        else:
            assert spec.slice_index == 0
        seen_views.add(spec.view)
        seen_offsets.add((spec.view, spec.frames[0]))
    assert seen_views == {"SAX", "4CH", "2CH"}
    assert len({o for v, o in seen_offsets if v == "4CH"}) > 20  # offsets spread over the 30 frames


def test_sample_clip_fixed_phase_and_allowed_views():
    spec = sample_clip(VIEWS, np.random.default_rng(1), allowed_views=["4CH"], random_phase=False)
    assert spec == ClipSpec("4CH", 0, tuple(cycle_frame_indices(30, 16).tolist()))
    with pytest.raises(DataError, match="no usable view"):
        sample_clip(VIEWS, np.random.default_rng(1), allowed_views=["3CH"])


def test_sample_study_clips_covers_views_then_distinct_sax_slices():
    rng = np.random.default_rng(0)
    for _ in range(50):
        specs = sample_study_clips(VIEWS, rng, k=5)
        assert len(specs) == 5
        assert {s.view for s in specs} == {"SAX", "4CH", "2CH"}  # every view when k >= their number
        sax = [s.slice_index for s in specs if s.view == "SAX"]
        assert len(sax) == 3 and len(set(sax)) == 3 and all(1 <= i <= 8 for i in sax)
        assert all(0 <= f < VIEWS[s.view].n_frames for s in specs for f in s.frames)
    two = [tuple(s.view for s in sample_study_clips(VIEWS, rng, k=2)) for _ in range(200)]
    assert all(len(set(v)) == 2 for v in two) and len(set(two)) == 3  # distinct views, every pair drawn
    again = [sample_study_clips(VIEWS, np.random.default_rng(3), k=4) for _ in range(2)]
    assert again[0] == again[1]


def test_sample_study_clips_without_sax_repeats_views():
    specs = sample_study_clips({"4CH": Meta(1, 30)}, np.random.default_rng(0), k=3, random_phase=False)
    assert [s.view for s in specs] == ["4CH"] * 3
    with pytest.raises(DataError, match="at least one clip"):
        sample_study_clips(VIEWS, np.random.default_rng(0), k=0)


def test_study_clips_enumerates_views_and_slices():
    clips = study_clips(VIEWS)
    assert [c.view for c in clips] == ["4CH", "2CH"] + ["SAX"] * 8
    assert [c.slice_index for c in clips if c.view == "SAX"] == list(range(1, 9))
    assert len(study_clips(VIEWS, sax_stride=2)) == 2 + 4
    assert sax_slice_choices(4).tolist() == [0, 1, 2, 3]


def test_legacy_slice_ranges_never_cross_boundaries():
    # 3 slices of 20 frames: last frames at 19 and 39
    ranges = legacy_slice_ranges([19, 39], 60)
    assert ranges == [range(0, 20), range(20, 40), range(40, 60)]
    assert legacy_slice_ranges([], 16) == [range(16)]
    with pytest.raises(DataError, match="non-empty slices"):
        legacy_slice_ranges([19, 19], 60)
