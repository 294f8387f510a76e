"""Real hearts as the yardstick: four encoders scored on real studies, with zero and with a few real labels.

Encoders: ``realistic`` (pretrained on the realistic cohort built from the training hearts), ``analytic`` (pretrained
on the analytic synthetic cohort), ``random`` (a frozen random encoder) and ``scratch`` (an encoder trained from a
random init on the synthetic labels, no contrastive pretraining). Settings:

- ``zero_label``: a linear-probe study model (``cmrclip finetune``) trained on synthetic studies only (each encoder on
  its own cohort; random and scratch on the realistic one, else the analytic one); its bundle predicts every real test
  study (LVEF; group from the condition probabilities). Bundles: ``OUT/models/<encoder>/model.pt``.
- ``few_label``: ridge heads (LVEF, 5-group) on the frozen study embedding plus the zero-label LVEF of each real study,
  fitted on real training studies (``evaluate.realhearts``), by input (``acdc_cine``, ``acdc_edes``).

Beside the four encoders, ``volumes``: the segmenter (``cmrclip.segment``) trained on realistic studies rendered from
the same build hearts plus analytic synthetic hearts (no real image or mask as such), its volumetric LVEF as the
zero-label prediction, and its volumes (:func:`cmrclip.serve.realcheck.volume_features`) in place of the embedding for
the few-label heads. Model: ``OUT/models/volumes/segmenter.pt``.

Splits (the one-split rule): with test arguments, every training argument builds and trains, every test argument only
scores. Without them, the ACDC training patients are split in two halves stratified by group: one half builds the
realistic cohort (and so its pretraining), the other is scored (zero-label) and cross-validated (few-label, 5 folds by
patient); Sunnybrook and M&Ms-2 are always test-only. The check is in ``metrics.json["one_split"]``.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/real_hearts.py --out runs/real_hearts
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cmrclip.evaluate.realhearts import (
    PREDICTION_COLUMNS,
    check_one_split,
    fit_ridge,
    ood_auroc,
    score_table,
    stratified_folds,
)
from cmrclip.ingest.pipeline import IngestConfig, ingest
from cmrclip.ingest.realsets import RealSubject, acdc_cine_subjects, mnms2_subjects, sunnybrook_subjects
from cmrclip.segment import load_segmenter
from cmrclip.serve.realcheck import real_store, score_real, score_volumes
from cmrclip.synth.hearts import load_real_hearts
from cmrclip.synth.sources import read_acdc_pack

SHARED = Path("../shared/data")
SALT = "real-hearts-benchmark"
ENCODERS = ("realistic", "analytic", "random", "scratch")
MODELS = (*ENCODERS, "volumes")
INPUTS = ("acdc_cine", "acdc_edes")
SPACING_MM, CROP = 2.0, 96


@dataclass
class Plan:
    """Which real subjects build, train and score."""

    mode: str
    build: set[str]
    test: list[RealSubject]
    few_train: list[RealSubject] = field(default_factory=list)
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _edes(packs: list[Path], labels: Path | None, arrays: dict) -> list[RealSubject]:
    out = []
    for pack in packs:
        for s in read_acdc_pack(pack, labels, require_masks=labels is None):
            arrays[s.subject] = (s.image_ed, s.image_es)
            out.append(RealSubject("acdc_edes", s.subject, Path(pack), s.group, s.lvef))
    return out


def make_plan(a: argparse.Namespace) -> Plan:
    """The split of the real data (see the module docstring)."""
    arrays: dict = {}
    train = _edes(a.acdc_train, None, arrays) + [s for d in a.cine_train for s in acdc_cine_subjects(d)]
    test = _edes(a.acdc_test, a.acdc_test_labels, arrays) + [
        s for d in a.cine_test for s in acdc_cine_subjects(d, a.cine_test_labels)
    ]
    extra = (sunnybrook_subjects(a.sunnybrook, a.sunnybrook_lvef) if a.sunnybrook else []) + mnms2_subjects(a.mnms2)
    if test:
        return Plan("split", {s.subject for s in train}, test + extra, train, arrays)
    patients = sorted({s.subject: s.group for s in train}.items())
    half = stratified_folds([p for p, _ in patients], [g for _, g in patients], 2, a.seed)
    build = {p for (p, _), h in zip(patients, half, strict=True) if h == 0}
    return Plan("cv", build, [s for s in train if s.subject not in build] + extra, [], arrays)


# --- the training jobs' public APIs, in one place --------------------------------------------------------------------


def _cohort(kind: str, work: Path, a: argparse.Namespace, plan: Plan) -> Path | None:
    """Synthesise and ingest a cohort into ``work/<kind>/store`` (reused when it exists for the same hearts)."""
    from cmrclip.synth import generate_cohort
    from cmrclip.synth.realistic import generate_realistic_cohort

    root, store = work / kind, work / kind / "store"
    stamp = {"studies": a.studies, "seed": a.seed, "hearts": sorted(plan.build) if kind == "realistic" else []}
    if (root / "stamp.json").is_file() and json.loads((root / "stamp.json").read_text()) == stamp:
        return store
    if root.exists():
        raise SystemExit(f"{root} holds a cohort made for other hearts or sizes; delete it or use another --work")
    kw = {"matrix": a.matrix, "phases": a.phases, "workers": a.workers}
    if kind == "realistic":
        hearts = load_real_hearts(acdc_packs=a.acdc_train, cine_dirs=a.cine_train, subjects=plan.build)
        generate_realistic_cohort(root / "cohort", a.studies, a.seed, hearts, **kw)
    else:
        generate_cohort(root / "cohort", a.studies, a.seed, **kw)
    cfg = IngestConfig(salt=SALT, spacing_mm=SPACING_MM, crop_size=CROP, workers=a.workers)
    ingest([root / "cohort" / "dicom"], store, cfg, reports=root / "cohort" / "reports.jsonl",
           labels=root / "cohort" / "ground_truth.csv")  # fmt: skip
    (root / "stamp.json").write_text(json.dumps(stamp))
    return store


def _encoder(kind: str, store: Path, work: Path, a: argparse.Namespace) -> Path | None:
    """Contrastive pretraining on ``store`` (cached), or a random encoder; None for scratch."""
    from cmrclip.config import load_config
    from cmrclip.models.convert import save_video_encoder
    from cmrclip.models.registry import build_video_encoder
    from cmrclip.train.pretrain import PretrainConfig, pretrain

    path = work / kind / "pretrain" / "encoder.pt"
    if kind == "random":
        path.parent.mkdir(parents=True, exist_ok=True)
        save_video_encoder(build_video_encoder("tiny", seed=a.seed), path)
    elif kind in ("realistic", "analytic") and not path.is_file():
        sets = [
            f"store_root={store}",
            f"seed={a.seed}",
            f"train.steps={a.pretrain_steps}",
            "train.device=cpu",
            f"train.checkpoint_every={a.pretrain_steps}",
            f"train.batch_size={min(64, a.studies // 2)}",
        ]  # fewer than one batch of studies is an error; fmt: skip
        pretrain(load_config(PretrainConfig, None, sets, defaults="pretrain.yaml"), path.parent)
    return None if kind == "scratch" else path


def _zero_label_model(kind: str, store: Path, encoder: Path | None, out: Path, a: argparse.Namespace) -> Path:
    """A study model trained on the synthetic ``store`` only; returns its bundle."""
    from cmrclip.train.finetune import FinetuneConfig, run_finetune

    mode = "scratch" if encoder is None else "linear"
    cfg = FinetuneConfig(store_root=str(store), out_dir=str(out / "models" / kind), mode=mode, seed=a.seed,
                         encoder_path=None if encoder is None else str(encoder),
                         epochs=a.scratch_epochs if encoder is None else a.epochs)  # fmt: skip
    return run_finetune(cfg).bundle


def _volume_model(work: Path, out: Path, a: argparse.Namespace, plan: Plan) -> Path:
    """A segmenter trained on realistic studies of the build hearts plus analytic hearts (cached in ``work``)."""
    from cmrclip.config import load_config
    from cmrclip.segment import save_segmenter
    from cmrclip.segment.data import realistic_stacks
    from cmrclip.segment.train import TrainSegConfig, train_segmenter, training_stacks

    path, stamp_file = out / "models" / "volumes" / "segmenter.pt", work / "volumes" / "stamp.json"
    sets = [f"seed={a.seed}", "real_data=none"] + ([f"steps={a.seg_steps}"] if a.seg_steps else [])
    stamp = {"hearts": sorted(plan.build), "studies": a.seg_studies, "sets": sets}
    cached = work / "volumes" / "segmenter.pt"
    if not (cached.is_file() and stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp):
        cfg = load_config(TrainSegConfig, None, sets, defaults="train_seg.yaml")
        hearts = load_real_hearts(acdc_packs=a.acdc_train, cine_dirs=a.cine_train, subjects=plan.build)
        stacks = realistic_stacks(hearts, a.seg_studies, a.seed, workers=a.workers) + training_stacks(cfg)[0]
        seg, _ = train_segmenter(cfg, stacks)
        save_segmenter(seg, cached)
        stamp_file.write_text(json.dumps(stamp))
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, path)
    return path


def _real_studies(plan: Plan, work: Path, workers: int) -> dict[tuple[str, str], str]:
    """The plan's real studies in ``work/real_store`` (reused when it holds the same subjects)."""
    subjects = plan.test + plan.few_train
    stamp, cache = sorted([s.dataset, s.subject] for s in subjects), work / "real_store.json"
    if cache.is_file() and json.loads(cache.read_text())["subjects"] == stamp:
        return {tuple(k.split("/", 1)): v for k, v in json.loads(cache.read_text())["entries"].items()}
    cfg = IngestConfig(salt=SALT, spacing_mm=SPACING_MM, crop_size=CROP, workers=workers, fallback_view="SAX")
    entries = real_store(subjects, work / "real_store", cfg, plan.arrays)
    cache.write_text(json.dumps({"subjects": stamp, "entries": {"/".join(k): v for k, v in entries.items()}}))
    return entries


