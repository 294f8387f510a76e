from __future__ import annotations

import pytest
import torch

from cmrclip.train.distributed import ResumableSampler, init_distributed


def test_ranks_partition_each_epoch_and_epochs_differ():
    samplers = [ResumableSampler(10, world_size=3, rank=r, seed=4) for r in range(3)]
    parts = [list(s) for s in samplers]
    assert all(len(p) == 4 for p in parts)  # padded to 12 by repetition
    assert {i for p in parts for i in p} == set(range(10))
    for s in samplers:
        s.set_epoch(1)
    assert [list(s) for s in samplers] != parts
    again = ResumableSampler(10, world_size=3, rank=0, seed=4)
    assert list(again) == parts[0]


def test_drop_last_and_no_shuffle():
    s = ResumableSampler(10, world_size=3, rank=2, shuffle=False, drop_last=True)
    assert list(s) == [2, 5, 8] and len(s) == 3


def test_skip_and_state_resume_mid_epoch():
    s = ResumableSampler(20, seed=7)
    s.set_epoch(3)
    full = list(s)
    s.skip(5)
    assert list(s) == full[5:] and len(s) == 15
    fresh = ResumableSampler(20, seed=0)
    fresh.load_state_dict(s.state_dict())
    assert list(fresh) == full[5:]


def test_invalid_sampler_and_single_process_env(monkeypatch):
    with pytest.raises(ValueError, match="invalid sampler"):
        ResumableSampler(5, world_size=2, rank=2)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    env = init_distributed("cpu")
    assert env.world_size == 1 and env.is_main and not env.distributed and env.device == torch.device("cpu")
