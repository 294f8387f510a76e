"""Embeddings of clips and studies, retrieval recall, and a 2-D picture of the embedding space.

``embed_store`` writes one embedding per clip (every long-axis view and SAX slice, phase offset 0) and one per study
to an NPZ file: the mean of its clips (any checkpoint), or their MIL-attention-weighted sum (a study model's
``model.pt``: the pooling its head learned). The picture is a 2-D map of the study embeddings coloured by a
manifest column: PCA (numpy SVD, no extra dependency) or t-SNE (scikit-learn, ``pip install scikit-learn``).
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmrclip.data.sampling import study_clips
from cmrclip.data.transforms import Compose, build_clip_transform
from cmrclip.errors import CheckpointError, ConfigError, DataError
from cmrclip.ingest.store import StudyStore
from cmrclip.models.heads import study_embedding
from cmrclip.progress import ProgressFn, null_progress

__all__ = [
    "MAPS",
    "EmbedResult",
    "EmbeddingTable",
    "StudyPool",
    "embed_store",
    "embed_studies",
    "load_encoder_any",
    "map_2d",
    "mean_pool",
    "mil_pool",
    "pca_2d",
    "plot_embedding",
    "tsne_2d",
    "write_embeddings",
]

logger = logging.getLogger(__name__)


@dataclass
class EmbeddingTable:
    """Clip and study embeddings of a store.

    Attributes:
        clip_study: (M,) study key of each clip.
        clip_view: (M,) view of each clip.
        clip_slice: (M,) slice index of each clip.
        clip: (M, D) float32 clip embeddings (L2-normalised).
        study_key: (S,) study keys.
        study: (S, D) float32 study embeddings (pooled clips, L2-normalised).
    """

    clip_study: np.ndarray
    clip_view: np.ndarray
    clip_slice: np.ndarray
    clip: np.ndarray
    study_key: np.ndarray
    study: np.ndarray


StudyPool = Callable[[Tensor], tuple[Tensor, Tensor]]
"""``pool(outputs [N, ...]) -> (clip embeddings [N, D], study embedding [D])`` for one study's ``encode`` outputs."""


def mean_pool(outputs: Tensor) -> tuple[Tensor, Tensor]:
    """Clip embeddings L2-normalised; the study is their normalised mean."""
    outputs = outputs.float()
    return F.normalize(outputs, dim=-1), study_embedding(outputs[None])[0]


def mil_pool(model: nn.Module) -> StudyPool:
    """Pool encoder features with a study model's head: its projected clip embeddings, attention-weighted.

    ``model`` is a :class:`~cmrclip.models.heads.StudyModel`; use it with ``encode=model.encoder.features``. The
    study embedding is the one ``cmrclip predict``/``serve`` report (weights of the MIL attention, normalised).
    """

    def pool(features: Tensor) -> tuple[Tensor, Tensor]:
        mask = torch.ones(1, len(features), dtype=torch.bool, device=features.device)
        out = model(mask, features=features[None])
        study = (out.attention[0, :, None] * out.embeddings[0]).sum(dim=0)
        return F.normalize(out.embeddings[0].float(), dim=-1), F.normalize(study.float(), dim=-1)

    return pool


def _clip_batches(
    store: StudyStore, key: str, transform: Compose, n_frames: int, batch_size: int, legacy: bool
) -> list[tuple[list[tuple[str, int]], Tensor]]:
    """Read every clip of a study and batch them; ``legacy`` maps [0, 1] back to raw intensities by the window."""
    with store.open(key) as study:
        specs = study_clips(study.views, n_frames)
        clips = []
        for s in specs:
            clip = study.read_clip(s.view, s.slice_index, s.frames)
            if legacy:
                low, high = (float(v) for v in study.view_attrs(s.view)["window"])
                clip = clip * (high - low) + low
            clips.append(transform(clip))
    out = []
    for start in range(0, len(specs), batch_size):
        part = specs[start : start + batch_size]
        out.append(([(s.view, s.slice_index) for s in part], torch.stack(clips[start : start + batch_size])))
    return out


