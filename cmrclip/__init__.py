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
}

__all__ = ["CmrclipError", "__version__", "load_conditions", "load_config"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'cmrclip' has no attribute {name!r}")
