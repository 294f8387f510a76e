from __future__ import annotations

import re

import numpy as np
import pytest

from cmrclip.conditions import condition_keys
from cmrclip.synth.lexicon import NEGATABLE, POSITIVE, RELATED
from cmrclip.synth.phenotypes import sample_conditions
from cmrclip.synth.reports import ReportFacts, write_report
from cmrclip.synth.sites import SITES

NEGATED = re.compile(r"^(?:[a-z ]+: )?(no |there is no |.* is not seen)")


def _facts(positives: list[str], site: str = "riverside", ef: float = 57.0) -> ReportFacts:
    measures = {"lvef": ef, "lvedv_ml": 150.0, "lvesv_ml": 150.0 * (1 - ef / 100), "lv_mass_g": 120.0, "rvef": 55.0}
    return ReportFacts(site, SITES[site].institution, 1.5, "SIEMENS", "DOE^JANE^Q", "RS1234567", "19600101",
                       "20200202", "RS00001234", 60, "F", tuple(positives), measures)  # fmt: skip


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=\.)\s+|\n", text.lower()) if s]


def test_every_condition_has_a_mention_that_names_it():
    assert set(POSITIVE) == set(condition_keys())
    assert set(NEGATABLE) <= set(condition_keys())
    assert all(set(v) <= set(condition_keys()) for v in RELATED.values())


@pytest.mark.parametrize("seed", range(40))
def test_report_affirms_exactly_the_positives_and_negates_only_absent_ones(seed):
    rng = np.random.default_rng(seed)
    positives = sample_conditions(rng, condition_keys())
    site = sorted(SITES)[seed % len(SITES)]
    text, negated = write_report(_facts(positives, site), rng)
    affirmed = [s for s in _sentences(text) if not NEGATED.search(s)]
    for key in condition_keys():
        said = any(p.lower() in s for p in POSITIVE[key] for s in affirmed)
        assert said == (key in positives), key
    assert not set(negated) & set(positives)
    negations = [s for s in _sentences(text) if NEGATED.search(s)]
    for key in negated:
        assert any(noun.lower() in s for noun in NEGATABLE[key] for s in negations), key
    assert "RS1234567" in text and "DOE, JANE" in text


def test_reports_negate_a_sample_and_vary_by_site():
    texts = [write_report(_facts([], site), np.random.default_rng(1))[0] for site in sorted(SITES)]
    headings = {t.split("\n\n")[2].split()[0] for t in texts}
    assert len(headings) >= 3
    counts = [len(write_report(_facts([]), np.random.default_rng(s))[1]) for s in range(20)]
    assert min(counts) >= 2 and max(counts) <= 5


def test_reported_lvef_is_truth_plus_reporting_noise():
    errors = []
    for seed in range(200):
        text, _ = write_report(_facts([], ef=48.0), np.random.default_rng(seed))
        match = re.search(r"LVEF (\d+)(?:-(\d+))?%", text)
        assert match, text
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        errors.append((low + high) / 2 - 48.0)
    errors = np.array(errors)
    assert np.abs(errors).max() <= 12
    assert 0.5 < errors.std() < 5 and abs(errors.mean()) < 1.5
