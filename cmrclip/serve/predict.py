"""Predictions on new studies from a study-model bundle: ``load_model(path).predict(study)``.

A prediction holds LVEF with a split-conformal interval, each condition's calibrated probability and a yes/no at the
bundle's threshold, the views and clips used (with each clip's MIL weight), and warnings: missing views, unusual
geometry, and input unlike the training studies (the bundle's OOD guard, :mod:`cmrclip.models.ood`; its score is
``ood_distance``, above 1 when out of distribution).
With a segmenter (``load_model(..., segmenter=SEG.pt)``) it also holds the volumetric LVEF, EDV, ESV, SV and LV mass
from contours (:mod:`cmrclip.serve.volumes`), and warns when the two LVEFs disagree.
Calibration (Platt scaling per condition) and the conformal interval are fitted at load time from the bundle's
``calibration`` block, by the functions of :mod:`cmrclip.evaluate`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from cmrclip.conditions import load_conditions
from cmrclip.errors import CheckpointError, CmrclipError, DataError
from cmrclip.ingest.store import StudyFile
from cmrclip.models.ood import input_statistics
from cmrclip.models.recipe import recipe_for
from cmrclip.models.text import tokenize
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.serve.bundle_io import ModelParts, read_parts
from cmrclip.serve.inputs import Study, load_study, open_source, study_files
from cmrclip.serve.volumes import LVEF_MARGIN_POINTS, volumes_block

if TYPE_CHECKING:
    from cmrclip.segment import Segmenter

__all__ = [
    "ConditionPrediction",
    "LvefPrediction",
    "Model",
    "PredictionFault",
    "StudyPrediction",
    "load_model",
    "write_predictions",
]

logger = logging.getLogger(__name__)

StudyLike = Study | Path | str


@dataclass(frozen=True)
class LvefPrediction:
    """LVEF in percent with its split-conformal interval (``None`` bounds when the bundle has no calibration)."""

    value: float
    lower: float | None
    upper: float | None
    coverage: float | None


@dataclass(frozen=True)
class ConditionPrediction:
    """One condition: calibrated probability and the yes/no call at the bundle's threshold.

    The bundle's threshold (chosen on the validation split) applies to the network's raw score; ``threshold`` is
    that cut on the calibrated scale, so ``positive`` is ``probability >= threshold`` when calibration is monotone.
    """

    key: str
    name: str
    probability: float
    positive: bool
    threshold: float


@dataclass
class StudyPrediction:
    """Everything predicted for one study.

    ``input`` is the source as the user gave it (path, ``STORE#key`` or upload name), so that each answer can be
    matched to its input; ``study_key`` is the salted hash the study got (random salt by default).
    """

    study_key: str
    lvef: LvefPrediction | None
    conditions: list[ConditionPrediction]
    views: list[str]
    clips: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    ood_distance: float | None = None
    input: str | None = None
    volumes: dict[str, Any] | None = None

    @property
    def n_clips(self) -> int:
        """Number of clips the prediction used."""
        return len(self.clips)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; conditions ranked by probability, most likely first."""
        ranked = sorted(self.conditions, key=lambda c: -c.probability)
        return {
            "input": self.input,
            "study_key": self.study_key,
            "lvef": asdict(self.lvef) if self.lvef else None,
            "conditions": [asdict(c) for c in ranked],
            "views": self.views,
            "n_clips": self.n_clips,
            "clips": self.clips,
            "warnings": self.warnings,
            "ood_distance": self.ood_distance,
            "volumes": self.volumes,
        }

    def to_row(self) -> dict[str, Any]:
        """One row of the predictions table (``docs/ARCHITECTURE.md`` §6): ``study_key``, ``lvef_pred``, scores."""
        row: dict[str, Any] = {"study_key": self.study_key}
        if self.lvef is not None:
            row |= {"lvef_pred": self.lvef.value, "lvef_lower": self.lvef.lower, "lvef_upper": self.lvef.upper}
        if self.volumes is not None:
            row["lvef_volumetric"] = self.volumes["lvef"]
        row |= {f"{c.key}_score": c.probability for c in self.conditions}
        return row


@dataclass(frozen=True)
class PredictionFault:
    """An input (as the user gave it) that could not be predicted in a batch, and why."""

    source: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON line of a failed input: ``{"input": ..., "error": ...}``."""
        return {"input": self.source, "error": self.reason}


class Model:
    """A loaded study model: ``predict``, ``embed`` and ``zeroshot`` on one study at a time.

    Build it with :func:`load_model`.
    """

    def __init__(
        self,
        parts: ModelParts,
        salt: str | None = None,
        segmenter: Segmenter | None = None,
        lvef_margin: float = LVEF_MARGIN_POINTS,
    ) -> None:
        self.parts = parts
        self.salt = salt
        self.segmenter, self.lvef_margin = segmenter, lvef_margin
        self.network = parts.network.eval()
        self.device = next(self.network.parameters()).device
        names = {c.key: c.name for c in load_conditions()}
        names["normal"] = "Normal (none of the conditions)"
        self.names = {k: names.get(k, k) for k in parts.targets}

    def load_study(self, source: StudyLike, work_dir: Path | None = None) -> Study:
        """Read a study (DICOM folder or archive, NIfTI, store entry) into memory as the model's clips."""
        if isinstance(source, Study):
            return source
        with open_source(source, work_dir, self.salt) as study_file:
            return self._read(study_file)

    def _read(self, study_file: StudyFile) -> Study:
        study = load_study(study_file, self.parts.recipe)
        if self.segmenter is not None:
            from cmrclip.segment import segment_study

            try:
                study.segmentation = segment_study(self.segmenter, study_file)
            except DataError as exc:
                study.warnings.append(f"no volumes: {exc}")
        return study

    @torch.no_grad()
    def _forward(self, study: Study) -> Any:
        clips = study.clips.to(self.device)[None]
        mask = torch.ones(clips.shape[:2], dtype=torch.bool, device=self.device)
        return self.network(clip_mask=mask, clips=clips)

    def predict(self, study: StudyLike) -> StudyPrediction:
        """Predict LVEF and the conditions for one study.

        Raises:
            DataError: if the study cannot be read or has no usable clip.
        """
        given = None if isinstance(study, Study) else str(study)
        study = self.load_study(study)
        out = self._forward(study)
        lvef = None
        if "lvef" in self.parts.regression:
            value = float(out.regression[0, self.parts.regression.index("lvef")])
            lvef = self.parts.lvef_interval(value)
        probs = torch.sigmoid(out.logits[0]).cpu().numpy()
        conditions = []
        for key, raw in zip(self.parts.targets, probs, strict=True):
            # the stored threshold is on the network's (uncalibrated) score; it is shown on the calibrated scale
            cut = self.parts.thresholds.get(key, 0.5)
            p, shown = self.parts.calibrate(key, float(raw)), self.parts.calibrate(key, cut)
            conditions.append(ConditionPrediction(key, self.names[key], p, bool(raw >= cut), shown))
        weights = out.attention[0].cpu().numpy()
        clips = [
            {"view": r.view, "slice_index": r.slice_index, "mil_weight": float(w)}
            for r, w in zip(study.refs, weights, strict=True)
        ]
        embedding = _study_embedding(out)
        distance, ood_warning = self.parts.ood_check(embedding, input_statistics(study.clips))
        warnings = study.warnings + ([ood_warning] if ood_warning else []) + self.parts.calibration_warnings
        volumes = None
        if study.segmentation is not None:
            volumes, more = volumes_block(study.segmentation, lvef.value if lvef else None, self.lvef_margin)
            warnings += more
        return StudyPrediction(
            study.study_key, lvef, conditions, study.views, clips, warnings, distance, given, volumes=volumes
        )

    def embed(self, study: StudyLike) -> np.ndarray:
        """The study's embedding: its clip embeddings weighted by MIL attention, L2-normalised; shape (E,)."""
        return _study_embedding(self._forward(self.load_study(study)))

    def zeroshot(self, study: StudyLike, prompts: Iterable[str]) -> dict[str, float]:
        """Softmax over text prompts of their similarity with the study (CLIP towers of ``load_model(clip_path=)``).

        The study's embedding is the normalised mean of its clips' normalised CLIP video embeddings.

        Raises:
            CheckpointError: if the model was loaded without a CLIP checkpoint.
            DataError: if no prompt is given, or a loaded study does not fit the CLIP video tower's input.
        """
        if self.parts.clip is None:
            raise CheckpointError("zero-shot needs the CLIP text tower; load_model(..., clip_path='OUT/clip.pt')")
        prompts = list(prompts)
        if not prompts:
            raise DataError("zeroshot needs at least one text prompt")
        clip, tokenizer = self.parts.clip
        clips = self._clip_inputs(study, clip.video)
        with torch.no_grad():
            video = clip.encode_video(clips.to(self.device)[None])  # the study: [1, N clips, ...] -> [1, E]
            tok = tokenize(tokenizer, prompts, clip.text.config.max_length)
            text = clip.encode_text(tok["input_ids"].to(self.device), tok["attention_mask"].to(self.device))
            probs = (clip.scale() * video @ text.T).softmax(dim=-1)[0].cpu().numpy()
        return {p: float(v) for p, v in zip(prompts, probs, strict=True)}

    def _clip_inputs(self, study: StudyLike, video: Any) -> torch.Tensor:
        recipe = recipe_for(video, self.parts.recipe.bags)
        if isinstance(study, Study):
            if recipe != self.parts.recipe:
                raise DataError("the CLIP video tower takes other inputs than the study model; pass the study's path")
            return study.clips
        with open_source(study, salt=self.salt) as study_file:
            return load_study(study_file, recipe).clips

    def predict_many(
        self, sources: Iterable[StudyLike], progress: ProgressFn = null_progress, total: int = 0
    ) -> Iterator[StudyPrediction | PredictionFault]:
        """Predict studies one at a time (bounded memory: one study in memory at once).

        A source may hold several studies (an archive); each is predicted. A source or study that fails becomes a
        :class:`PredictionFault` and the batch goes on. Every result carries the source as given (``input``).
        """
        for i, source in enumerate(sources, start=1):
            given = str(source)
            try:
                with study_files(source, salt=self.salt) as files:
                    for path in files:
                        yield self._predict_file(path, given)
            except (CmrclipError, OSError) as exc:
                logger.warning("source %d could not be predicted: %s", i, type(exc).__name__)
                yield PredictionFault(given, str(exc))
            progress("predict", i, total or i)

    def _predict_file(self, path: Path, given: str) -> StudyPrediction | PredictionFault:
        try:
            with StudyFile(path) as study_file:
                study = self._read(study_file)
            return replace(self.predict(study), input=given)
        except CmrclipError as exc:
            return PredictionFault(given, f"study {path.stem}: {exc}")


def _study_embedding(out: Any) -> np.ndarray:
    emb = (out.attention[0, :, None] * out.embeddings[0]).sum(dim=0)
    return F.normalize(emb, dim=-1).cpu().numpy()


def load_model(
    path: Path | str,
    *,
    device: str = "cpu",
    clip_path: Path | str | None = None,
    salt: str | None = None,
    segmenter: Segmenter | Path | str | None = None,
    lvef_margin: float = LVEF_MARGIN_POINTS,
) -> Model:
    """Load a study-model bundle (``OUT/model.pt`` written by fine-tuning) for prediction.

    Args:
        path: the bundle.
        device: ``cpu`` or ``cuda``.
        clip_path: optional CLIP checkpoint (``OUT/clip.pt``) for :meth:`Model.zeroshot`.
        salt: salt of the study keys given to newly ingested studies (use the store's salt to match its keys;
            a random one by default).
        segmenter: a segmentation model (``cmrclip train-seg``'s file, or loaded): predictions then hold the
            volumetric LVEF and volumes, and a warning when the two LVEFs disagree by more than ``lvef_margin``.
        lvef_margin: percentage points (:data:`cmrclip.serve.volumes.LVEF_MARGIN_POINTS`).

    Raises:
        CheckpointError: if a file is missing, is not a study-model bundle (or segmenter), or its weights do not fit.
    """
    clip = None if clip_path is None else Path(clip_path)
    if isinstance(segmenter, Path | str):
        from cmrclip.segment import load_segmenter

        segmenter = load_segmenter(segmenter)
    parts = read_parts(Path(path), device=device, clip_path=clip)
    return Model(parts, salt=salt, segmenter=segmenter, lvef_margin=lvef_margin)


def write_predictions(
    model: Model, sources: Sequence[StudyLike], out: Path, progress: ProgressFn = null_progress
) -> tuple[int, int]:
    """Predict each source into ``out`` (JSON lines: a prediction, or ``{"input", "error"}``); return (ok, failed)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n_ok = n_bad = 0
    with out.open("w", encoding="utf-8") as handle:
        for result in model.predict_many(sources, progress=progress, total=len(sources)):
            handle.write(json.dumps(result.to_dict()) + "\n")
            failed = isinstance(result, PredictionFault)
            n_ok, n_bad = n_ok + (not failed), n_bad + failed
    return n_ok, n_bad
