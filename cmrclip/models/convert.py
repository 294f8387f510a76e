"""Video-encoder checkpoints: ours, and the original system's Lightning and Kinetics formats, loaded strictly.

Foreign keys map to ours through an explicit table (prefixes removed with ``removeprefix``, never ``str.strip``);
every key is accounted for: mapped, knowingly ignored (listed), or an error naming it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from cmrclip.errors import CheckpointError
from cmrclip.models.registry import build_video_encoder, load_preset
from cmrclip.models.video import MViT, MViTConfig

__all__ = [
    "FORMAT",
    "LEGACY_PREPROCESSING",
    "CheckpointInfo",
    "ConversionReport",
    "convert_state_dict",
    "detect_format",
    "file_sha256",
    "import_checkpoint",
    "key_table",
    "load_video_encoder",
    "save_video_encoder",
]

logger = logging.getLogger(__name__)

FORMAT = "cmrclip-video-encoder/1"
LEGACY_PREPROCESSING = (
    "raw DICOM intensities (no windowing); short side nearest-resized to 480, centre crop 360; short side "
    "bilinear-resized to 264, centre crop 224; x = (raw - 0.45) / 0.225 / 255; 16 frames over one cardiac cycle"
)
_SHOW = 20  # key names listed per category in an error


@dataclass
class CheckpointInfo:
    """Where weights came from and how to feed them (torchvision's ``Weights``, minus the URL)."""

    preset: str = ""
    normalization: str = "unit"
    preprocessing: str = ""
    source_format: str = "cmrclip"
    source_sha256: str = ""
    sha256: str = ""  # of the file these weights were last loaded from
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    train_patients: list[str] | None = None
    """Patient keys whose studies trained these weights or anything upstream of them (None: not recorded); jobs
    refuse to score a test patient listed here (:func:`cmrclip.data.store_split.check_no_test_leak`)."""
    recipe: dict[str, Any] = field(default_factory=dict)
    """The input recipe the weights were trained on (:class:`cmrclip.models.recipe.InputRecipe` as a dict)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-types dict (for the checkpoint file)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckpointInfo:
        """Inverse of :meth:`to_dict`; unknown fields are ignored with a log line."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if len(known) != len(data):
            logger.info("ignoring unknown CheckpointInfo fields %s", sorted(set(data) - set(known)))
        return cls(**known)


@dataclass
class ConversionReport:
    """How the keys of a foreign state dict were accounted for."""

    source_format: str
    mapped: int
    ignored: list[str]
    initialised: list[str]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def detect_format(obj: Any) -> str:
    """``"cmrclip"``, ``"lightning"`` (``state_dict`` with ``model.`` keys) or ``"kinetics"`` (``model_state``).

    Raises:
        CheckpointError: if the object is none of these.
    """
    if isinstance(obj, dict):
        if obj.get("format") == FORMAT:
            return "cmrclip"
        state = obj.get("state_dict")
        if isinstance(state, dict) and any(str(k).startswith("model.video_encoder.") for k in state):
            return "lightning"
        if isinstance(obj.get("model_state"), dict):
            return "kinetics"
    top = sorted(obj)[:10] if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError(
        f"unrecognised checkpoint (top-level {top}); expected a cmrclip encoder file, a Lightning checkpoint with "
        "state_dict['model.video_encoder.*'], or a Kinetics file with model_state"
    )


def key_table(source_format: str, our_keys: list[str]) -> dict[str, str]:
    """Explicit foreign-key -> our-key table for every key of our model that the format provides."""
    if source_format == "lightning":
        return {f"model.{k}": k for k in our_keys}
    if source_format == "kinetics":
        return {k.removeprefix("video_encoder."): k for k in our_keys if k.startswith("video_encoder.")}
    return {k: k for k in our_keys}


def _knowingly_ignored(source_format: str, key: str) -> bool:
    """Keys we drop on purpose: the Lightning text tower and friends, the Kinetics classifier head."""
    if source_format == "lightning":
        return key.startswith("model.") and not key.startswith(("model.video_encoder.", "model.video_proj."))
    return source_format == "kinetics" and key.startswith("head.")


def _listing(title: str, names: list[str]) -> str:
    more = f" (+{len(names) - _SHOW} more)" if len(names) > _SHOW else ""
    return f"{title} ({len(names)}): {', '.join(names[:_SHOW])}{more}"


def convert_state_dict(
    foreign: dict[str, torch.Tensor], source_format: str, model: MViT
) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Map a foreign state dict onto ``model``'s keys, checking every name and shape.

    Kinetics files carry no ``video_proj``: it keeps ``model``'s (seeded) initialisation and is listed as such.

    Raises:
        CheckpointError: naming every missing, unexpected and mis-shaped key.
    """
    ours = model.state_dict()
    table = key_table(source_format, list(ours))
    state, ignored, unexpected, misshaped = {}, [], [], []
    for key, value in foreign.items():
        if key in table:
            target = table[key]
            if tuple(value.shape) != tuple(ours[target].shape):
                misshaped.append(f"{key} {tuple(value.shape)} vs model {tuple(ours[target].shape)}")
            state[target] = value
        elif _knowingly_ignored(source_format, key):
            ignored.append(key)
        else:
            unexpected.append(key)
    initialised = [k for k in ours if k not in state and source_format == "kinetics" and k.startswith("video_proj.")]
    missing = [k for k in ours if k not in state and k not in initialised]
    if missing or unexpected or misshaped:
        parts = [_listing(t, n) for t, n in (("missing", missing), ("unexpected", unexpected)) if n]
        parts += [_listing("mis-shaped", misshaped)] if misshaped else []
        raise CheckpointError(
            f"{source_format} checkpoint does not fit video preset {model.config.name!r}: " + "; ".join(parts)
        )
    state.update({k: ours[k] for k in initialised})
    if ignored:
        logger.info("ignored %d non-video keys knowingly: %s", len(ignored), ", ".join(ignored[:_SHOW]))
    return state, ConversionReport(source_format, len(state) - len(initialised), ignored, initialised)


def _infer_size(foreign: dict[str, torch.Tensor], source_format: str, cfg: MViTConfig) -> MViTConfig:
    """Size the preset's positional embeddings (input_size) from the checkpoint's, for foreign formats."""
    prefix = {"lightning": "model.video_encoder.", "kinetics": ""}[source_format]
    spatial = foreign.get(f"{prefix}cls_positional_encoding.pos_embed_spatial")
    temporal = foreign.get(f"{prefix}cls_positional_encoding.pos_embed_temporal")
    if spatial is None or temporal is None:
        return cfg
    side = math.isqrt(spatial.shape[1])
    if side * side != spatial.shape[1]:
        return cfg
    size = (temporal.shape[1] * cfg.patch_stride[0], side * cfg.patch_stride[1], side * cfg.patch_stride[2])
    return cfg.model_copy(update={"input_size": size})


def _torch_load(path: Path, allow_pickle: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as exc:
        if allow_pickle or "Unsupported global" not in str(exc):
            raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
        raise CheckpointError(
            f"{path} holds pickled Python objects besides tensors; if you trust its source, load it with "
            "allow_pickle=True (CLI: --allow-pickle)"
        ) from exc
    except (OSError, RuntimeError, EOFError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc


def _load_ours(obj: dict[str, Any], preset: str | None, path: Path) -> MViT:
    try:
        cfg = MViTConfig.model_validate(obj.get("preset"))
    except ValidationError as exc:
        raise CheckpointError(f"{path}: its stored video preset is invalid ({exc}); re-export the encoder") from exc
    if not isinstance(obj.get("state_dict"), dict):
        raise CheckpointError(f"{path} is a cmrclip encoder file without a state_dict; re-export the encoder")
    if preset is not None and preset != cfg.name:
        raise CheckpointError(f"{path} holds video preset {cfg.name!r}, not the requested {preset!r}; drop preset=")
    model = build_video_encoder(cfg)
    state, _ = convert_state_dict(obj["state_dict"], "cmrclip", model)
    model.load_state_dict(state, strict=True)
    model.info = CheckpointInfo.from_dict(obj.get("info") or {})
    return model


def _load_foreign(obj: dict[str, Any], fmt: str, preset: str | None) -> MViT:
    foreign = obj["state_dict"] if fmt == "lightning" else obj["model_state"]
    cfg = _infer_size(foreign, fmt, load_preset(preset or "mvit_b_16x4"))
    if fmt == "kinetics":
        cfg = cfg.model_copy(update={"normalization": "unit"})
    model = build_video_encoder(cfg)
    state, report = convert_state_dict(foreign, fmt, model)
    model.load_state_dict(state, strict=True)
    notes = [f"ignored {len(report.ignored)} non-video keys"] if report.ignored else []
    if report.initialised:
        notes.append("video_proj randomly initialised (seed 0): the Kinetics file has none")
    if fmt == "kinetics":
        notes.append("Kinetics-400 weights were trained on (x - 0.45) / 0.225 of [0, 1] frames; 'unit' is close")
    model.info = CheckpointInfo(
        preset=cfg.name,
        normalization=cfg.normalization,
        preprocessing=LEGACY_PREPROCESSING if fmt == "lightning" else "",
        source_format=fmt,
        notes=notes,
    )
    return model


def load_video_encoder(path: Path | str, preset: str | None = None, allow_pickle: bool = False) -> MViT:
    """Load a video tower (with its projection) in eval mode from ours, a Lightning or a Kinetics checkpoint.

    Args:
        path: the checkpoint file.
        preset: video preset of a foreign checkpoint (default ``mvit_b_16x4``; its input size follows the file's
            positional embeddings). For our own files it must match the stored preset, if given.
        allow_pickle: let ``torch.load`` unpickle arbitrary objects (only for files you trust).

    Returns:
        The encoder in eval mode, ``encoder.info`` holding its :class:`CheckpointInfo` (``sha256`` of ``path``).

    Raises:
        CheckpointError: if the file is unreadable, of unknown format, or its keys/shapes do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    obj = _torch_load(path, allow_pickle)
    fmt = detect_format(obj)
    model = _load_ours(obj, preset, path) if fmt == "cmrclip" else _load_foreign(obj, fmt, preset)
    model.info.sha256 = file_sha256(path)
    if fmt != "cmrclip":
        model.info.source_sha256 = model.info.sha256
    logger.info("loaded %s video encoder %s from %s", fmt, model.config.name, path)
    return model.eval()


def save_video_encoder(encoder: MViT, path: Path | str, info: CheckpointInfo | None = None) -> str:
    """Write ``encoder`` in our format (atomically) and return the file's SHA-256.

    The file is ``{"format", "preset", "embed_dim", "normalization", "state_dict", "info"}``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = info or encoder.info or CheckpointInfo()
    info = CheckpointInfo.from_dict(info.to_dict() | {"preset": encoder.config.name, "sha256": ""})
    info.normalization = encoder.config.normalization
    body = {
        "format": FORMAT,
        "preset": encoder.config.model_dump(mode="json"),
        "embed_dim": encoder.config.proj_dim,
        "normalization": encoder.config.normalization,
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        "info": info.to_dict(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(body, tmp)
    tmp.replace(path)
    return file_sha256(path)


def import_checkpoint(
    src: Path | str, out: Path | str, preset: str | None = None, allow_pickle: bool = False
) -> CheckpointInfo:
    """Convert an original-format (or our) checkpoint at ``src`` into our format at ``out``.

    Returns:
        The written file's :class:`CheckpointInfo` (``sha256`` of ``out``, ``source_sha256`` of ``src``).
    """
    encoder = load_video_encoder(src, preset=preset, allow_pickle=allow_pickle)
    info = encoder.info
    info.sha256 = save_video_encoder(encoder, out, info)
    return info
