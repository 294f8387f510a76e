from __future__ import annotations

import numpy as np
import pytest
import torch

from cmrclip.errors import ConfigError
from cmrclip.models.normalize import normalize, normalize_legacy, normalize_unit


def test_legacy_follows_the_reference_formula_and_operator_order():
    raw = np.array([0.0, 0.45, 255.0, 1200.0])
    expected = np.array([-0.45 / 57.375, 0.0, 254.55 / 57.375, 1199.55 / 57.375])  # 0.225 * 255 = 57.375
    np.testing.assert_allclose(normalize_legacy(raw), expected, rtol=1e-12)
    # not the usual (raw / 255 - 0.45) / 0.225
    assert not np.allclose(normalize_legacy(raw), (raw / 255 - 0.45) / 0.225)
    torch.testing.assert_close(normalize(torch.tensor(raw), "legacy"), torch.tensor(expected))


def test_unit_maps_zero_to_one_onto_minus_two_to_two():
    x = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(normalize_unit(x), torch.tensor([-2.0, 0.0, 2.0]))
    np.testing.assert_allclose(normalize(np.array([0.25]), "unit"), [-1.0])


def test_unknown_normalization_raises():
    with pytest.raises(ConfigError, match="unknown normalization 'imagenet'"):
        normalize(np.zeros(2), "imagenet")
