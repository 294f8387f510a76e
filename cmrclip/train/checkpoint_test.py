from __future__ import annotations

import pytest
import torch
from torch import nn

from cmrclip.errors import CheckpointError
from cmrclip.train.checkpoint import TrainState, load_training_state, save_training_state
from cmrclip.train.optim import OptimConfig, build_optimizer, build_scheduler


def _parts(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))
    opt = build_optimizer(model, OptimConfig(lr=0.1, warmup_steps=1))
    return model, opt, build_scheduler(opt, OptimConfig(lr=0.1, warmup_steps=1), total_steps=10)


def _step(model, opt, sched):
    loss = model(torch.randn(5, 4)).pow(2).mean()  # global RNG: data and dropout
    loss.backward()
    opt.step()
    sched.step()
    opt.zero_grad()


def test_roundtrip_continues_identically(tmp_path):
    model, opt, sched = _parts(0)
    _step(model, opt, sched)
    path = save_training_state(tmp_path / "ck" / "last.pt", model, opt, sched, {"epoch": 1, "start": 3, "seed": 0},
                               TrainState(step=1, epoch=1, batch_in_epoch=3, extra={"loss_sum": 2.0}))  # fmt: skip
    _step(model, opt, sched)
    expected = [p.detach().clone() for p in model.parameters()]
    model2, opt2, sched2 = _parts(99)
    state, sampler, _ = load_training_state(path, model2, opt2, sched2)
    assert (state.step, state.epoch, state.batch_in_epoch, state.extra) == (1, 1, 3, {"loss_sum": 2.0})
    assert sampler == {"epoch": 1, "start": 3, "seed": 0}
    _step(model2, opt2, sched2)
    for a, b in zip(expected, model2.parameters(), strict=True):
        assert torch.equal(a, b)
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert not list((tmp_path / "ck").glob(".*tmp"))


def test_load_errors(tmp_path):
    model, opt, sched = _parts(0)
    with pytest.raises(CheckpointError, match="no training state"):
        load_training_state(tmp_path / "none.pt", model, opt, sched)
    torch.save({"format": "other"}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not a cmrclip training state"):
        load_training_state(tmp_path / "x.pt", model, opt, sched)
    path = save_training_state(tmp_path / "ok.pt", model, opt, sched, {}, TrainState())
    other = nn.Linear(4, 1)
    o_opt = build_optimizer(other, OptimConfig())
    with pytest.raises(CheckpointError, match="does not match"):
        load_training_state(path, other, o_opt, build_scheduler(o_opt, OptimConfig(), 5))
