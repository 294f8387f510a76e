"""Training-state checkpoints for exact resume: model, optimizer, scheduler, sampler position, RNG states.

A checkpoint is written to a temporary file beside the target and renamed over it, so an interrupted write never
leaves a truncated ``last.pt``.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cmrclip.errors import CheckpointError

__all__ = ["FORMAT", "TrainState", "capture_rng", "load_training_state", "restore_rng", "save_training_state"]

logger = logging.getLogger(__name__)

FORMAT = "cmrclip-train-state/1"


@dataclass
class TrainState:
    """Progress counters saved with a checkpoint.

    Attributes:
        step: optimizer steps done.
        epoch: current epoch.
        batch_in_epoch: micro-batches of the current epoch already consumed (by this rank).
        extra: anything else to carry across a resume (e.g. the best metric so far).
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def capture_rng() -> dict[str, Any]:
    """Snapshot the global RNGs that training touches (torch CPU and CUDA for dropout, numpy, random)."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore a snapshot from :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def save_training_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    sampler_state: dict[str, int],
    state: TrainState,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write the full training state to ``path`` atomically; return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "sampler": dict(sampler_state),
        "state": {"step": state.step, "epoch": state.epoch, "batch_in_epoch": state.batch_in_epoch},
        "extra": state.extra,
        "rng": capture_rng(),
        "config": config or {},
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    logger.info("saved training state at step %d to %s", state.step, path)
    return path


def load_training_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    map_location: str | torch.device = "cpu",
) -> tuple[TrainState, dict[str, int], dict[str, Any]]:
    """Restore model, optimizer, scheduler and RNGs from ``path``.

    Returns:
        The progress counters, the sampler state and the config saved with the checkpoint.

    Raises:
        CheckpointError: if the file is missing, not a training state, or does not match the model.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no training state at {path}; start without --resume or point at OUT/checkpoints")
    payload = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cmrclip training state (format {FORMAT!r}); it cannot be resumed")
    try:
        _unwrap(model).load_state_dict(payload["model"], strict=True)
        optimizer.load_state_dict(payload["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{path} does not match this model/optimizer ({exc}); resume with the same config"
        ) from exc
    scheduler.load_state_dict(payload["scheduler"])
    restore_rng(payload["rng"])
    s = payload["state"]
    state = TrainState(step=s["step"], epoch=s["epoch"], batch_in_epoch=s["batch_in_epoch"], extra=payload["extra"])
    logger.info("resumed from %s at step %d (epoch %d, batch %d)", path, state.step, state.epoch, state.batch_in_epoch)
    return state, payload["sampler"], payload["config"]
