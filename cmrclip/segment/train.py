"""Train the segmentation U-Net (``cmrclip train-seg``): MONAI transforms, Dice-CE loss, AdamW with cosine decay.

Training samples are single 2.5D slices (the slice and its neighbours as channels) at the model's pixel spacing.
Augmentation (MONAI dictionary transforms, image and mask drawn together): random rotation over the full circle,
scaling, shear, flips, a crop around foreground or background, gamma, intensity scale and shift, a bias field,
Gaussian blur and noise, so that the model holds across scanners and sites.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.losses import DiceCELoss
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandBiasFieldd,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    SpatialPadd,
)

from cmrclip.config import StrictModel
from cmrclip.errors import ConfigError, DataError
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.segment.data import LabelledStack, load_acdc_pack, synthetic_stacks
from cmrclip.segment.model import Segmenter, SegModelConfig, build_unet
from cmrclip.segment.preprocess import context_stack, normalize_images, resample, zoom_factors

__all__ = ["TrainSegConfig", "augmentation", "slice_samples", "train_segmenter", "training_stacks"]

logger = logging.getLogger(__name__)


class TrainSegConfig(StrictModel):
    """``cmrclip train-seg`` settings (defaults in ``cmrclip/configs/train_seg.yaml``)."""

    out_dir: Path = Path("runs/segment")
    acdc_pack: Path | None = None
    real_data: Literal["auto", "required", "none"] = "auto"
    exclude_subjects: tuple[str, ...] = ()
    synthetic_studies: int = 20
    steps: int = 3000
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2
    rotate_deg: float = 180.0
    scale_range: float = 0.3
    intensity_prob: float = 1.0
    model: SegModelConfig = SegModelConfig()


def _augment_spatial(keys: list[str], roi: int, rotate_deg: float, scale_range: float) -> list:
    """Crop a 1.5x ROI around foreground or background, then rotate/scale/shear it into the ROI, then flip."""
    big = (roi * 3) // 2
    return [
        SpatialPadd(keys, spatial_size=(big, big)),
        RandCropByPosNegLabeld(keys, label_key="label", spatial_size=(big, big), pos=2, neg=1, num_samples=1),
        RandAffined(
            keys,
            prob=1.0,
            spatial_size=(roi, roi),
            rotate_range=math.radians(rotate_deg),
            scale_range=(scale_range, scale_range),
            shear_range=(0.1, 0.1),
            mode=("bilinear", "nearest"),
            padding_mode="zeros",
        ),
        RandFlipd(keys, prob=0.5, spatial_axis=0),
        RandFlipd(keys, prob=0.5, spatial_axis=1),
    ]


def augmentation(cfg: TrainSegConfig) -> Compose:
    """The training transform of one normalised ``{"image": [C, H, W], "label": [1, H, W]}`` sample."""
    p = cfg.intensity_prob
    intensity = [
        RandBiasFieldd("image", prob=0.3 * p, coeff_range=(0.0, 0.3)),
        RandAdjustContrastd("image", prob=0.5 * p, gamma=(0.6, 1.8)),
        RandScaleIntensityd("image", factors=0.2, prob=0.5 * p),
        RandShiftIntensityd("image", offsets=0.1, prob=0.5 * p),
        RandGaussianSmoothd("image", prob=0.2 * p, sigma_x=(0.3, 1.0), sigma_y=(0.3, 1.0)),
        RandGaussianNoised("image", prob=0.3 * p, std=0.05),
    ]
    spatial = _augment_spatial(["image", "label"], cfg.model.roi_px, cfg.rotate_deg, cfg.scale_range)
    return Compose([*spatial, *intensity])


def slice_samples(stack: LabelledStack, cfg: SegModelConfig) -> list[dict[str, torch.Tensor]]:
    """One training sample per slice and frame: 2.5D image ``[C, H, W]`` (normalised) and label ``[1, H, W]``."""
    zoom = zoom_factors(stack.pixel_spacing_mm, cfg.spacing_mm)
    out = []
    for f in range(stack.images.shape[1]):
        for s in range(stack.images.shape[0]):
            image = normalize_images(resample(context_stack(stack.images[:, f], s, cfg.context_slices), zoom))
            label = resample(stack.labels[s, f][None].astype(np.float32), zoom, mode="nearest")
            out.append({"image": image, "label": label})
    return out


def training_stacks(cfg: TrainSegConfig, progress: ProgressFn = null_progress) -> tuple[list[LabelledStack], str]:
    """The labelled stacks the config asks for and a one-line description of them.

    Raises:
        DataError: if ``real_data: required`` and the ACDC pack is missing.
    """
    stacks: list[LabelledStack] = []
    pack = cfg.acdc_pack
    if cfg.real_data != "none" and pack is not None and Path(pack).is_file():
        real = [s for s in load_acdc_pack(Path(pack), progress) if s.subject not in cfg.exclude_subjects]
        stacks += real
    elif cfg.real_data == "required":
        raise DataError(f"real_data: required, but the ACDC pack {pack} is not there; set acdc_pack")
    n_real = len(stacks)
    if cfg.synthetic_studies > 0:
        stacks += synthetic_stacks(cfg.synthetic_studies, cfg.seed, progress)
    if not stacks:
        raise ConfigError("nothing to train on: no real masks found and synthetic_studies is 0")
    what = f"{n_real} real ACDC subjects (ED+ES) + {len(stacks) - n_real} synthetic studies"
    return stacks, what


def _loader(samples: list[dict], cfg: TrainSegConfig) -> DataLoader:
    transform = augmentation(cfg)
    transform.set_random_state(seed=cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    return DataLoader(Dataset(samples, transform), batch_size=cfg.batch_size, shuffle=True, generator=gen)


def train_segmenter(
    cfg: TrainSegConfig, stacks: list[LabelledStack], progress: ProgressFn = null_progress
) -> tuple[Segmenter, list[float]]:
    """Train a U-Net on the slices of ``stacks`` for ``cfg.steps`` steps.

    Returns:
        The segmenter (eval mode) and the loss of every step.

    Raises:
        ConfigError: for a non-positive step count or batch size.
    """
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise ConfigError(f"train-seg needs steps >= 1 and batch_size >= 1 (got {cfg.steps}, {cfg.batch_size})")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, min(cfg.threads, os.cpu_count() or 1)))
    samples = [x for stack in stacks for x in slice_samples(stack, cfg.model)]
    net = build_unet(cfg.model)
    loss_fn = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    losses: list[float] = []
    start, net, loader = time.monotonic(), net.train(), _loader(samples, cfg)
    with warnings.catch_warnings():  # background-only slices: MONAI warns that it cannot draw a foreground crop
        warnings.filterwarnings("ignore", message="Num foregrounds 0")
        _steps(net, loader, loss_fn, opt, sched, cfg.steps, losses, progress)
    info = {"steps": cfg.steps, "n_slices": len(samples), "seconds": round(time.monotonic() - start, 1)}
    info["sources"] = sorted({s.source for s in stacks})
    return Segmenter(net.eval(), cfg.model, info), losses


def _steps(net, loader, loss_fn, opt, sched, steps: int, losses: list[float], progress: ProgressFn) -> None:  # noqa: ANN001
    """Run ``steps`` optimisation steps over the loader (cycling epochs), appending each loss."""
    while len(losses) < steps:
        for batch in loader:
            loss = loss_fn(net(batch["image"]), batch["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            progress("train-seg", len(losses), steps)
            if len(losses) == steps:
                return
