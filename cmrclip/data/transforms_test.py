from __future__ import annotations

import numpy as np
import pydantic
import pytest
import torch
import torch.nn.functional as F
from monai.transforms import RandAdjustContrastd, RandGaussianNoised, RandRotated, RandScaleCropd

from cmrclip.data.transforms import (
    AntialiasedResize,
    AugmentConfig,
    Compose,
    RandTemporalJitter,
    build_clip_transform,
    seed_from,
)

NO_AUGMENT = {"crop_prob": 0, "rotate_prob": 0, "gamma_prob": 0, "intensity_prob": 0, "noise_prob": 0}


def _clip(t=4, h=32, w=40):
    gen = torch.Generator().manual_seed(0)
    return torch.rand((t, h, w), generator=gen)


def _resized(clip, size):
    """The resize recomputed frame by frame with torch (the pipeline resizes all frames in one call)."""
    return torch.stack([F.interpolate(f[None, None], size=size, mode="bilinear", antialias=True)[0, 0] for f in clip])


def test_eval_pipeline_is_resize_repeat_normalize():
    clip = _clip()
    out = build_clip_transform((16, 20), normalize=lambda x: (x - 0.5) / 0.25)(clip.numpy())
    assert type(out) is torch.Tensor and out.shape == (3, 4, 16, 20)
    expect = (_resized(clip, (16, 20)) - 0.5) / 0.25
    assert torch.allclose(out[0], expect, atol=1e-6) and torch.equal(out[0], out[2])
    assert torch.equal(AntialiasedResize((32, 40))(clip), clip)


def test_bad_clip_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected a clip \[T, H, W\], got shape \(32, 40\)"):
        build_clip_transform((16, 16))(_clip()[0])


def test_one_draw_per_clip_every_frame_alike():
    clip = _clip(t=3)
    clip[1] = clip[0]
    pipe = build_clip_transform((16, 16), AugmentConfig(rotate_prob=1, gamma_prob=1, intensity_prob=1, noise_prob=0))
    for seed in range(5):
        out = pipe.apply(clip, np.random.default_rng(seed))
        assert torch.equal(out[:, 0], out[:, 1])  # identical frames -> identical augmented frames
        assert not torch.allclose(out[:, 0], out[:, 2])


def test_views_share_one_draw_through_dict_transforms():
    keys = ["sax", "4ch"]
    pipe = Compose(
        [
            RandScaleCropd(keys, roi_scale=0.5, max_roi_scale=0.9, random_size=True),
            RandRotated(keys, range_x=0.5, prob=1.0),
            RandAdjustContrastd(keys, prob=1.0, gamma=(0.5, 2.0)),
        ]
    )
    clip = _clip()
    out = pipe.apply({"sax": clip, "4ch": clip.clone(), "text": "report"}, np.random.default_rng(0))
    assert out["sax"].shape[-2:] != clip.shape[-2:]  # cropped
    assert torch.equal(out["sax"], out["4ch"]) and out["text"] == "report"


def test_seeding_reproducible_and_advancing():
    pipe = build_clip_transform((16, 16), AugmentConfig(), normalize=lambda x: (x - 0.5) / 0.25)
    a = pipe.apply(_clip(), np.random.default_rng(9))
    b = pipe.apply(_clip(), np.random.default_rng(9))
    c = pipe.apply(_clip(), np.random.default_rng(10))
    assert a.shape == (3, 4, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -2.0 and a.max() <= 2.0
    rng = np.random.default_rng(9)
    first, second = pipe.apply(_clip(), rng), pipe.apply(_clip(), rng)
    assert torch.equal(first, a) and not torch.equal(second, a)  # the draws advance the caller's generator
    plain = build_clip_transform((16, 16))
    assert torch.equal(plain(_clip()), plain(_clip()))


def test_prob_convention():
    clip = _clip()
    plain = build_clip_transform((16, 16))(clip)
    never = build_clip_transform((16, 16), AugmentConfig(**NO_AUGMENT))
    for seed in range(3):
        assert torch.equal(never.apply(clip, np.random.default_rng(seed)), plain)
    for name in NO_AUGMENT:
        always = build_clip_transform((16, 16), AugmentConfig(**{**NO_AUGMENT, name: 1.0}))
        assert not torch.allclose(always.apply(clip, np.random.default_rng(0)), plain), name
    with pytest.raises(pydantic.ValidationError, match="gamma_prob"):
        AugmentConfig(gamma_prob=1.5)


def test_augmented_clip_stays_in_unit_range():
    strong = AugmentConfig(
        rotate_prob=1, gamma_prob=1, gamma=(0.5, 2.0), intensity_prob=1, intensity_scale=(0.5, 2.0), noise_prob=1
    )
    pipe = build_clip_transform((16, 16), strong)
    for seed in range(5):
        out = pipe.apply(_clip(), np.random.default_rng(seed))
        assert out.min() >= 0 and out.max() <= 1


def test_missing_key_names_the_transform():
    pipe = Compose([RandGaussianNoised(["x"], prob=1.0)])
    with pytest.raises(KeyError, match="Key `x` of transform `RandGaussianNoised`"):
        pipe.apply({"a": _clip()}, np.random.default_rng(0))
    lenient = Compose([RandGaussianNoised(["x"], prob=1.0, allow_missing_keys=True)])
    assert lenient.apply({"a": _clip()}, np.random.default_rng(0))["a"].shape == (4, 32, 40)


def test_temporal_jitter_stays_in_cycle_and_is_seeded():
    frames = np.arange(0, 20, 2)
    out = seed_from(RandTemporalJitter(max_shift=2, prob=1.0), np.random.default_rng(0))(frames, 20)
    assert out.min() >= 0 and out.max() < 20 and np.all(np.abs(((out - frames + 10) % 20) - 10) <= 2)
    assert not np.array_equal(out, frames)
    again = seed_from(RandTemporalJitter(max_shift=2, prob=1.0), np.random.default_rng(0))(frames, 20)
    assert np.array_equal(out, again)
    off = seed_from(RandTemporalJitter(max_shift=2, prob=0.0), np.random.default_rng(0))(frames, 20)
    assert np.array_equal(off, frames)
