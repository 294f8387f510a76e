"""Fixtures of the evaluate tests: small synthetic prediction tables in the cmrclip layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def synthetic_table(seed: int = 0, n: int = 300, shift: float = 1.5, lvef_noise: float = 5.0) -> pd.DataFrame:
    """Three conditions (one rare), LVEF, with scores that separate the classes by ``shift`` logits."""
    rng = np.random.default_rng(seed)
    ids = {"study_key": [f"s{i:04d}" for i in range(n)], "patient_key": [f"p{i // 2}" for i in range(n)]}
    table = pd.DataFrame(ids)
    for key, prevalence in (("Hypertrophic.Cardiomyopathy", 0.3), ("Amyloid", 0.15), ("Atrial.Myxoma", 0.015)):
        y = np.zeros(n)
        y[rng.choice(n, max(1, round(prevalence * n)), replace=False)] = 1.0
        logit = rng.normal(size=n) + shift * y - 1.0
        table[f"{key}_score"] = 1 / (1 + np.exp(-logit))
        table[key] = y
    table.loc[5, "Amyloid"] = np.nan  # unknown truth
    lvef = rng.uniform(20, 75, n)
    table["lvef"] = lvef
    table["lvef_pred"] = lvef + rng.normal(0, lvef_noise, n) - 1.0
    return table


@pytest.fixture
def predictions_csv(tmp_path):
    path = tmp_path / "model.csv"
    synthetic_table(0).to_csv(path, index=False)
    return path


@pytest.fixture
def baseline_csv(tmp_path):
    path = tmp_path / "baseline.csv"
    synthetic_table(0, shift=0.5, lvef_noise=9.0).to_csv(path, index=False)
    return path
