"""The segmentation network (MONAI's 2D U-Net on 2.5D SAX inputs), its settings and its checkpoint file."""

from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.networks.nets import UNet
from torch import nn

from cmrclip.config import StrictModel
from cmrclip.errors import CheckpointError

__all__ = ["SegModelConfig", "Segmenter", "build_unet", "load_segmenter", "save_segmenter"]

logger = logging.getLogger(__name__)

_FORMAT = "cmrclip-segmenter/1"
N_CLASSES = 4


class SegModelConfig(StrictModel):
    """The network and the input it expects (saved in the checkpoint; inference reads it from there).

    Attributes:
        channels: U-Net feature channels per level.
        strides: down-sampling stride between levels (one fewer than ``channels``).
        num_res_units: residual units per block.
        dropout: dropout probability.
        context_slices: neighbouring slices on each side fed as extra channels (2.5D; 0 = plain 2D).
        spacing_mm: in-plane pixel spacing images are resampled to (images without spacing are used as they are).
        roi_px: square crop around the heart the network sees (pixels at ``spacing_mm``).
        tta_flips: average the predictions of the image and its two flips at inference.
    """

    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    strides: tuple[int, ...] = (2, 2, 2, 2)
    num_res_units: int = 2
    dropout: float = 0.0
    context_slices: int = 1
    spacing_mm: float = 1.5
    roi_px: int = 128
    tta_flips: bool = False

    @property
    def in_channels(self) -> int:
        """Input channels: the slice plus its neighbours."""
        return 1 + 2 * self.context_slices


def build_unet(cfg: SegModelConfig) -> nn.Module:
    """A MONAI 2D U-Net with ``cfg.in_channels`` inputs and 4 output classes (logits)."""
    if len(cfg.strides) != len(cfg.channels) - 1:
        raise CheckpointError(f"strides {cfg.strides} must have one entry fewer than channels {cfg.channels}")
    return UNet(
        spatial_dims=2,
        in_channels=cfg.in_channels,
        out_channels=N_CLASSES,
        channels=cfg.channels,
        strides=cfg.strides,
        num_res_units=cfg.num_res_units,
        dropout=cfg.dropout,
        norm="instance",
    )


@dataclass
class Segmenter:
    """A trained segmentation network with its settings.

    Attributes:
        net: the U-Net (eval mode after loading).
        config: what the network expects.
        info: provenance: training data, steps, metrics (plain JSON types).
    """

    net: nn.Module
    config: SegModelConfig
    info: dict[str, Any] = field(default_factory=dict)


def save_segmenter(segmenter: Segmenter, path: Path) -> Path:
    """Write the segmenter to ``path`` (a ``torch.save`` file of plain types and tensors)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in segmenter.net.state_dict().items()}
    blob = {"format": _FORMAT, "config": segmenter.config.model_dump(), "info": segmenter.info, "state": state}
    torch.save(blob, path)
    return path


def load_segmenter(path: Path | str) -> Segmenter:
    """Load a segmenter written by :func:`save_segmenter` (strict: every weight must match).

    Raises:
        CheckpointError: if the file is missing, not a segmenter, or its weights do not fit its network.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"segmentation model {path} not found; train one with `cmrclip train-seg`")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}; give a file written by `cmrclip train-seg`") from exc
    if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
        raise CheckpointError(f"{path} is not a cmrclip segmentation model ({_FORMAT}); train one with train-seg")
    cfg = SegModelConfig(**blob["config"])
    net = build_unet(cfg)
    result = net.load_state_dict(blob["state"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{path}: weights do not fit the network; missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    net.eval()
    info = dict(blob.get("info") or {})
    info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return Segmenter(net, cfg, info)
