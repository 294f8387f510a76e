from __future__ import annotations

import pytest

from cmrclip.conditions import condition_keys, load_conditions, validate_label_names
from cmrclip.errors import ConfigError, LabelError


def test_packaged_taxonomy_has_39_unique_conditions():
    conditions = load_conditions()
    assert len(conditions) == 39
    assert len({c.key for c in conditions}) == 39
    assert condition_keys()[8] == "Hypertrophic.Cardiomyopathy"
    assert {c.key for c in conditions if not c.cine_visible} == {"Myocarditis", "Pericarditis", "Sarcoidosis"}


def test_unknown_label_is_named():
    with pytest.raises(LabelError, match=r"Not\.A\.Condition"):
        validate_label_names(["Amyloid", "Not.A.Condition"])


def test_malformed_file(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("conditions:\n  - {name: x}\n")
    with pytest.raises(ConfigError, match="needs 'key'"):
        load_conditions(bad)
