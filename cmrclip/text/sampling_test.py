from __future__ import annotations

import pickle

import numpy as np
import pytest

from cmrclip.errors import ConfigError
from cmrclip.text.sampling import TextSamplerConfig, make_text_sampler
from cmrclip.text.sections import split_sentences

REPORT = (
    "INDICATION: Chest pain.\n"
    "FINDINGS: The LV is dilated. LVEF 30%. No thrombus. Mild MR. Normal RV.\n"
    "IMPRESSION: 1. Dilated cardiomyopathy. 2. No LV thrombus."
)
FINDINGS = ["The LV is dilated.", "LVEF 30%.", "No thrombus.", "Mild MR.", "Normal RV."]
IMPRESSION = ["Dilated cardiomyopathy.", "No LV thrombus."]


def test_deterministic_mode_keeps_chosen_sections_in_order():
    sampler = make_text_sampler(deterministic=True, max_sentences=20)
    assert sampler(REPORT, np.random.default_rng(0)) == " ".join(FINDINGS + IMPRESSION)
    only = make_text_sampler({"sections": ["impression"], "deterministic": True})
    assert only(REPORT, np.random.default_rng(0)) == " ".join(IMPRESSION)


def test_random_sampling_is_seeded_bounded_and_ordered():
    sampler = make_text_sampler(TextSamplerConfig(min_sentences=2, max_sentences=4))
    allowed = FINDINGS + IMPRESSION
    outputs = set()
    for seed in range(30):
        a = sampler(REPORT, np.random.default_rng(seed))
        assert a == sampler(REPORT, np.random.default_rng(seed))
        index = [allowed.index(s) for s in split_sentences(a)]
        assert 2 <= len(index) <= 4
        assert index == sorted(set(index))
        assert "Chest pain" not in a
        outputs.add(a)
    assert len(outputs) > 10


def test_section_dropout_keeps_at_least_one_section():
    sampler = make_text_sampler(section_dropout=0.9, max_sentences=20, min_sentences=20)
    for seed in range(20):
        text = sampler(REPORT, np.random.default_rng(seed))
        assert text in (" ".join(FINDINGS), " ".join(IMPRESSION), " ".join(FINDINGS + IMPRESSION))


def test_report_without_chosen_sections_falls_back_to_all_text():
    sampler = make_text_sampler(deterministic=True)
    assert sampler("The LV is dilated. No thrombus.", np.random.default_rng(0)) == "The LV is dilated. No thrombus."
    assert sampler("", np.random.default_rng(0)) == ""


def test_sampler_pickles_for_dataloader_workers():
    sampler = make_text_sampler(max_sentences=3)
    clone = pickle.loads(pickle.dumps(sampler))  # noqa: S301 - our own object
    assert clone(REPORT, np.random.default_rng(5)) == sampler(REPORT, np.random.default_rng(5))


@pytest.mark.parametrize(
    ("fields", "match"),
    [({"sections": ["conclusionz"]}, "unknown section"), ({"max_sentences": 0}, "invalid text sampler")],
)
def test_bad_settings_raise_config_error(fields, match):
    with pytest.raises(ConfigError, match=match):
        make_text_sampler(**fields)
