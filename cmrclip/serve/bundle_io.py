"""Read a study-model bundle (``OUT/model.pt``, docs/ARCHITECTURE.md §6) into what prediction needs.

Besides the network, a bundle carries a ``calibration`` block from the validation split. From it this module fits,
at load time, the split-conformal LVEF interval (:func:`cmrclip.evaluate.conformal.fit_conformal`) and one Platt
scaler per condition (:func:`cmrclip.evaluate.calibration.fit_platt`). Its ``ood_*`` entries are the
out-of-distribution guard (:class:`cmrclip.models.ood.OodGuard`: Mahalanobis distances of the study embedding and of
input image statistics to the training studies). Bundles written before the guard existed load without it (no
out-of-distribution check, a warning in the log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cmrclip.errors import CmrclipError
from cmrclip.evaluate.calibration import PlattScaler, fit_platt
from cmrclip.evaluate.conformal import ConformalInterval, fit_conformal
from cmrclip.models.bundle import load_bundle
from cmrclip.models.heads import StudyModel
from cmrclip.models.ood import OodGuard
from cmrclip.models.recipe import InputRecipe

__all__ = ["ModelParts", "calibration_warnings", "read_parts"]

logger = logging.getLogger(__name__)

_ALPHA = 0.1
_MIN_PLATT = 10
_FEW_CALIBRATION = 30
"""Fewer calibration studies than this: every prediction carries a warning that its interval/probabilities are
fitted on too few studies."""


@dataclass
class ModelParts:
    """A bundle, loaded: the network plus what turns its outputs into calibrated predictions."""

    network: StudyModel
    recipe: InputRecipe
    targets: list[str]
    regression: list[str]
    thresholds: dict[str, float] = field(default_factory=dict)
    calibrators: dict[str, PlattScaler] = field(default_factory=dict)
    conformal: ConformalInterval | None = None
    ood: OodGuard | None = None
    clip: tuple[Any, Any] | None = None  # (ClipModel, tokenizer) for zero-shot
    calibration_warnings: list[str] = field(default_factory=list)
    """What the calibration was fitted on, when it is too little to trust; shown with every prediction."""

    def calibrate(self, key: str, probability: float) -> float:
        """Calibrated probability of ``key`` (unchanged where the bundle had too few labels to calibrate)."""
        scaler = self.calibrators.get(key)
        return float(scaler(np.array([probability]))[0]) if scaler else probability

    def lvef_interval(self, value: float) -> Any:
        """LVEF with its conformal interval (or without bounds)."""
        from cmrclip.serve.predict import LvefPrediction

        if self.conformal is None:
            return LvefPrediction(value, None, None, None)
        lower, upper = self.conformal.interval(np.array([value]))
        return LvefPrediction(value, float(lower[0]), float(upper[0]), 1.0 - self.conformal.alpha)

    def ood_check(self, embedding: np.ndarray, statistics: np.ndarray) -> tuple[float | None, str | None]:
        """The OOD guard's score (> 1: out of distribution) and a warning when it is exceeded."""
        if self.ood is None:
            return None, None
        score, parts = self.ood.score(embedding, statistics)
        if score > 1.0:
            return score, (
                f"out-of-distribution: unlike the training studies in {' and '.join(parts)}, i.e. farther than 99 % "
                "of held-out training-distribution studies; treat the predictions with care"
            )
        return score, None


def _fit_calibrators(cal: dict[str, Any], targets: list[str]) -> dict[str, PlattScaler]:
    scores, labels = cal.get("scores"), cal.get("labels")
    if scores is None or labels is None:
        return {}
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    out = {}
    for j, key in enumerate(targets):
        known = ~np.isnan(labels[:, j])
        y = labels[known, j]
        if y.size < _MIN_PLATT or y.min() == y.max():
            logger.info("condition %s: too few calibration labels; probabilities are not recalibrated", key)
            continue
        out[key] = fit_platt(y, np.clip(scores[known, j], 1e-6, 1 - 1e-6))
    return out


def _fit_conformal(cal: dict[str, Any]) -> ConformalInterval | None:
    pred, true = cal.get("lvef_pred"), cal.get("lvef_true")
    if pred is None or true is None:
        return None
    try:
        return fit_conformal(np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64), alpha=_ALPHA)
    except CmrclipError as exc:
        logger.warning("no LVEF interval: %s", exc)
        return None


def calibration_warnings(cal: dict[str, Any], parts: ModelParts) -> list[str]:
    """Warnings on how many validation studies the LVEF interval and the probability calibration were fitted on."""
    out = []
    n_lvef = int(np.isfinite(cal["lvef_true"]).sum()) if "lvef_true" in cal else 0
    if "lvef" in parts.regression and parts.conformal is None:
        out.append(f"no LVEF interval: the model's calibration split has {n_lvef} studies with LVEF, too few")
    elif parts.conformal is not None and parts.conformal.n_calibration < _FEW_CALIBRATION:
        out.append(
            f"the LVEF interval was fitted on only {parts.conformal.n_calibration} validation studies "
            f"(fewer than {_FEW_CALIBRATION}): its {1 - parts.conformal.alpha:.0%} coverage is not reliable"
        )
    n_studies = len(cal["scores"]) if "scores" in cal else 0
    missing = [k for k in parts.targets if k not in parts.calibrators]
    if missing:
        out.append(
            f"{len(missing)} of {len(parts.targets)} condition probabilities are not calibrated (fewer than "
            f"{_MIN_PLATT} labels or one class among {n_studies} validation studies); read them as raw scores"
        )
    elif n_studies < _FEW_CALIBRATION:
        out.append(f"condition probabilities were calibrated on only {n_studies} validation studies")
    return out


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def _probabilities(scores: np.ndarray) -> np.ndarray:
    """Calibration scores as probabilities (logits, recognised by values outside [0, 1], go through a sigmoid)."""
    finite = scores[np.isfinite(scores)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        return 1.0 / (1.0 + np.exp(-scores))
    return scores


def read_parts(path: Path, device: str = "cpu", clip_path: Path | None = None) -> ModelParts:
    """Load a bundle (:func:`cmrclip.models.bundle.load_bundle`) and fit its calibration.

    Raises:
        CheckpointError: if the file is missing, not a bundle, or its weights do not fit its architecture.
    """
    bundle = load_bundle(path)
    cal = {k: _as_array(v) for k, v in bundle.calibration.items() if k != "study_key"}
    if "scores" in cal:
        cal["scores"] = _probabilities(cal["scores"])
    ood = OodGuard.from_calibration(cal)
    if ood is None:
        logger.warning("%s was written before the out-of-distribution guard: no OOD check; re-run finetune", path)
    parts = ModelParts(
        network=bundle.model.to(device).eval(),
        recipe=bundle.recipe,
        targets=list(bundle.targets),
        regression=list(bundle.regression),
        thresholds={k: float(v) for k, v in bundle.thresholds.items()},
        calibrators=_fit_calibrators(cal, list(bundle.targets)),
        conformal=_fit_conformal(cal),
        ood=ood,
    )
    parts.calibration_warnings = calibration_warnings(cal, parts)
    for warning in parts.calibration_warnings:
        logger.warning("%s: %s", path, warning)
    if clip_path is not None:
        from cmrclip.models.prompts import load_clip_model

        clip, tokenizer = load_clip_model(clip_path)
        parts.clip = (clip.to(device).eval(), tokenizer)
    logger.info("loaded model bundle with %d conditions", len(parts.targets))
    return parts
