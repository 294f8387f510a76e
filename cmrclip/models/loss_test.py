from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from cmrclip.models import loss as loss_mod
from cmrclip.models.loss import ClipLoss, gather_features, key_ids


def _unit(rows: int, dim: int, seed: int) -> torch.Tensor:
    return F.normalize(
        torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1
    )


def _reference(video: np.ndarray, text: np.ndarray, scale: float, keys: list | None) -> float:
    """Symmetric InfoNCE written with plain loops, negatives sharing a key left out."""
    n = len(video)
    sims = scale * video @ text.T
    total = 0.0
    for i in range(n):
        allowed = [j for j in range(n) if j == i or keys is None or keys[j] != keys[i]]
        row = [sims[i, j] for j in allowed]
        col = [sims[j, i] for j in allowed]
        total += (math.log(sum(math.exp(s) for s in row)) - sims[i, i]) / (2 * n)
        total += (math.log(sum(math.exp(s) for s in col)) - sims[i, i]) / (2 * n)
    return total


@pytest.mark.parametrize("keys", [None, ["p1", "p2", "p1", "p3", "p2"]])
def test_clip_loss_matches_loops(keys):
    video, text = _unit(5, 8, 0), _unit(5, 8, 1)
    ids = key_ids(keys) if keys else None
    out = ClipLoss()(video, text, torch.tensor(7.0, dtype=torch.float64), ids)
    assert float(out.loss) == pytest.approx(_reference(video.numpy(), text.numpy(), 7.0, keys), abs=1e-10)
    assert float(out.loss) == pytest.approx((float(out.video_to_text) + float(out.text_to_video)) / 2)
    assert set(out.as_dict()) == {"loss", "video_to_text", "text_to_video"}


def test_duplicate_study_in_batch_is_not_its_own_negative():
    video, text = _unit(3, 8, 2), _unit(3, 8, 3)
    video, text = torch.cat([video, video[:1]]), torch.cat([text, text[:1]])  # study 0 drawn twice
    keys = ["a", "b", "c", "a"]
    scale = torch.tensor(10.0, dtype=torch.float64)
    masked = ClipLoss()(video, text, scale, key_ids(keys))
    unmasked = ClipLoss()(video, text, scale)
    assert float(masked.loss) == pytest.approx(_reference(video.numpy(), text.numpy(), 10.0, keys), abs=1e-10)
    # unmasked, each twin's own positive is also a negative of the other: log 2 at best
    assert float(unmasked.loss) > float(masked.loss)


def test_key_ids_are_stable_and_distinct():
    a = key_ids(["3f2a9c", "3f2a9c", "b71e00", 17])
    assert a.dtype == torch.int64 and a[0] == a[1] and a[0] != a[2]
    assert torch.equal(a, key_ids(["3f2a9c", "3f2a9c", "b71e00", 17]))


def test_gather_without_process_group_is_identity():
    v, t = torch.ones(2, 3), torch.zeros(2, 3)
    out = gather_features(v, t, None)
    assert out[0] is v and out[1] is t and out[2] is None


def test_gather_with_monkeypatched_collectives(monkeypatch):
    """Rank 1 of 2: the other rank's rows come first, and the backward sums the gradient across ranks."""
    other = torch.full((2, 3), 5.0)
    reduced = []

    def all_gather(parts, x):
        parts[0].copy_(other if x.dtype.is_floating_point else torch.full_like(x, 9) if x.numel() > 1 else x)
        parts[1].copy_(x)

    def all_reduce(grad, op=None):
        reduced.append(grad.clone())
        grad.mul_(3.0)  # as if three identical ranks contributed

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: 1)
    monkeypatch.setattr(dist, "all_gather", all_gather)
    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    assert loss_mod._distributed()
    video = torch.arange(6.0).reshape(2, 3).requires_grad_()
    text = torch.ones(2, 3, requires_grad=True)
    all_v, all_t, all_k = gather_features(video, text, torch.tensor([4, 7]))
    assert torch.equal(all_v, torch.cat([other, video.detach()]))
    assert torch.equal(all_t, torch.cat([other, text.detach()]))
    assert all_k.tolist() == [9, 9, 4, 7]
    weights = torch.arange(12.0).reshape(4, 3)
    (all_v * weights).sum().backward()
    assert torch.equal(reduced[0], weights)
    assert torch.equal(video.grad, 3.0 * weights[2:])


class _Towers(torch.nn.Module):
    """Two linear 'towers' and a temperature: enough to test the gathered loss and its gradients."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(11)
        self.video = torch.nn.Linear(6, 4)
        self.text = torch.nn.Linear(5, 4)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=gen)
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, xv: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return F.normalize(self.video(xv), dim=-1), F.normalize(self.text(xt), dim=-1), self.logit_scale.exp()


def _global_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(12)
    keys = key_ids(["p0", "p1", "p2", "p3", "p0", "p5", "p6", "p2"])  # p0 and p2 span both ranks
    return torch.randn(8, 6, generator=gen), torch.randn(8, 5, generator=gen), keys


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        model = DistributedDataParallel(_Towers())
        xv, xt, keys = _global_batch()
        part = slice(rank * 4, (rank + 1) * 4)
        video, text, scale = model(xv[part], xt[part])
        out = ClipLoss()(video, text, scale, keys[part])
        out.loss.backward()
        grads = {n: p.grad for n, p in model.module.named_parameters()}
        torch.save({"loss": out.loss.detach(), "grads": grads}, f"{out_dir}/rank{rank}.pt")
        dist.barrier()  # both ranks done before either tears gloo down (else: "terminate called", SIGABRT under load)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_on_the_combined_batch(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)

    model = _Towers()
    xv, xt, keys = _global_batch()
    out = ClipLoss()(*model(xv, xt), keys)
    out.loss.backward()
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(got["loss"], out.loss.detach(), atol=1e-5, rtol=0)
        for name, param in model.named_parameters():
            torch.testing.assert_close(got["grads"][name], param.grad, atol=1e-5, rtol=0)