@torch.no_grad()
def embed_studies(
    encode: Callable[[Tensor], Tensor],
    store_root: Path,
    study_keys: Sequence[str],
    transform: Compose,
    n_frames: int = 16,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    progress: ProgressFn = null_progress,
    legacy: bool = False,
    pool: StudyPool = mean_pool,
) -> EmbeddingTable:
    """Embed every clip of each study and pool them per study.

    Args:
        encode: ``(B, 3, T, H, W) -> (B, D)`` (e.g. ``encoder.encode``); called in no-grad mode.
        store_root: the study store.
        study_keys: studies to embed.
        transform: evaluation clip pipeline (no augmentation).
        n_frames: frames per clip.
        batch_size: clips per forward pass.
        device: where ``encode`` runs.
        progress: called as ``progress("embed", done, total)``.
        legacy: feed raw intensities (the window's inverse) for encoders with ``legacy`` normalisation.
        pool: one study's ``encode`` outputs -> clip and study embeddings (:func:`mean_pool`, :func:`mil_pool`).

    Raises:
        DataError: if no study key is given.
    """
    if not study_keys:
        raise DataError("no studies to embed; check the store and the --split filter")
    store = StudyStore(store_root)
    rows: list[tuple[str, str, int]] = []
    clip_parts, study_parts = [], []
    for i, key in enumerate(study_keys):
        outputs = []
        for specs, batch in _clip_batches(store, key, transform, n_frames, batch_size, legacy):
            outputs.append(encode(batch.to(device)))
            rows += [(key, view, idx) for view, idx in specs]
        clips, study = pool(torch.cat(outputs))
        clip_parts.append(clips.cpu())
        study_parts.append(study.cpu()[None])
        progress("embed", i + 1, len(study_keys))
    return EmbeddingTable(
        clip_study=np.array([r[0] for r in rows]),
        clip_view=np.array([r[1] for r in rows]),
        clip_slice=np.array([r[2] for r in rows], dtype=np.int64),
        clip=torch.cat(clip_parts).numpy(),
        study_key=np.array(list(study_keys)),
        study=torch.cat(study_parts).numpy(),
    )


def write_embeddings(table: EmbeddingTable, path: Path) -> Path:
    """Write the table to an ``.npz`` file (arrays named like the table's attributes); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{name: getattr(table, name) for name in EmbeddingTable.__dataclass_fields__})
    return path


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Project rows of ``x`` (N, D) onto their first two principal components (N, 2), signs fixed."""
    centred = np.asarray(x, dtype=np.float64) - np.mean(x, axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    comps = vt[:2]
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(1)])
    out = centred @ (comps * signs[:, None]).T
    return out if out.shape[1] == 2 else np.pad(out, ((0, 0), (0, 2 - out.shape[1])))


def tsne_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """t-SNE map (N, 2) of the rows of ``x`` on cosine distances (scikit-learn), perplexity fitted to small N.

    Raises:
        ConfigError: if scikit-learn is not installed, or there are fewer than 3 rows.
    """
    try:
        from sklearn.manifold import TSNE
    except ImportError as exc:
        raise ConfigError("the t-SNE picture needs scikit-learn: pip install scikit-learn (or use --map pca)") from exc
    if len(x) < 3:
        raise ConfigError(f"t-SNE needs at least 3 studies, got {len(x)}; use --map pca")
    perplexity = float(min(30.0, (len(x) - 1) / 3))
    tsne = TSNE(2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed)
    return tsne.fit_transform(np.asarray(x, dtype=np.float64))


MAPS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {"pca": (pca_2d, "PC"), "tsne": (tsne_2d, "t-SNE")}
"""2-D maps of embeddings by name, with their axis label."""


def map_2d(x: np.ndarray, method: Literal["pca", "tsne"] = "pca") -> np.ndarray:
    """The 2-D map of ``x`` (N, D) by ``method`` (see :data:`MAPS`)."""
    return MAPS[method][0](x)


