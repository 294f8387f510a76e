"""Prompt classifiers of the CLIP model: conditions and LVEF from text prompts, and study <-> report retrieval.

- Conditions: per condition a set of positive and a set of negative prompts (``configs/prompts.yaml``, editable;
  conditions without their own prompts use the templates with their taxonomy name). Each set's embedding is the
  normalised mean of its prompts' embeddings; the score is the softmax over the two sets' scaled similarities.
- LVEF: prompts "LVEF is estimated at N%" over a grid of N; the estimate is the softmax-weighted mean of N.
- Retrieval: recall@k of the study's own report among all reports (video -> text) and the reverse.

A study's embedding is the normalised mean of its clips' normalised embeddings. The zero-shot job that scores a
store with these classifiers is ``cmrclip.train.zeroshot``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from pydantic import Field

from cmrclip.conditions import condition_keys, load_conditions
from cmrclip.config import StrictModel, packaged_yaml
from cmrclip.errors import CheckpointError, ConfigError, LabelError
from cmrclip.models.bundle import encoder_from_payload
from cmrclip.models.clip import ClipModel
from cmrclip.models.convert import CheckpointInfo
from cmrclip.models.text import TextConfig, TextEncoder, load_tokenizer, tokenize

__all__ = [
    "CLIP_FORMAT",
    "LvefPrompts",
    "PromptConfig",
    "PromptSet",
    "clip_text_fn",
    "condition_scores",
    "load_clip_info",
    "load_clip_model",
    "load_prompts",
    "lvef_estimates",
    "prompt_classifier",
    "prompt_weights",
    "retrieval_recall",
]

logger = logging.getLogger(__name__)

CLIP_FORMAT = "cmrclip-clip/1"
TextFn = Callable[[Sequence[str]], torch.Tensor]


class PromptSet(StrictModel):
    """Positive and negative prompts of one condition (``{name}``/``{name_lower}`` are filled in templates)."""

    positive: tuple[str, ...]
    negative: tuple[str, ...]


class LvefPrompts(StrictModel):
    """The LVEF prompt and its grid of values (percent)."""

    template: str = "LVEF is estimated at {value}%."
    start: float = 10.0
    stop: float = 80.0
    step: float = 5.0

    def values(self) -> np.ndarray:
        """The grid of LVEF values."""
        return np.arange(self.start, self.stop + self.step / 2, self.step)


class PromptConfig(StrictModel):
    """The prompt file: templates, per-condition overrides, LVEF prompts."""

    templates: PromptSet
    conditions: dict[str, PromptSet] = Field(default_factory=dict)
    lvef: LvefPrompts = LvefPrompts()


def load_prompts(path: Path | None = None) -> PromptConfig:
    """Read the prompts YAML (the packaged ``prompts.yaml`` by default).

    Raises:
        ConfigError: if the file is missing or invalid.
        LabelError: if it names a condition that is not in the taxonomy.
    """
    if path is None:
        data = packaged_yaml("prompts.yaml")
    else:
        if not Path(path).is_file():
            raise ConfigError(f"prompts file {path} does not exist")
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    try:
        cfg = PromptConfig.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"invalid prompts file {path or 'cmrclip/configs/prompts.yaml'}: {exc}") from exc
    unknown = sorted(set(cfg.conditions) - set(condition_keys()))
    if unknown:
        raise LabelError(f"prompts file {path or 'prompts.yaml'} names unknown condition(s) {unknown}")
    return cfg


def _prompt_sets(cfg: PromptConfig, keys: Sequence[str]) -> dict[str, PromptSet]:
    names = {c.key: c.name for c in load_conditions()}
    out = {}
    for key in keys:
        if key in cfg.conditions:
            out[key] = cfg.conditions[key]
            continue
        fill = {"name": names[key], "name_lower": names[key][0].lower() + names[key][1:]}
        out[key] = PromptSet(
            positive=tuple(t.format(**fill) for t in cfg.templates.positive),
            negative=tuple(t.format(**fill) for t in cfg.templates.negative),
        )
    return out


def _set_embedding(text_fn: TextFn, prompts: Sequence[str]) -> torch.Tensor:
    return F.normalize(F.normalize(text_fn(list(prompts)), dim=-1).mean(0), dim=-1)


def prompt_weights(text_fn: TextFn, prompts: PromptConfig, keys: Sequence[str], scale: float) -> torch.Tensor:
    """``[K, E]`` linear weights ``scale * (pos_k - neg_k)`` of the prompt sets' embeddings.

    The softmax over a study's scaled similarities to the two sets is ``sigmoid(w_k . v)``: zero-shot
    classification is this linear layer on the study embedding ``v``.
    """
    sets = _prompt_sets(prompts, keys)
    pos = torch.stack([_set_embedding(text_fn, sets[k].positive) for k in keys])
    neg = torch.stack([_set_embedding(text_fn, sets[k].negative) for k in keys])
    return scale * (pos - neg)


def condition_scores(
    study_emb: torch.Tensor, text_fn: TextFn, prompts: PromptConfig, keys: Sequence[str], scale: float
) -> np.ndarray:
    """``[N, K]`` probabilities: softmax over the positive and negative prompt sets' scaled similarities."""
    return torch.sigmoid(study_emb @ prompt_weights(text_fn, prompts, keys, scale).T).numpy()


