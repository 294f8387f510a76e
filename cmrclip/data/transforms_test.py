from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cmrclip.data.transforms import (
    AugmentConfig,
    Compose,
    RandGamma,
    RandGammad,
    RandIntensity,
    RandNoise,
    RandResizedCrop,
    RandResizedCropd,
    RandRotate,
    RandTemporalJitter,
    RepeatChannels,
    Resize,
    build_clip_transform,
)


def _clip(t=4, h=32, w=40):
    gen = torch.Generator().manual_seed(0)
    return torch.rand((t, h, w), generator=gen)


def test_resize_and_repeat_shapes():
    out = RepeatChannels(3)(Resize((16, 20))(_clip()))
    assert out.shape == (3, 4, 16, 20)
    assert torch.equal(out[0], out[2])


def test_crop_same_box_every_frame():
    clip = _clip()
    clip[1] = clip[0]
    t = RandResizedCrop((16, 16), scale=(0.3, 0.5), prob=1.0)
    t.randomize(np.random.default_rng(3))
    out = t(clip)
    assert out.shape == (4, 16, 16)
    assert torch.equal(out[0], out[1])  # identical frames -> identical crops


def test_crop_area_matches_recomputed_box():
    t = RandResizedCrop((8, 8), scale=(0.25, 0.25), ratio=(1.0, 1.0))
    t.randomize(np.random.default_rng(0))
    rng = np.random.default_rng(0)
    rng.random()  # prob draw
    area = rng.uniform(0.25, 0.25)
    rng.uniform(0.0, 0.0)  # log-ratio
    fy, fx = rng.uniform(), rng.uniform()
    side = math.sqrt(area)
    clip = torch.arange(64 * 64, dtype=torch.float32).reshape(1, 64, 64) / 4096
    out = t(clip)
    h = round(side * 64)
    top, left = round(fy * (64 - h)), round(fx * (64 - h))
    expect = torch.nn.functional.interpolate(
        clip[:, None, top : top + h, left : left + h], size=(8, 8), mode="bilinear", antialias=True
    )[:, 0]
    assert torch.allclose(out, expect)


def test_prob_zero_is_identity_and_prob_validated():
    clip = _clip()
    for t in (RandRotate(30, prob=0.0), RandGamma(prob=0.0), RandIntensity(prob=0.0), RandNoise(prob=0.0)):
        t.randomize(np.random.default_rng(0))
        assert torch.equal(t(clip), clip)
    with pytest.raises(ValueError, match="prob must be in"):
        RandGamma(prob=1.5)


def test_rotation_keeps_centre_and_same_angle_all_frames():
    clip = torch.zeros(2, 33, 33)
    clip[:, 16, 16] = 1.0
    clip[:, 16, 25] = 1.0
    t = RandRotate(degrees=45, prob=1.0)
    t.randomize(np.random.default_rng(5))
    out = t(clip)
    assert out[0, 16, 16] > 0.9
    assert torch.allclose(out[0], out[1])
    assert out[0, 16, 25] < 0.5  # the off-centre point moved


def test_gamma_intensity_noise_stay_in_unit_range():
    clip = _clip()
    for t in (
        RandGamma((0.5, 2.0), prob=1.0),
        RandIntensity((0.5, 2.0), (-0.3, 0.3), prob=1.0),
        RandNoise((0.2, 0.3), prob=1.0),
    ):
        t.randomize(np.random.default_rng(1))
        out = t(clip)
        assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, clip)


def test_noise_repeatable_after_one_randomize():
    t = RandNoise((0.1, 0.1), prob=1.0)
    t.randomize(np.random.default_rng(2))
    assert torch.equal(t(_clip()), t(_clip()))


def test_temporal_jitter_stays_in_cycle():
    t = RandTemporalJitter(max_shift=2, prob=1.0)
    t.randomize(np.random.default_rng(0))
    frames = np.arange(0, 20, 2)
    out = t(frames, 20)
    assert out.min() >= 0 and out.max() < 20 and np.all(np.abs(((out - frames + 10) % 20) - 10) <= 2)
    assert not np.array_equal(out, frames)


def test_dict_wrapper_same_params_for_keys_and_missing_key():
    clip = _clip()
    t = RandResizedCropd(["a", "b"], (8, 8), scale=(0.3, 0.4))
    t.randomize(np.random.default_rng(0))
    out = t({"a": clip, "b": clip.clone(), "c": 1})
    assert torch.equal(out["a"], out["b"]) and out["c"] == 1
    with pytest.raises(KeyError, match="RandGammad: key 'x'"):
        RandGammad(["x"])({"a": clip})
    assert RandGammad(["x"], allow_missing=True)({"a": clip})["a"] is clip


def test_pipeline_deterministic_given_rng():
    pipe = build_clip_transform((16, 16), AugmentConfig(), normalize=lambda x: (x - 0.5) / 0.25)
    a = pipe.apply(_clip(), np.random.default_rng(9))
    b = pipe.apply(_clip(), np.random.default_rng(9))
    c = pipe.apply(_clip(), np.random.default_rng(10))
    assert a.shape == (3, 4, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -2.0 and a.max() <= 2.0
    plain = build_clip_transform((16, 16))
    assert isinstance(plain, Compose) and torch.equal(plain(_clip()), plain(_clip()))
