"""Report text for contrastive pretraining: pick sections and sample sentences (a text augmentation).

``train`` builds a sampler here and injects it into ``data`` as a plain callable ``sampler(text, rng) -> str``
(``data`` does not import ``text``). The sampler is a picklable object, so it works in DataLoader workers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field, ValidationError

from cmrclip.config import StrictModel
from cmrclip.errors import ConfigError
from cmrclip.text.normalize import decode_report, expand_abbreviations, normalize_text
from cmrclip.text.sections import SECTION_NAMES, split_sections, split_sentences

__all__ = ["TextSampler", "TextSamplerConfig", "make_text_sampler"]

logger = logging.getLogger(__name__)


class TextSamplerConfig(StrictModel):
    """How report text is sampled for pretraining.

    Attributes:
        sections: sections to draw from, in output order (``findings``, ``impression``, ``history``, ``body`` ...).
            Text without any of them (e.g. no headers) falls back to all of its sentences.
        max_sentences: at most this many sentences are kept (a random subset when there are more).
        min_sentences: at least this many (or all, if fewer exist) when sampling.
        section_dropout: probability of dropping each chosen section (at least one stays).
        shuffle: shuffle the kept sentences instead of keeping reading order.
        deterministic: no randomness: all sentences of the chosen sections, truncated to ``max_sentences``
            (for validation and zero-shot).
    """

    sections: tuple[str, ...] = ("findings", "impression")
    max_sentences: int = Field(default=8, ge=1)
    min_sentences: int = Field(default=1, ge=1)
    section_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    shuffle: bool = False
    deterministic: bool = False


class TextSampler:
    """Callable ``sampler(text, rng) -> str`` built from a :class:`TextSamplerConfig`."""

    def __init__(self, config: TextSamplerConfig) -> None:
        unknown = [s for s in config.sections if s not in SECTION_NAMES]
        if unknown:
            raise ConfigError(f"text sampler: unknown section(s) {unknown}; choose from {list(SECTION_NAMES)}")
        self.config = config

    def sentences(self, text: str) -> list[list[str]]:
        """The sentences of each chosen section present in ``text`` (all sentences if none is present)."""
        clean = expand_abbreviations(normalize_text(decode_report(text).text))
        sections = split_sections(clean)
        chosen = [[s for s in sections if s.name == name] for name in self.config.sections]
        groups = [split_sentences(" ".join(s.text for s in group)) for group in chosen if group]
        groups = [g for g in groups if g]
        if not groups:
            groups = [split_sentences(" ".join(s.text for s in sections))]
        return [g for g in groups if g]

    def __call__(self, text: str, rng: np.random.Generator) -> str:
        """Sample text from ``text`` with the generator ``rng`` (unused when ``deterministic``)."""
        groups = self.sentences(text)
        cfg = self.config
        if cfg.deterministic:
            return " ".join([s for g in groups for s in g][: cfg.max_sentences])
        if cfg.section_dropout and len(groups) > 1:
            keep = rng.random(len(groups)) >= cfg.section_dropout
            if not keep.any():
                keep[rng.integers(len(groups))] = True
            groups = [g for g, k in zip(groups, keep, strict=True) if k]
        flat = [s for g in groups for s in g]
        if not flat:
            return ""
        low = min(cfg.min_sentences, len(flat))
        high = min(cfg.max_sentences, len(flat))
        count = int(rng.integers(low, high + 1))
        picked = np.sort(rng.choice(len(flat), size=count, replace=False))
        if cfg.shuffle:
            rng.shuffle(picked)
        return " ".join(flat[i] for i in picked)


def make_text_sampler(config: TextSamplerConfig | Mapping[str, Any] | None = None, **fields: Any) -> TextSampler:
    """Build the pretraining text sampler.

    Args:
        config: a :class:`TextSamplerConfig` or a dict of its fields (defaults when ``None``).
        **fields: overrides of config fields, e.g. ``make_text_sampler(sections=("impression",), max_sentences=4)``.

    Raises:
        ConfigError: for an unknown section name or an invalid field value.
    """
    base = config.model_dump() if isinstance(config, TextSamplerConfig) else dict(config or {})
    try:
        cfg = TextSamplerConfig.model_validate({**base, **fields})
    except ValidationError as exc:
        raise ConfigError(f"invalid text sampler settings {fields}:\n{exc}") from exc
    return TextSampler(cfg)