def lvef_estimates(study_emb: torch.Tensor, text_fn: TextFn, lvef: LvefPrompts, scale: float) -> np.ndarray:
    """``[N]`` LVEF: the grid values weighted by the softmax of the scaled prompt similarities."""
    values = lvef.values()
    prompts = [lvef.template.format(value=f"{v:g}") for v in values]
    text = F.normalize(text_fn(prompts), dim=-1)
    weights = (study_emb @ text.T * scale).softmax(dim=-1).numpy()
    return weights @ values


def retrieval_recall(
    video: torch.Tensor, text: torch.Tensor, ks: Sequence[int] = (1, 5, 10), tie_tol: float = 1e-6
) -> dict[str, float]:
    """Recall@k of paired retrieval in both directions; pair i is (video[i], text[i]).

    Ties (e.g. two studies with the same report text) are broken at random, in expectation: a query with ``g``
    candidates scoring higher than its own pair and ``e`` others scoring the same (within ``tie_tol``) is found at
    k with probability ``clip((k - g) / (e + 1), 0, 1)``. Chance level is ``k / N`` however many ties there are.

    Args:
        video: (N, D) embeddings (normalised or not; cosine similarity is used).
        text: (N, D) embeddings.
        ks: cut-offs.
        tie_tol: similarities closer than this count as equal.

    Returns:
        ``{"video_to_text_r@k": ..., "text_to_video_r@k": ..., "n_candidates": N}``.
    """
    sim = F.normalize(video.float(), dim=-1) @ F.normalize(text.float(), dim=-1).T
    own = sim.diagonal()
    out: dict[str, float] = {"n_candidates": float(sim.shape[0])}
    for name, diff in (("video_to_text", sim - own[:, None]), ("text_to_video", (sim - own[None, :]).T)):
        greater = (diff > tie_tol).sum(1).float()
        equal = (diff.abs() <= tie_tol).sum(1).float() - 1.0  # minus the pair itself
        for k in ks:
            out[f"{name}_r@{k}"] = float(((k - greater) / (equal + 1.0)).clamp(0.0, 1.0).mean())
    return out


def _clip_body(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"no CLIP checkpoint at {path}; run `cmrclip pretrain` (it writes OUT/clip.pt)")
    body = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(body, dict) or body.get("format") != CLIP_FORMAT:
        raise CheckpointError(f"{path} is not a CLIP checkpoint (format {CLIP_FORMAT!r} expected)")
    return body


def load_clip_info(path: Path) -> CheckpointInfo:
    """The :class:`CheckpointInfo` of a CLIP checkpoint's video tower (training patients, recipe, metrics).

    Raises:
        CheckpointError: if the file is missing or of another format.
    """
    return CheckpointInfo.from_dict(dict(_clip_body(Path(path))["video"].get("info") or {}))


def load_clip_model(path: Path) -> tuple[ClipModel, Any]:
    """Load ``OUT/clip.pt`` (written by ``cmrclip pretrain``) and its tokenizer, in eval mode.

    Raises:
        CheckpointError: if the file is missing, of another format, or its weights do not fit.
    """
    path = Path(path)
    body = _clip_body(path)
    video = encoder_from_payload(body["video"], where=str(path))
    text = TextEncoder(TextConfig.model_validate(body["text_config"]))
    clip = ClipModel(video, text, embed_dim=int(body["embed_dim"]))
    try:
        clip.load_state_dict(body["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the CLIP model: {exc}") from exc
    return clip.eval(), load_tokenizer(text.config)


def clip_text_fn(clip: ClipModel, tokenizer: Any, batch: int = 64) -> TextFn:
    """A function from texts to the CLIP model's (unnormalised) text embeddings ``[N, E]``, in batches."""

    @torch.no_grad()
    def encode(texts: Sequence[str]) -> torch.Tensor:
        out = []
        for i in range(0, len(texts), batch):
            tok = tokenize(tokenizer, texts[i : i + batch], clip.text.config.max_length)
            out.append(clip.encode_text(tok["input_ids"], tok["attention_mask"]))
        return torch.cat(out)

    return encode


@torch.no_grad()
def prompt_classifier(clip_path: Path, keys: Sequence[str], prompts_file: Path | None = None) -> torch.Tensor:
    """``[K, E]`` zero-shot condition weights (:func:`prompt_weights`) of a CLIP checkpoint, for a study head.

    Keys outside the taxonomy (the derived ``normal``) get a zero row: they start with no prior.

    Raises:
        CheckpointError: if the CLIP checkpoint cannot be loaded.
        ConfigError, LabelError: for a bad prompts file.
    """
    clip, tokenizer = load_clip_model(Path(clip_path))
    prompts = load_prompts(Path(prompts_file) if prompts_file else None)
    known = [k for k in keys if k in set(condition_keys())]
    weights = torch.zeros(len(keys), clip.embed_dim)
    if known:
        rows = prompt_weights(clip_text_fn(clip, tokenizer), prompts, known, float(clip.scale()))
        weights[[list(keys).index(k) for k in known]] = rows.float()
    return weights
