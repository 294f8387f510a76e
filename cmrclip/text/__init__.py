"""Report text: clean-up, sections, de-identification (tags or surrogates), the 39-condition labeler, LVEF.

Also sentence sampling for pretraining (:func:`make_text_sampler`) and tokenizer training (``text.tokenizer``).
"""

from __future__ import annotations

from cmrclip.text.deid import DeidResult, deidentify, scrub_report
from cmrclip.text.labeler import Mention, ReportLabels, label_report
from cmrclip.text.lvef import Measurements, extract_measurements
from cmrclip.text.sampling import TextSampler, TextSamplerConfig, make_text_sampler
from cmrclip.text.sections import Section, split_sections, split_sentences
from cmrclip.text.surrogate import Surrogates

__all__ = [
    "DeidResult",
    "Measurements",
    "Mention",
    "ReportLabels",
    "Section",
    "Surrogates",
    "TextSampler",
    "TextSamplerConfig",
    "deidentify",
    "extract_measurements",
    "label_report",
    "make_text_sampler",
    "scrub_report",
    "split_sections",
    "split_sentences",
]
