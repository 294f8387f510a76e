"""The study model bundle ``OUT/model.pt``: encoder, head, targets, and the validation split's calibration data.

Format ``cmrclip-study-model/1`` (docs/ARCHITECTURE.md §6)::

    {"format", "encoder": <encoder checkpoint dict>, "head": <HeadConfig dict>, "targets": [...],
     "regression": [...], "state_dict": <the whole StudyModel>, "calibration": {"study_key", "lvef_pred",
     "lvef_true", "scores", "labels", "embeddings", "ood_*"}, "thresholds": {key: float}, "metrics": {...},
     "recipe": <InputRecipe dict>}

``recipe`` (:mod:`cmrclip.models.recipe`) is how the model's clips were made in fine-tuning: every path that feeds
the bundle (predict, explain, serve, embed) builds its clips from it.

The encoder (with its possibly fine-tuned projection) is also given in the encoder checkpoint format, so encoder
tools can read it on its own; its tensors share storage with ``state_dict`` and are written once. ``calibration``
holds validation predictions and truths (NaN = unknown) from which ``serve``/``evaluate`` fit conformal intervals
and probability calibration. The file holds only tensors, numbers and strings, so it loads with
``weights_only=True``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cmrclip.errors import CheckpointError
from cmrclip.models.convert import FORMAT as ENCODER_FORMAT
from cmrclip.models.convert import CheckpointInfo
from cmrclip.models.heads import HeadConfig, StudyModel
from cmrclip.models.recipe import InputRecipe, recipe_for, recipe_from
from cmrclip.models.registry import build_video_encoder

__all__ = [
    "BUNDLE_FORMAT",
    "ENCODER_FORMAT",
    "Bundle",
    "encoder_from_payload",
    "encoder_payload",
    "load_bundle",
    "save_bundle",
]

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = "cmrclip-study-model/1"


def _info_dict(info: Any) -> dict[str, Any]:
    if info is None:
        return {}
    if is_dataclass(info):
        return asdict(info)
    return dict(info) if isinstance(info, Mapping) else {"description": str(info)}


def encoder_payload(encoder: nn.Module) -> dict[str, Any]:
    """The encoder checkpoint dict (docs §6) of an :class:`~cmrclip.models.video.MViT` and its projection."""
    cfg = encoder.config
    return {
        "format": ENCODER_FORMAT,
        "preset": cfg.model_dump(mode="json"),
        "embed_dim": int(cfg.proj_dim),
        "normalization": cfg.normalization,
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        "info": _info_dict(getattr(encoder, "info", None)),
    }


def encoder_from_payload(payload: Mapping[str, Any], where: str = "bundle") -> nn.Module:
    """Rebuild an encoder from its checkpoint dict, loading strictly.

    Raises:
        CheckpointError: if the format is wrong or keys/shapes disagree (listing them).
    """
    if payload.get("format") != ENCODER_FORMAT:
        raise CheckpointError(f"{where}: encoder format {payload.get('format')!r}, expected {ENCODER_FORMAT!r}")
    encoder = build_video_encoder(dict(payload["preset"]))
    result = encoder.load_state_dict(payload["state_dict"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{where}: encoder weights do not match preset {payload['preset'].get('name')!r}: missing "
            f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}; the file was written by another "
            "version or edited"
        )
    encoder.info = CheckpointInfo.from_dict(dict(payload.get("info") or {}))
    return encoder


def _as_tensor(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, list | tuple) and value and not isinstance(value[0], str):
        return torch.as_tensor(value, dtype=torch.float32)
    return value


def save_bundle(
    path: Path,
    model: StudyModel,
    calibration: Mapping[str, Any],
    thresholds: Mapping[str, float] | None = None,
    metrics: Mapping[str, Any] | None = None,
    recipe: InputRecipe | None = None,
) -> Path:
    """Write ``model`` and its validation calibration data to ``path`` (written to a temp file, then renamed).

    Args:
        path: the bundle file (``OUT/model.pt``).
        model: the trained study model.
        calibration: validation ``study_key``, ``lvef_pred``, ``lvef_true``, ``scores`` [n, K] (probabilities),
            ``labels`` [n, K] (NaN = unknown) and ``embeddings`` [n, E] (attention-weighted, L2-normalised study
            embeddings) and the ``ood_*`` tensors of :meth:`cmrclip.models.ood.OodGuard.to_calibration` (serve's
            out-of-distribution guard).
        thresholds: decision threshold per condition key.
        metrics: validation/test metrics to keep with the model.
        recipe: the input recipe the model was trained with (default: its preset's, with the default bag).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu()
    body = {
        "format": BUNDLE_FORMAT,
        "encoder": encoder_payload(model.encoder),
        "head": model.head_config.model_dump(mode="json"),
        "targets": list(model.targets),
        "regression": list(model.regression),
        "state_dict": {k: v.detach() for k, v in model.state_dict().items()},
        "calibration": {k: _as_tensor(v) for k, v in calibration.items()},
        "thresholds": {k: float(v) for k, v in (thresholds or {}).items()},
        "metrics": dict(metrics or {}),
        "recipe": (recipe or recipe_for(model.encoder)).model_dump(mode="json"),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(body, tmp)
    tmp.replace(path)
    logger.info("wrote study model bundle to %s", path)
    return path


@dataclass
class Bundle:
    """A loaded study model bundle."""

    model: StudyModel
    calibration: dict[str, Any]
    thresholds: dict[str, float]
    metrics: dict[str, Any]
    recipe: InputRecipe

    @property
    def normalization(self) -> str:
        """The input normalisation (from the recipe)."""
        return self.recipe.normalization

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(T, H, W) of one clip (from the recipe)."""
        return (self.recipe.frames, *self.recipe.size)

    @property
    def targets(self) -> list[str]:
        """Condition targets, in logit order."""
        return self.model.targets

    @property
    def regression(self) -> list[str]:
        """Numeric targets, in output order."""
        return self.model.regression


def load_bundle(path: Path, map_location: str | torch.device = "cpu") -> Bundle:
    """Read a bundle written by :func:`save_bundle`; the model is returned in eval mode.

    Raises:
        CheckpointError: if the file is missing, not a bundle, or its weights do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no study model bundle at {path}; train one with `cmrclip finetune`")
    try:
        body = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable torch file: {exc}") from exc
    if not isinstance(body, dict) or body.get("format") != BUNDLE_FORMAT:
        raise CheckpointError(f"{path} is not a study model bundle (format {BUNDLE_FORMAT!r} expected)")
    encoder = encoder_from_payload(body["encoder"], where=str(path))
    model = StudyModel(
        encoder,
        encoder.video_proj,
        feature_dim=encoder.out_dim,
        head=HeadConfig.model_validate(body["head"]),
        targets=body["targets"],
        regression=body["regression"],
    )
    result = model.load_state_dict(body["state_dict"], strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(("encoder.", "projection."))]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"{path}: head weights do not fit: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    return Bundle(
        model=model.eval(),
        calibration=dict(body.get("calibration", {})),
        thresholds=dict(body.get("thresholds", {})),
        metrics=dict(body.get("metrics", {})),
        recipe=recipe_from(body.get("recipe"), encoder, str(path)),
    )
