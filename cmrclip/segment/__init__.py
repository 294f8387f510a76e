"""LV/RV/myocardium segmentation of SAX cines and the volumes it gives (MONAI U-Net).

Labels everywhere in this package: 0 background, 1 LV cavity, 2 LV myocardium, 3 RV cavity.
"""

from __future__ import annotations

from cmrclip.segment.infer import SaxStack, SegmentationResult, sax_stack, segment_study
from cmrclip.segment.model import Segmenter, SegModelConfig, build_unet, load_segmenter, save_segmenter
from cmrclip.segment.volumes import LABELS, Volumes, find_ed_es, volumes_from_masks

__all__ = [
    "LABELS",
    "SaxStack",
    "SegModelConfig",
    "SegmentationResult",
    "Segmenter",
    "Volumes",
    "build_unet",
    "find_ed_es",
    "load_segmenter",
    "save_segmenter",
    "sax_stack",
    "segment_study",
    "volumes_from_masks",
]