def _features(rows: pd.DataFrame) -> np.ndarray:
    """Frozen study embedding plus the zero-label LVEF (in tens of points) of each study."""
    return np.stack(
        [np.r_[e, np.nan_to_num(p / 10.0)] for e, p in zip(rows["embedding"], rows["lvef_pred"], strict=True)]
    )


def _fit_predict(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame | None:
    train = train.dropna(subset=["lvef_true", "group_true"])
    if len(train) < 3 or test.empty:
        return None
    x, z = _features(train), _features(test)
    lvef = fit_ridge(x, list(train["lvef_true"])).regress(z)
    return test.assign(lvef_pred=lvef, group_pred=fit_ridge(x, list(train["group_true"])).classify(z))


def few_label(feats: pd.DataFrame, plan: Plan, a: argparse.Namespace) -> pd.DataFrame:
    """Few-label predictions by input: CV over the scored ACDC patients, or trained on the training subjects."""
    out = []
    for dataset in INPUTS:
        rows = feats[feats["dataset"] == dataset].reset_index(drop=True)
        if plan.mode == "split":
            splits = [(rows[rows["role"] == "train"], rows[rows["role"] == "test"])]
        elif len(rows) >= 2:
            folds = stratified_folds(list(rows["subject"]), list(rows["group_true"]), min(5, len(rows)), a.seed)
            splits = [(rows[folds != k], rows[folds == k]) for k in range(folds.max() + 1)]
        else:
            splits = []
        out += [t for t in (_fit_predict(tr, te) for tr, te in splits) if t is not None]
    return pd.concat(out) if out else feats.iloc[:0].copy()


def run(a: argparse.Namespace) -> dict:
    """The whole benchmark; writes ``predictions.csv`` and ``metrics.json`` to ``a.out`` and returns the metrics."""
    out, work, t0 = Path(a.out), Path(a.work or Path(a.out) / "work"), time.perf_counter()
    plan = make_plan(a)
    scored = {s.subject for s in plan.test}
    check = check_one_split({"realistic cohort, its pretraining and the volumes segmenter": plan.build,
                             "few-label training": {s.subject for s in plan.few_train}}, scored)  # fmt: skip
    check["mode"] = plan.mode
    stores = {k: _cohort(k, work, a, plan) for k in ("realistic", "analytic")}
    entries = _real_studies(plan, work, a.workers)
    truth = {(s.dataset, s.subject): s for s in plan.test + plan.few_train}
    tables, ood = [], {}
    for kind in a.models:
        store = stores["analytic" if kind == "analytic" else "realistic"]
        if kind == "volumes":
            bundle = _volume_model(work, out, a, plan)
            feats = score_volumes(load_segmenter(bundle), entries)
        else:
            bundle = _zero_label_model(kind, store, _encoder(kind, store, work, a), out, a)
            feats = score_real(bundle, entries, SALT)
        feats["role"] = ["test" if s in scored else "train" for s in feats["subject"]]
        feats["lvef_true"] = [truth[k].lvef for k in zip(feats["dataset"], feats["subject"], strict=True)]
        feats["group_true"] = [truth[k].group for k in zip(feats["dataset"], feats["subject"], strict=True)]
        tables += [feats[feats["role"] == "test"].assign(setting="zero_label"),
                   few_label(feats, plan, a).assign(setting="few_label")]  # fmt: skip
        tables[-1]["encoder"] = tables[-2]["encoder"] = kind
        if kind == "analytic":
            ood = _ood(bundle, feats[feats["role"] == "test"]["ood"], store)
    table = pd.concat(tables)[list(PREDICTION_COLUMNS)]
    table.to_csv(out / "predictions.csv", index=False)
    metrics = {"one_split": check, "scores": score_table(table), "ood": ood,
               "args": {k: str(v) for k, v in vars(a).items()}, "seconds": round(time.perf_counter() - t0),
               "loadavg": Path("/proc/loadavg").read_text().strip()}  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
    return metrics


def _ood(bundle: Path, real: pd.Series, store: Path) -> dict:
    """OOD AUROC of the analytic-only model: real test studies vs its held-out synthetic test studies."""
    from cmrclip.serve.predict import load_model

    model = load_model(bundle, salt=SALT)
    keys = pd.read_csv(bundle.parent / "predictions_test.csv")["study_key"]
    synthetic = [model.predict(f"{store}#{k}").ood_distance for k in keys]
    warned = lambda x: float(np.mean(np.asarray(x, dtype=float) > 1))  # noqa: E731
    return {"auroc": ood_auroc(list(real), synthetic), "n_real": len(real), "n_synthetic": len(synthetic),
            "real_warned": warned(real), "synthetic_warned": warned(synthetic)}  # fmt: skip


def markdown(metrics: dict) -> str:
    """The results as a markdown table: one row per setting, encoder and dataset, then the OOD line."""
    lines = ["| setting | encoder | dataset | n | LVEF MAE | bias | r | group acc. |", "|---" * 8 + "|"]
    fmt = lambda c, k: f"{c[k]:.3f}" if k in c else "-"  # noqa: E731
    for setting, encoders in metrics["scores"].items():
        for encoder in MODELS:
            for dataset, c in encoders.get(encoder, {}).items():
                cells = [fmt(c, k) for k in ("lvef_mae", "lvef_bias", "lvef_r", "group_accuracy")]
                lines.append(f"| {setting} | {encoder} | {dataset} | {c['n']} | " + " | ".join(cells) + " |")
    o = metrics["ood"]
    if not o:  # the analytic model was not run
        return "\n".join(lines)
    lines.append(f"\nOOD (analytic-only model): AUROC {o['auroc']:.3f}, real warned {o['real_warned']:.2f} "
                 f"(n={o['n_real']}), held-out synthetic warned {o['synthetic_warned']:.2f} "
                 f"(n={o['n_synthetic']})")  # fmt: skip
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sb = sorted((SHARED / "sunnybrook" / "dicom_tar_xz").glob("*.tar.xz"))
    p.add_argument("--acdc-train", action="append", type=Path, help="ACDC ED/ES pack (.tar.xz; repeatable)")
    p.add_argument("--acdc-test", action="append", type=Path, default=[], help="test pack (repeatable)")
    p.add_argument("--acdc-test-labels", type=Path, help="CSV subject,group,lvef for the test packs")
    p.add_argument("--cine-train", action="append", type=Path, help="ACDC-layout cine folder (repeatable)")
    p.add_argument("--cine-test", action="append", type=Path, default=[], help="test cine folder (repeatable)")
    p.add_argument("--cine-test-labels", type=Path, help="CSV subject,group,lvef for the test cine folders")
    p.add_argument("--sunnybrook", nargs="*", type=Path, default=sb, help="Sunnybrook DICOM archives (test only)")
    p.add_argument("--sunnybrook-lvef", type=Path, help="CSV subject,lvef (default: the shared summary.json)")
    p.add_argument("--mnms2", action="append", type=Path, help="M&Ms-2 subject folder (test only; repeatable)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--work", type=Path, help="cache of cohorts and pretrained encoders (default OUT/work)")
    for name, default in (("studies", 160), ("matrix", 96), ("phases", 16), ("pretrain-steps", 150), ("epochs", 30),
                          ("scratch-epochs", 8), ("workers", 2), ("seed", 0), ("seg-studies", 60)):  # fmt: skip
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--seg-steps", type=int, help="segmenter training steps (default: train_seg.yaml's)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="which models to score")
    a = p.parse_args(argv)
    a.acdc_train = a.acdc_train or [SHARED / "acdc_ed_es" / "acdc_40_patients_ed_es.tar.xz"]
    a.cine_train = a.cine_train or [SHARED / "acdc_cine"]
    a.mnms2 = a.mnms2 if a.mnms2 is not None else [SHARED / "mnms2_subject001"]
    return a


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(2)
    print(markdown(run(parse_args())))
