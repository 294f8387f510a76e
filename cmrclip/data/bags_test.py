from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch

from cmrclip.conditions import condition_keys
from cmrclip.data.bags import (
    BagConfig,
    StudyBagDataset,
    collate_bags,
    frame_indices,
    label_matrix,
    plan_bag,
)
from cmrclip.errors import LabelError, StoreError


@dataclass
class Meta:
    n_slices: int
    n_frames: int


class FakeStudy:
    def __init__(self, views):
        self.views = views

    def read_clip(self, view, slice_index, frames):
        base = {"SAX": 0.1, "2CH": 0.2, "3CH": 0.3, "4CH": 0.4}[view] + slice_index / 100
        return np.full((len(frames), 8, 8), base, dtype=np.float32) + np.asarray(frames)[:, None, None] / 1000


class FakeStore:
    def __init__(self, studies):
        self.studies = studies

    @contextmanager
    def open(self, key):
        if key not in self.studies:
            raise StoreError(f"study {key} not in store")
        yield FakeStudy(self.studies[key])


def to_tensor(arr):
    return torch.from_numpy(arr)[None].repeat(3, 1, 1, 1)


def _manifest(keys):
    m = pd.DataFrame({"study_key": keys, "patient_key": [f"p{k}" for k in keys]})
    for c in condition_keys():
        m[c] = 0.0
    m["lvef"] = 60.0
    return m


def test_plan_bag_drops_extreme_sax_and_keeps_every_second():
    views = {"SAX": Meta(10, 20), "4CH": Meta(1, 20), "2CH": Meta(1, 20)}
    refs = plan_bag("s1", views, BagConfig())
    assert [r.view for r in refs] == ["4CH", "2CH", "SAX", "SAX", "SAX", "SAX"]  # sampling.VIEW_ORDER
    assert [r.slice_index for r in refs if r.view == "SAX"] == [1, 3, 5, 7]
    small = plan_bag("s1", {"SAX": Meta(4, 20)}, BagConfig(views=["SAX"], sax_every=1))
    assert [r.slice_index for r in small] == [0, 1, 2, 3]


def test_plan_bag_errors_name_the_study():
    with pytest.raises(StoreError, match=r"study s9: the store has no \['3CH'\]"):
        plan_bag("s9", {"SAX": Meta(8, 20)}, BagConfig(required_views=["3CH"]))
    with pytest.raises(StoreError, match="study s8: no usable clip"):
        plan_bag("s8", {"SAX": Meta(8, 20)}, BagConfig(views=["4CH"]))


def test_frame_indices_span_one_cycle_inside_the_slice():
    idx = frame_indices(30, 16, 0.0)
    assert idx[0] == 0 and idx.max() < 30 and len(set(idx)) == 16
    shifted = frame_indices(30, 16, 0.5)
    assert shifted.min() >= 0 and shifted.max() < 30 and shifted[0] == 15


def test_label_matrix_masks_missing_and_derives_normal():
    m = _manifest(["a", "b", "c"])
    key = condition_keys()[0]
    m.loc[1, key] = 1.0
    m.loc[2, condition_keys()[5]] = np.nan
    labels = label_matrix(m, [key, "normal"])
    assert labels[0].tolist() == [0.0, 1.0]
    assert labels[1].tolist() == [1.0, 0.0]
    assert labels[2, 0] == 0.0 and np.isnan(labels[2, 1])
    with pytest.raises(LabelError, match=r"unknown label name\(s\) \['Nope'\]"):
        label_matrix(m, ["Nope"])
    with pytest.raises(LabelError, match=f"label column '{key}' holds 2.0 for study b"):
        label_matrix(m.assign(**{key: [0, 2, 1]}), [key])
    with pytest.raises(LabelError, match="no label column"):
        label_matrix(m.drop(columns=key), [key])


def test_dataset_skips_bad_studies_and_collate_pads_with_masks():
    store = FakeStore(
        {
            "a": {"SAX": Meta(10, 20), "4CH": Meta(1, 20)},
            "b": {"4CH": Meta(1, 25)},
            "c": {"2CH": Meta(1, 20)},
        }
    )
    m = _manifest(["a", "b", "c", "missing"])
    key = condition_keys()[0]
    m.loc[1, key] = np.nan
    m.loc[0, "lvef"] = np.nan
    cfg = BagConfig(views=["4CH", "SAX"], frames=4)
    ds = StudyBagDataset(store, m, [key, "normal"], ["lvef"], cfg, to_tensor)
    assert ds.study_keys == ["a", "b"]
    assert {f.study for f in ds.faults} == {"c", "missing"}
    assert any("study c: no usable clip" in f.reason for f in ds.faults)
    batch = collate_bags([ds[0], ds[1]])
    assert batch["clips"].shape == (2, 5, 3, 4, 8, 8)
    assert batch["clip_mask"].tolist() == [[True] * 5, [True, False, False, False, False]]
    assert batch["clips"][1, 1:].abs().sum() == 0
    assert batch["targets"].shape == (2, 2)
    assert batch["target_mask"].tolist() == [[True, True], [False, False]]
    assert batch["lvef_mask"].tolist() == [False, True] and batch["lvef"][1] == 60.0
    assert batch["views"][0] == ["4CH", "SAX", "SAX", "SAX", "SAX"]


def test_training_offsets_are_seeded_and_change_by_epoch():
    store = FakeStore({"a": {"4CH": Meta(1, 20)}})
    cfg = BagConfig(views=["4CH"], frames=4)
    ds = StudyBagDataset(store, _manifest(["a"]), [], ["lvef"], cfg, to_tensor, train=True, seed=1)
    first = ds[0]["clips"]
    assert torch.equal(first, ds[0]["clips"])
    ds.set_epoch(1)
    assert not torch.equal(first, ds[0]["clips"])
