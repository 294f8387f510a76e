from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from cmrclip.data.splits import (
    DEFAULT_FRACTIONS,
    assign_splits,
    check_patient_disjoint,
    label_fraction,
    label_fractions,
    patient_order,
)
from cmrclip.errors import DataError


def _manifest(n_patients: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for s in range(int(rng.integers(1, 4))):
            rows.append({"study_key": f"s{p:04d}_{s}", "patient_key": f"p{p:04d}"})
    return pd.DataFrame(rows)


def test_splits_never_share_a_patient():
    m = _manifest()
    m["split"] = assign_splits(m, val=0.15, test=0.15, seed=3)
    check_patient_disjoint(m)
    per_patient = m.groupby("patient_key")["split"].nunique()
    assert (per_patient == 1).all()
    shares = m.groupby("split")["patient_key"].nunique() / m["patient_key"].nunique()
    assert abs(shares["val"] - 0.15) < 0.01 and abs(shares["test"] - 0.15) < 0.01


def test_split_is_deterministic_and_seed_dependent():
    m = _manifest()
    a = assign_splits(m, seed=1)
    assert a.equals(assign_splits(m.sample(frac=1.0, random_state=0).sort_index(), seed=1))
    assert not a.equals(assign_splits(m, seed=2))


def test_existing_split_kept_but_leak_detected():
    m = _manifest(20)
    m["split"] = assign_splits(m, seed=0)
    assert assign_splits(m, seed=99).equals(m["split"])
    leak = m.copy()
    first = leak.index[leak["patient_key"] == leak["patient_key"].iloc[0]]
    leak = pd.concat(
        [leak, leak.loc[first].assign(study_key="extra", split="test" if m.loc[first[0], "split"] != "test" else "val")]
    )
    with pytest.raises(DataError, match="more than one split"):
        assign_splits(leak)


def test_fractions_nest_and_are_per_patient():
    m = _manifest(300)
    for seed in (0, 1):
        subsets = label_fractions(m, DEFAULT_FRACTIONS, seed=seed)
        fracs = sorted(subsets)
        for small, big in itertools.pairwise(fracs):
            assert (subsets[small] <= subsets[big]).all()
        assert subsets[1.0].all()
        for mask in subsets.values():
            # a patient is either fully in or fully out
            assert (m.assign(k=mask).groupby("patient_key")["k"].nunique() == 1).all()
        assert m.loc[subsets[0.01], "patient_key"].nunique() == 3
    assert not label_fraction(m, 0.1, seed=0).equals(label_fraction(m, 0.1, seed=1))


def test_tiny_fraction_keeps_one_patient_and_bad_fraction_raises():
    m = _manifest(10)
    assert m.loc[label_fraction(m, 0.01), "patient_key"].nunique() == 1
    with pytest.raises(DataError, match="must be in"):
        label_fraction(m, 0.0)
    with pytest.raises(DataError, match="lacks column"):
        label_fraction(m.drop(columns="patient_key"), 0.5)


def test_patient_order_ignores_input_order():
    keys = [f"p{i}" for i in range(50)]
    assert patient_order(keys, 4) == patient_order(list(reversed(keys)), 4)