def plot_embedding(
    points: np.ndarray, colour: pd.Series, path: Path, title: str = "", method: Literal["pca", "tsne"] = "pca"
) -> Path:
    """Scatter (N, 2) ``points`` (a ``method`` map) coloured by ``colour`` (categorical or numeric); save a PNG."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=120)
    values = colour.reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > 10:
        sc = ax.scatter(points[:, 0], points[:, 1], c=values.to_numpy(float), s=12, cmap="viridis")
        fig.colorbar(sc, ax=ax, label=str(colour.name))
    else:
        for name in sorted(values.astype(str).unique()):
            sel = (values.astype(str) == name).to_numpy()
            ax.scatter(points[sel, 0], points[sel, 1], s=12, label=name)
        ax.legend(title=str(colour.name), fontsize=7, markerscale=1.5)
    axis = MAPS[method][1]
    ax.set(xlabel=f"{axis} 1", ylabel=f"{axis} 2", title=title or f"study embeddings by {colour.name}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def load_encoder_any(path: Path) -> nn.Module:
    """A video tower in eval mode from an encoder checkpoint (ours or the original's), ``clip.pt`` or ``model.pt``.

    Raises:
        CheckpointError: if the file holds none of these.
    """
    from cmrclip.models.bundle import encoder_from_payload
    from cmrclip.models.convert import load_video_encoder

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass OUT/encoder.pt, OUT/clip.pt or OUT/model.pt")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError):
        obj = None  # not one of ours: the encoder loader reports what it is
    for key in ("video", "encoder"):  # clip.pt and model.pt carry an encoder checkpoint dict
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return encoder_from_payload(obj[key], where=str(path)).eval()
    return load_video_encoder(path)


def _study_model(path: Path) -> nn.Module:
    """The study model of a ``model.pt`` bundle, in eval mode.

    Raises:
        CheckpointError: if ``path`` is not a study-model bundle.
    """
    from cmrclip.models.bundle import load_bundle

    try:
        return load_bundle(Path(path)).model.eval()
    except CheckpointError as exc:
        raise CheckpointError(f"MIL pooling needs a study model (model.pt of `cmrclip finetune`): {exc}") from exc


@dataclass(frozen=True)
class EmbedResult:
    """Files written by :func:`embed_store` and what they hold."""

    npz: Path
    picture: Path | None
    n_studies: int
    n_clips: int


def embed_store(
    checkpoint: Path,
    store_root: Path,
    out_dir: Path,
    colour_by: str | None = None,
    split: str | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    progress: ProgressFn = null_progress,
    pool: Literal["mean", "mil"] = "mean",
    picture_map: Literal["pca", "tsne"] = "pca",
) -> EmbedResult:
    """Embed every study of a store with a checkpoint's video tower; write ``embeddings.npz`` (and a PNG).

    Args:
        checkpoint: encoder, CLIP or study-model checkpoint (see :func:`load_encoder_any`); ``pool="mil"`` needs a
            study model (``model.pt`` of ``cmrclip finetune``).
        store_root: the study store.
        out_dir: output folder.
        colour_by: a manifest column; if given, ``embeddings_<map>.png`` shows study embeddings coloured by it.
        split: only studies of this manifest split.
        batch_size: clips per forward pass.
        device: ``"cpu"`` or ``"cuda"``.
        progress: called as ``progress("embed", done, total)``.
        pool: study embedding = mean of the clips, or the study model's MIL attention pooling.
        picture_map: the picture's 2-D map, ``pca`` or ``tsne``.

    Raises:
        DataError: if the column is unknown or no study is selected.
        CheckpointError: if ``pool="mil"`` is given a checkpoint without a study head.
    """
    from cmrclip.models.normalize import normalize

    if pool == "mil":
        model = _study_model(checkpoint).to(device)
        encoder, encode, pooling = model.encoder, model.encoder.features, mil_pool(model)
    else:
        encoder = load_encoder_any(checkpoint).to(device)
        encode, pooling = encoder.encode, mean_pool
    manifest = StudyStore(store_root).manifest()
    if colour_by is not None and colour_by not in manifest.columns:
        raise DataError(f"manifest has no column {colour_by!r}; choose one of {sorted(manifest.columns)}")
    if split is not None:
        manifest = manifest[manifest["split"] == split]
    cfg = encoder.config
    transform = build_clip_transform(cfg.input_size[1:], None, normalize=lambda x: normalize(x, cfg.normalization))
    keys = manifest["study_key"].astype(str).tolist()
    table = embed_studies(
        encode, store_root, keys, transform, cfg.input_size[0], batch_size, device, progress,
        legacy=cfg.normalization == "legacy", pool=pooling,
    )  # fmt: skip
    out_dir = Path(out_dir)
    npz = write_embeddings(table, out_dir / "embeddings.npz")
    picture = None
    if colour_by is not None:
        colour = manifest.set_index("study_key").loc[keys, colour_by].rename(colour_by)
        points = map_2d(table.study, picture_map)
        picture = plot_embedding(points, colour, out_dir / f"embeddings_{picture_map}.png", method=picture_map)
    return EmbedResult(npz, picture, len(keys), len(table.clip))
