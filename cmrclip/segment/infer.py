"""Segment every SAX slice and frame of a study, then measure its volumes.

Pipeline per study: resample in plane to the model's spacing, scale each image's 1st..99th intensity percentile to
0..1, find the heart on the first frame of every slice (MONAI sliding-window inference over the whole image), crop a
``roi_px`` square around it, predict every frame of every slice (2.5D: with its neighbouring slices as channels;
averaging over flips when ``tta_flips``), map the probabilities back to the study's own pixel grid, take the arg-max,
keep the largest connected component of each label over the whole study (slices, frames and pixels together: the LV
cavity, the myocardium and the RV are each one object in space and time, so blobs on slices beyond the apex or the
base that do not touch the heart are dropped) and fill holes in the LV cavity image by image (MONAI's
``KeepLargestConnectedComponent`` and ``FillHoles``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.transforms import FillHoles, KeepLargestConnectedComponent, Resize
from monai.utils import convert_to_tensor

from cmrclip.errors import DataError
from cmrclip.ingest.store import StudyFile
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.segment.model import Segmenter
from cmrclip.segment.preprocess import context_stack, normalize_images, resample, zoom_factors
from cmrclip.segment.volumes import Volumes, volumes_from_masks

__all__ = ["SaxStack", "SegmentationResult", "predict_probabilities", "sax_stack", "segment_study"]

logger = logging.getLogger(__name__)

_KEEP_LARGEST = KeepLargestConnectedComponent(applied_labels=[1, 2, 3], independent=True)
_FILL_LV = FillHoles(applied_labels=[1])


@dataclass
class SaxStack:
    """A SAX cine (or ED/ES pair) with its geometry.

    Attributes:
        pixels: ``[S, F, H, W]`` grey levels, slices ordered along the normal (base to apex or the reverse).
        pixel_spacing_mm: (row, column) spacing, None when unknown.
        positions_mm: ``[S, 3]`` slice positions (ImagePositionPatient), None when unknown.
        orientation: ImageOrientationPatient (row cosines, column cosines), None when unknown.
        slice_spacing_mm: centre-to-centre spacing, used only when there are no positions.
    """

    pixels: np.ndarray
    pixel_spacing_mm: tuple[float, float] | None
    positions_mm: np.ndarray | None = None
    orientation: tuple[float, ...] | None = None
    slice_spacing_mm: float | None = None


@dataclass
class SegmentationResult:
    """Masks and volumes of one study.

    Attributes:
        masks: uint8 ``[S, F, H, W]`` in the study's pixel grid: 0 background, 1 LV cavity, 2 LV myocardium,
            3 RV cavity.
        volumes: volumes, ED/ES, EF and mass (:func:`cmrclip.segment.volumes.volumes_from_masks`).
        stack: the input stack (its geometry places the masks).
        warnings: input problems (the volume warnings are in ``volumes.warnings``).
    """

    masks: np.ndarray
    volumes: Volumes
    stack: SaxStack
    warnings: list[str] = field(default_factory=list)


def sax_stack(study: StudyFile) -> SaxStack:
    """Read the SAX view of an open store study.

    Raises:
        DataError: if the study has no SAX view.
    """
    if "SAX" not in study.views:
        raise DataError(f"{study.path.name} has no SAX view (it has {sorted(study.views)}); segmentation needs SAX")
    meta, attrs, geo = study.views["SAX"], study.view_attrs("SAX"), study.geometry("SAX")
    spacing = tuple(float(s) for s in meta.pixel_spacing_mm)
    orientation = tuple(float(v) for v in attrs.get("orientation", ())) or None
    thickness = float(attrs.get("slice_thickness_mm", np.nan))
    return SaxStack(
        pixels=study.read_view("SAX"),
        pixel_spacing_mm=spacing if all(np.isfinite(spacing)) else None,
        positions_mm=np.asarray(geo["positions_mm"], dtype=np.float64),
        orientation=orientation,
        slice_spacing_mm=thickness if np.isfinite(thickness) else None,
    )


def predict_probabilities(segmenter: Segmenter, images: torch.Tensor) -> torch.Tensor:
    """Softmax of the network on ``[N, C, H, W]`` inputs (averaged over flips when the model asks for it)."""
    net, flips = segmenter.net, [()]
    if segmenter.config.tta_flips:
        flips += [(2,), (3,)]
    with torch.inference_mode():
        total = sum(torch.softmax(net(images.flip(f)), dim=1).flip(f) for f in flips)
    return total / len(flips)


def _normalized_volume(stack: SaxStack, zoom: tuple[float, float]) -> torch.Tensor:
    """Resampled ``[S, F, H', W']``, each slice's 1st..99th percentile over its frames scaled to 0..1."""
    s, f, h, w = stack.pixels.shape
    flat = resample(stack.pixels.reshape(s * f, h, w), zoom)
    return normalize_images(flat.reshape(s, f * flat.shape[-2], flat.shape[-1])).reshape(s, f, *flat.shape[-2:])


