"""cmrclip: learn what cine cardiac MRI shows from its radiology reports, then predict LVEF and 39 conditions.

The public API is imported lazily, so ``import cmrclip`` (and ``cmrclip --help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "load_conditions": "cmrclip.conditions",
    "load_config": "cmrclip.config",
    "CmrclipError": "cmrclip.errors",
    "generate_cohort": "cmrclip.synth",
    "StudyStore": "cmrclip.ingest.store",
    "deidentify": "cmrclip.text.deid",
    "label_report": "cmrclip.text.labeler",
    "load_video_encoder": "cmrclip.models.convert",
    "build_html_report": "cmrclip.evaluate.report",
    "evaluate_predictions": "cmrclip.evaluate.evaluation",
    "read_predictions": "cmrclip.evaluate.io",
    "load_model": "cmrclip.serve.predict",
    "load_bundle": "cmrclip.models.bundle",
}

__all__ = [
    "CmrclipError",
    "StudyStore",
    "__version__",
    "build_html_report",
    "deidentify",
    "evaluate_predictions",
    "generate_cohort",
    "label_report",
    "load_bundle",
    "load_conditions",
    "load_config",
    "load_model",
    "load_video_encoder",
    "read_predictions",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'cmrclip' has no attribute {name!r}")
