from __future__ import annotations

import numpy as np
import pytest
import torch

from cmrclip.errors import ConfigError, DataError
from cmrclip.segment.data import LabelledStack
from cmrclip.segment.model import SegModelConfig
from cmrclip.segment.train import TrainSegConfig, augmentation, slice_samples, train_segmenter, training_stacks

TINY = SegModelConfig(channels=(4, 8, 16), strides=(2, 2), num_res_units=1, roi_px=32, spacing_mm=1.5)


def toy_heart(n_slices: int = 3, size: int = 48, seed: int = 0) -> LabelledStack:
    """Discs: LV cavity (bright) in a myocardial ring (dark), an RV cavity (bright) beside it; ED and ES."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((n_slices, 2, size, size), np.uint8)
    for f, r in enumerate((8, 5)):
        d = np.hypot(yy - size / 2, xx - size / 2)
        labels[:, f][:, (d >= r) & (d < r + 3)] = 2
        labels[:, f][:, d < r] = 1
        labels[:, f][:, np.hypot(yy - size / 2, xx - size / 2 + r + 9) < r] = 3
    images = np.choose(labels, [30.0, 200.0, 60.0, 190.0]) + rng.normal(0, 8, labels.shape)
    return LabelledStack("toy", images.astype(np.float32), labels, (1.5, 1.5), 10.0, "toy")


def test_slice_samples_are_2p5d_and_aligned():
    samples = slice_samples(toy_heart(), TINY)
    assert len(samples) == 6
    assert samples[0]["image"].shape == (3, 48, 48) and samples[0]["label"].shape == (1, 48, 48)
    assert float(samples[0]["image"].min()) >= 0 and float(samples[0]["image"].max()) <= 1
    out = augmentation(TrainSegConfig(model=TINY))(samples[0])
    out = out[0] if isinstance(out, list) else out
    assert out["image"].shape == (3, 32, 32) and set(np.unique(out["label"])) <= {0, 1, 2, 3}


@pytest.mark.slow
def test_unet_loss_falls_on_a_tiny_case():
    cfg = TrainSegConfig(steps=30, batch_size=4, lr=1e-2, model=TINY, threads=1)
    torch.manual_seed(0)
    seg, losses = train_segmenter(cfg, [toy_heart(seed=i) for i in range(2)])
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert not seg.net.training and seg.info["n_slices"] == 12


def test_bad_training_settings_raise():
    with pytest.raises(ConfigError, match="steps >= 1"):
        train_segmenter(TrainSegConfig(steps=0, model=TINY), [toy_heart()])
    with pytest.raises(DataError, match="real_data: required"):
        training_stacks(TrainSegConfig(real_data="required", acdc_pack=None, synthetic_studies=0))
    with pytest.raises(ConfigError, match="nothing to train on"):
        training_stacks(TrainSegConfig(real_data="none", synthetic_studies=0))
