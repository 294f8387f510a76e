from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cmrclip.data.dataset import PretrainDataset, studies_with_reports
from cmrclip.data.loader import PretrainCollate, make_loader, measure_throughput
from cmrclip.data.transforms import AugmentConfig, RandTemporalJitter, build_clip_transform
from cmrclip.errors import DataError, StoreError
from cmrclip.ingest.store import StudyStore


def _dataset(root, train=True, **kw):
    studies = studies_with_reports(StudyStore(root).manifest())
    transform = build_clip_transform((16, 16), AugmentConfig() if train else None)
    return PretrainDataset(root, studies, transform, n_frames=8, seed=3, train=train, **kw)


def test_items_have_contract_shapes(toy_store):
    ds = _dataset(toy_store, text_sampler=lambda text, rng: text.split(".")[0])
    item = ds[0]
    assert item["video"].shape == (3, 8, 16, 16) and item["video"].dtype == torch.float32
    assert item["text"].startswith("The left ventricle is")
    assert item["study_key"] == ds.keys[0] and item["patient_key"] == ds.patients[0]
    assert len(ds) == 24


def test_several_clips_per_study_stack_and_batch(toy_store):
    ds = _dataset(toy_store, clips_per_study=3)
    item = ds[0]
    assert item["video"].shape == (3, 3, 8, 16, 16)  # [k, C, T, H, W]
    assert not torch.equal(item["video"][0], item["video"][1])  # different views or slices
    batch = PretrainCollate()([ds[i] for i in range(4)])
    assert batch["video"].shape == (4, 3, 3, 8, 16, 16)


def test_draws_depend_on_seed_epoch_index_only(toy_store):
    ds = _dataset(toy_store, temporal_jitter=RandTemporalJitter(1, prob=0.5))
    first = ds[5]["video"]
    ds[3]  # reading another item changes nothing
    assert torch.equal(ds[5]["video"], first)
    ds.set_epoch(1)
    assert not torch.equal(ds[5]["video"], first)
    ds.set_epoch(0)
    assert torch.equal(ds[5]["video"], first)


def test_eval_items_fixed_across_epochs(toy_store):
    ds = _dataset(toy_store, train=False)
    a = ds[2]
    ds.set_epoch(4)
    b = ds[2]
    assert torch.equal(a["video"], b["video"]) and a["view"] == b["view"]


def test_studies_without_reports_dropped_and_errors():
    df = pd.DataFrame({"study_key": ["b", "a", "c"], "patient_key": ["1", "2", "3"], "report": ["x", "y", None]})
    assert studies_with_reports(df)["study_key"].tolist() == ["a", "b"]
    with pytest.raises(DataError, match="none of the 1 studies has a report"):
        studies_with_reports(df.iloc[2:])
    with pytest.raises(DataError, match=r"lacks column\(s\) \['report'\]"):
        studies_with_reports(df.drop(columns="report"))


def test_missing_study_file_is_named(toy_store, tmp_path):
    studies = pd.DataFrame({"study_key": ["ffffffffffffffff"], "patient_key": ["p"], "report": ["r"]})
    ds = PretrainDataset(toy_store, studies, build_clip_transform((8, 8)))
    with pytest.raises(StoreError, match="ffffffffffffffff"):
        ds[0]


def test_loader_batches_with_workers_and_tokenizer(toy_store):
    ds = _dataset(toy_store)

    def tok(texts):
        return {"input_ids": torch.tensor([[len(t)] for t in texts])}

    loader = make_loader(ds, batch_size=5, num_workers=1, tokenizer=tok)
    batches = list(loader)
    assert len(batches) == 4  # 24 // 5, last short batch dropped
    b = batches[0]
    assert b["video"].shape == (5, 3, 8, 16, 16) and len(b["text"]) == 5 and b["tokens"]["input_ids"].shape == (5, 1)
    # worker-read items equal main-process reads
    assert torch.equal(b["video"][2], ds[2]["video"])
    stats = measure_throughput(make_loader(ds, batch_size=4), max_batches=2)
    assert stats.batches == 2 and stats.clips == 8 and stats.clips_per_s > 0


def test_collate_keeps_order():
    items = [{"video": torch.full((3, 2, 4, 4), float(i)), "text": f"t{i}", "study_key": f"s{i}", "patient_key": "p",
              "index": i, "view": "SAX"} for i in range(3)]  # fmt: skip
    batch = PretrainCollate()(items)
    assert batch["index"].tolist() == [0, 1, 2] and batch["video"][:, 0, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert np.array_equal(batch["study_key"], ["s0", "s1", "s2"])


@pytest.mark.slow
def test_real_ingested_synthetic_store(tiny_store):
    """The ingested synthetic cohort: every study yields a contract clip and its de-identified report."""
    studies = studies_with_reports(StudyStore(tiny_store).manifest())
    assert len(studies) == 8
    ds = PretrainDataset(tiny_store, studies, build_clip_transform((32, 32), AugmentConfig()), n_frames=16)
    views = set()
    for i in range(len(ds)):
        item = ds[i]
        assert item["video"].shape == (3, 16, 32, 32) and torch.isfinite(item["video"]).all()
        assert len(item["text"]) > 20
        views.add(item["view"])
    assert len(views) >= 2