def _heart_centre(segmenter: Segmenter, vol: torch.Tensor, warnings: list[str]) -> tuple[int, int]:
    """Centre of the segmented heart on the first frame of every slice (whole-image sliding window)."""
    k, roi = segmenter.config.context_slices, segmenter.config.roi_px
    first = torch.stack([context_stack(vol[:, 0], s, k) for s in range(vol.shape[0])])
    with torch.inference_mode():
        logits = sliding_window_inference(first, (roi, roi), 8, segmenter.net, overlap=0.25, mode="gaussian")
    heart = (logits.argmax(1) > 0).sum(0).float()
    if heart.sum() == 0:
        warnings.append("no heart found on the first frame: the crop is centred on the image")
        return vol.shape[-2] // 2, vol.shape[-1] // 2
    ys, xs = torch.meshgrid(torch.arange(heart.shape[0]), torch.arange(heart.shape[1]), indexing="ij")
    return int((ys * heart).sum() / heart.sum()), int((xs * heart).sum() / heart.sum())


def _postprocess(labels: torch.Tensor) -> np.ndarray:
    """Clean a study's ``[S, F, H, W]`` labels (-> uint8).

    Keeps the largest component of each label connected over slices, frames and pixels, then fills holes in the LV
    cavity image by image.
    """
    kept = convert_to_tensor(_KEEP_LARGEST(labels[None]), track_meta=False)[0]
    filled = [convert_to_tensor(_FILL_LV(img[None]), track_meta=False)[0] for img in kept.flatten(0, 1)]
    return torch.stack(filled).reshape(labels.shape).numpy().astype(np.uint8)


def _segment_slice(
    segmenter: Segmenter, vol: torch.Tensor, s: int, centre: tuple[int, int], out_hw: tuple[int, int]
) -> torch.Tensor:
    """Arg-max labels ``[F, H, W]`` of slice ``s`` in the study's pixel grid (before post-processing)."""
    k, roi = segmenter.config.context_slices, segmenter.config.roi_px
    x = context_stack(vol, s, k).transpose(0, 1)  # [F, C, H', W']
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (roi, roi, roi, roi))
    y0, x0 = centre[0] - roi // 2 + roi, centre[1] - roi // 2 + roi
    probs = predict_probabilities(segmenter, padded[..., y0 : y0 + roi, x0 : x0 + roi])
    canvas = torch.zeros(x.shape[0], probs.shape[1], h + 2 * roi, w + 2 * roi)
    canvas[:, 0] = 1.0
    canvas[..., y0 : y0 + roi, x0 : x0 + roi] = probs
    canvas = canvas[..., roi : roi + h, roi : roi + w]
    if (h, w) != out_hw:
        f, c = canvas.shape[:2]
        resized = Resize(out_hw, mode="bilinear")(canvas.reshape(f * c, h, w))
        canvas = convert_to_tensor(resized, track_meta=False).reshape(f, c, *out_hw)
    return canvas.argmax(1).to(torch.uint8)


def segment_study(
    segmenter: Segmenter,
    study: StudyFile | SaxStack,
    ed_es_frames: tuple[int, int] | None = None,
    progress: ProgressFn = null_progress,
) -> SegmentationResult:
    """Segment every SAX slice and frame of a study and measure its volumes.

    Args:
        segmenter: a loaded model (:func:`cmrclip.segment.load_segmenter`).
        study: an open store study (``StudyStore(root).open(key)``) or a :class:`SaxStack`.
        ed_es_frames: known ED and ES frames; found from the LV volume curve when None.
        progress: ``progress("segment", done, total)`` after each slice.

    Returns:
        Masks (0 background, 1 LV cavity, 2 LV myocardium, 3 RV cavity) and volumes.

    Raises:
        DataError: if the study has no SAX view or its pixels are not ``[S, F, H, W]``.
    """
    stack = sax_stack(study) if isinstance(study, StudyFile) else study
    if np.ndim(stack.pixels) != 4 or min(np.shape(stack.pixels)) < 1:
        raise DataError(f"SAX pixels must be a non-empty [slices, frames, H, W] array, got {np.shape(stack.pixels)}")
    warnings: list[str] = []
    if stack.pixel_spacing_mm is None:
        warnings.append("no pixel spacing: images are segmented at their own scale, volumes are not in mL")
    zoom = zoom_factors(stack.pixel_spacing_mm, segmenter.config.spacing_mm)
    segmenter.net.eval()
    vol = _normalized_volume(stack, zoom)
    centre = _heart_centre(segmenter, vol, warnings)
    n_slices, out_hw = vol.shape[0], tuple(stack.pixels.shape[-2:])
    masks = []
    for s in range(n_slices):
        masks.append(_segment_slice(segmenter, vol, s, centre, out_hw))
        progress("segment", s + 1, n_slices)
    masks_arr = _postprocess(torch.stack(masks))
    volumes = volumes_from_masks(
        masks_arr, stack.pixel_spacing_mm, stack.positions_mm, stack.slice_spacing_mm, ed_es_frames=ed_es_frames
    )
    return SegmentationResult(masks_arr, volumes, stack, warnings)
