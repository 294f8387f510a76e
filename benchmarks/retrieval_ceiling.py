"""How much held-out retrieval can a video encoder hope for? A ceiling from the ground-truth labels.

For a finished pretraining run, fits a ridge map from each study's true labels (LVEF, volumes, conditions) to the
standardised frozen text features of its report text on the training studies, then ranks the held-out reports
for each held-out study's predicted text vector, exactly as the pretraining's held-out retrieval does. A perfect
reader of those labels (and nothing else) gets about this recall; a video tower that sees one SAX clip can at most
read the SAX-visible subset.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/retrieval_ceiling.py runs/bench_pretrain3/paired
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from cmrclip.models.prompts import load_clip_model, retrieval_recall
from cmrclip.train import pretrain as P

LV = ["lvef", "lvedv_ml", "lvesv_ml", "lv_mass_g"]
SAX_VISIBLE = [
    *LV,
    "Left.Ventricular.Dilation",
    "Left.Ventricular.Hypertrophy",
    "Hypertrophic.Cardiomyopathy",
    "Large.Pericardial.Effusion",
    "Ischemic.Cardiomyopathy",
    "Non.Ischemic.cardiomyopathy",
    "Right.Ventricular.Dilation",
    "LV.Non.Compaction",
    "Amyloid",
]
NOT_LABELS = {"study_key", "patient_key", "site", "path", "views", "n_sax_slices", "n_clips", "split", "report"}


def _text_features(run_dir: Path) -> tuple[P.PretrainDataset, P.PretrainDataset, torch.Tensor, torch.Tensor]:
    cfg = P.PretrainConfig.model_validate(yaml.safe_load((run_dir / "config.resolved.yaml").read_text())["config"])
    clip, _ = load_clip_model(run_dir / "clip.pt")
    train_ds, held_ds = P.build_datasets(cfg, clip)
    text_inputs = P._text_inputs_fn(clip, cfg, torch.device("cpu"))

    def feats(ds: P.PretrainDataset) -> torch.Tensor:
        rng = np.random.default_rng(0)
        texts = [ds.text_sampler(r, rng) if ds.text_sampler else r for r in ds.reports]
        return text_inputs(texts)["text_features"].float()

    ftr, fhe = feats(train_ds), feats(held_ds)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    return train_ds, held_ds, (ftr - mu) / sd, (fhe - mu) / sd


def _design(ds: P.PretrainDataset, labels: object, cols: list[str]) -> torch.Tensor:
    x = torch.tensor(labels.loc[ds.keys, cols].astype(float).fillna(0).to_numpy(), dtype=torch.float32)
    if "lvef" in cols:  # LVEF is described in bands ("mildly reduced"): give the linear map soft bins of it
        ef = x[:, cols.index("lvef")][:, None]
        x = torch.cat([x, torch.exp(-(((ef - torch.arange(20.0, 80.0, 5.0)) / 5) ** 2))], 1)
    return x


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path, help="a finished `cmrclip pretrain` folder")
    parser.add_argument("--ridge", type=float, default=10.0)
    args = parser.parse_args()
    train_ds, held_ds, ztr, zhe = _text_features(args.run)
    labels = train_ds.store.manifest().set_index("study_key")
    every = [c for c in labels.columns if c not in NOT_LABELS]
    print(f"{len(train_ds)} training studies, {len(held_ds)} held-out candidates (chance R@5 {5 / len(held_ds):.3f})")
    for name, cols in (("LVEF only", ["lvef"]), ("LV measures", LV), ("SAX-visible", SAX_VISIBLE), ("all", every)):
        xtr, xhe = _design(train_ds, labels, cols), _design(held_ds, labels, cols)
        mean, std = xtr.mean(0), xtr.std(0) + 1e-6
        a, b = (xtr - mean) / std, (xhe - mean) / std
        weights = torch.linalg.solve(a.T @ a + args.ridge * torch.eye(a.shape[1]), a.T @ ztr)
        r = retrieval_recall(F.normalize(b @ weights, dim=-1), F.normalize(zhe, dim=-1))
        print(
            f"{name:12s} ({len(cols):2d} labels): study->report R@5 {r['video_to_text_r@5']:.3f} "
            f"R@10 {r['video_to_text_r@10']:.3f}; report->study R@5 {r['text_to_video_r@5']:.3f}"
        )


if __name__ == "__main__":
    main()
