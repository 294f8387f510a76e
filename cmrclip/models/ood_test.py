"""The OOD guard: shrinkage Mahalanobis distances, input statistics, and the bundle round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cmrclip.errors import DataError
from cmrclip.models.ood import INPUT_STATISTICS, OodGuard, fit_gaussian, fit_ood_guard, input_statistics


def _cine(seed: int, frames: int = 8, size: int = 48) -> np.ndarray:
    """One normalised phantom clip [1, T, H, W]: a bright disk that contracts, a darker ring, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    centre = size / 2 + rng.normal(0, 2, 2)
    r = np.hypot(yy - centre[0], xx - centre[1])
    base = rng.uniform(0.15, 0.3)
    out = []
    for f in range(frames):
        radius = size * rng.uniform(0.18, 0.22) * (1 - 0.3 * np.sin(np.pi * f / frames))
        img = base + 0.6 * (r < radius) + 0.2 * ((r >= radius) & (r < radius + 3)) + rng.normal(0, 0.03, r.shape)
        out.append(img)
    return (np.stack(out)[None] - 0.4) / 0.25


def _study(seed: int, n_clips: int = 3) -> np.ndarray:
    return np.stack([_cine(seed * 10 + i) for i in range(n_clips)])  # [N, 1, T, H, W]


def test_held_out_in_distribution_rarely_far_and_outliers_far():
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.2, 3.0, 32)
    fit, cal, test = (rng.normal(size=(n, 32)) * scale for n in (60, 40, 1000))  # fewer fits than 2x dims: shrinkage
    model = fit_gaussian(fit, cal)
    assert np.mean(model.distance(test) > model.threshold) <= 0.05
    shifted = 4 * scale  # a domain shift: every feature 4 standard deviations off
    assert model.distance(shifted)[0] > 2 * model.threshold


def test_fit_needs_two_rows():
    with pytest.raises(DataError, match="at least 2"):
        fit_gaussian(np.zeros((1, 3)))


def test_input_statistics_shape_and_bad_input():
    stats = input_statistics(torch.from_numpy(_study(0)).float())
    assert stats.shape == (len(INPUT_STATISTICS),) and np.isfinite(stats).all()
    with pytest.raises(DataError, match="clips"):
        input_statistics(np.zeros((2, 1, 1, 8, 8)))


def _guard() -> OodGuard:
    stats = np.stack([input_statistics(_study(s)) for s in range(40)])
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(40, 8))
    return fit_ood_guard(emb[:25], stats[:25], emb[25:], stats[25:])


def test_noise_and_non_cardiac_inputs_always_warn():
    guard, rng = _guard(), np.random.default_rng(2)
    emb = np.zeros(8)
    held_out = [guard.score(emb, input_statistics(_study(s)))[0] for s in range(100, 130)]
    assert np.mean(np.array(held_out) > 1) <= 0.1
    noise = rng.normal(size=(3, 1, 8, 48, 48))
    yy, xx = np.mgrid[:48, :48]
    static = np.broadcast_to(np.sin(xx / 5.0) * np.cos(yy / 7.0), (3, 1, 8, 48, 48))  # textured, no motion
    flat = np.zeros((3, 1, 8, 48, 48))
    for clips in (noise, static, flat):
        score, parts = guard.score(emb, input_statistics(clips))
        assert score > 1 and parts == [p for p in parts if p.startswith("input image statistics")]


def test_guard_round_trips_through_calibration_tensors():
    guard = _guard()
    back = OodGuard.from_calibration({k: v.numpy() for k, v in guard.to_calibration().items()})
    x = input_statistics(_study(7))
    assert back.score(np.ones(8), x) == guard.score(np.ones(8), x)
    assert OodGuard.from_calibration({"embeddings": np.zeros((3, 4))}) is None
