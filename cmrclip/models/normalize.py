"""Input normalisations a video tower's weights expect: our ``unit`` and the original system's ``legacy`` formula.

Both work on numpy arrays and torch tensors alike. ``data`` and ``serve`` pick one by the preset's
``normalization`` field (see :class:`cmrclip.models.video.MViTConfig`).
"""

from __future__ import annotations

from typing import Literal, TypeVar

from cmrclip.errors import ConfigError

__all__ = ["NORMALIZATIONS", "Normalization", "normalize", "normalize_legacy", "normalize_unit"]

Normalization = Literal["unit", "legacy"]
ArrayT = TypeVar("ArrayT")


def normalize_unit(x: ArrayT) -> ArrayT:
    """Ours: intensities in [0, 1] -> ``(x - 0.5) / 0.25`` (about zero mean, unit spread)."""
    return (x - 0.5) / 0.25


def normalize_legacy(raw: ArrayT) -> ArrayT:
    """The original system's formula, operator order exactly as theirs: ``(raw - 0.45) / 0.225 / 255``.

    Args:
        raw: the raw stored DICOM intensities (no windowing), as their preprocessing kept them.
    """
    return (raw - 0.45) / 0.225 / 255


NORMALIZATIONS = {"unit": normalize_unit, "legacy": normalize_legacy}


def normalize(x: ArrayT, mode: str) -> ArrayT:
    """Apply the named normalisation.

    Raises:
        ConfigError: if ``mode`` is not ``"unit"`` or ``"legacy"``.
    """
    if mode not in NORMALIZATIONS:
        raise ConfigError(f"unknown normalization {mode!r}; use one of {sorted(NORMALIZATIONS)}")
    return NORMALIZATIONS[mode](x)
