"""Labelled stacks: realistic hearts rendered in memory for training."""

from __future__ import annotations

import numpy as np
import pytest

from cmrclip.segment.data import realistic_stacks
from cmrclip.synth.hearts import load_real_hearts


@pytest.mark.slow
def test_realistic_stacks_are_ed_es_pairs_of_the_given_heart(shared_data):
    hearts = load_real_hearts(mnms2=[shared_data / "mnms2_subject001"])
    stacks = realistic_stacks(hearts, 2, seed=3)
    assert len(stacks) == 2
    for stack in stacks:
        assert stack.source == "realistic" and stack.subject.endswith(hearts[0].subject)
        assert stack.images.shape == stack.labels.shape and stack.images.shape[1] == 2
        assert set(np.unique(stack.labels)) == {0, 1, 2, 3}
        lv = (stack.labels == 1).sum(axis=(0, 2, 3))
        assert lv[0] > 1.2 * lv[1]  # ED first, a contracting ES second
        assert stack.pixel_spacing_mm is not None and stack.slice_spacing_mm and stack.slice_spacing_mm > 0
