"""Synthetic cine CMR cohort: a 3D+time heart model cut into DICOM cine planes, reports and exact ground truth."""

from __future__ import annotations

from cmrclip.synth.cohort import GT_COLUMNS, CohortSummary, SynthConfig, generate_cohort
from cmrclip.synth.preview import write_preview

__all__ = ["GT_COLUMNS", "CohortSummary", "SynthConfig", "generate_cohort", "write_preview"]
