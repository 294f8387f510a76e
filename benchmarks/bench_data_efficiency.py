"""Data-efficiency benchmark: synthetic cohort -> store -> CPU pretraining -> grid of fine-tuning runs, zero-shot.

Usage (from the repository root; cohort, store, pretraining and finished grid cells are reused when present):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_data_efficiency.py --work runs/bench_de --studies 200

``--pretrain DIR`` reuses a finished ``cmrclip pretrain`` folder; ``--prompt-prior`` starts every init's condition
logits from the zero-shot prompt classifier of that pretraining's text tower (``head.prompt_prior``); ``--mode
linear`` keeps the projection frozen too. The store's one patient-level split is written before pretraining (test
share ``--test-share``): pretraining reads only its train split, zero-shot and every grid cell score its test split.
The grid goes to WORK/grid[_prior][_linear]. Prints the grid's test
metrics (mean over seeds, per init and label fraction), then the zero-shot numbers beside a random video tower's.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from _store import make_store

from cmrclip.conditions import load_conditions
from cmrclip.config import load_config
from cmrclip.data.store_split import ensure_split
from cmrclip.evaluate.plots import plot_data_efficiency
from cmrclip.evaluate.training import headline_scores
from cmrclip.ingest.store import StudyStore
from cmrclip.train.experiment import ExperimentConfig, run_experiment
from cmrclip.train.pretrain import PretrainConfig, pretrain
from cmrclip.train.zeroshot import ZeroshotConfig, run_zeroshot


def make_encoder(out: Path, store: Path, steps: int) -> Path:
    if not (out / "encoder.pt").is_file():
        t = time.perf_counter()
        cfg = load_config(PretrainConfig, None, [f"store_root={store.resolve()}", f"train.steps={steps}"],
                          defaults="pretrain.yaml")  # fmt: skip
        result = pretrain(cfg, out)
        print(f"pretrain: {result.steps} steps in {time.perf_counter() - t:.0f} s; {json.dumps(result.metrics)}")
    return out


def grid_name(args: argparse.Namespace) -> str:
    """grid, grid_prior, grid_linear or grid_prior_linear."""
    return "grid" + ("_prior" if args.prompt_prior else "") + ("" if args.mode == "projection" else f"_{args.mode}")


def run_grid(work: Path, store: Path, pre: Path, args: argparse.Namespace) -> None:
    overrides = [
        f"out_dir={work / grid_name(args)}",
        f"finetune.store_root={store.resolve()}",
        f"finetune.epochs={args.epochs}",
        f"finetune.test_share={args.test_share}",
        f"inits=[{{name: pretrained, mode: {args.mode}, encoder_path: {(pre / 'encoder.pt').resolve()}}}, "
        f"{{name: random, mode: {args.mode}, random_init: true}}]",
        f"seeds={list(range(args.seeds))}",
    ]
    if args.fractions:
        overrides.append(f"fractions={args.fractions}")
    if args.prompt_prior:
        overrides += ["finetune.head.prompt_prior=true", f"finetune.clip_path={(pre / 'clip.pt').resolve()}"]
    cfg = load_config(ExperimentConfig, None, overrides, defaults="experiment.yaml")
    t = time.perf_counter()
    result = run_experiment(cfg, headline_scores)
    print(f"grid: {result.n_run} cells run, {result.n_skipped} reused, {time.perf_counter() - t:.0f} s")
    for metric in ("macro_auroc", "lvef_mae"):
        rows = result.table[result.table["metric"] == metric]
        plot_data_efficiency(rows, result.out_dir / f"data_efficiency_{metric}.png", metric_label=metric)
        cols = ["value", "lower", "upper", "n_train", "n_labelled"]
        summary = rows.groupby(["init", "fraction"])[cols].mean().unstack(0)
        print(f"\n{metric} (mean over seeds; lower/upper: mean bootstrap 95 % CI of the test set)")
        print(summary.round(3).to_string())


def run_zero_shot(work: Path, store: Path, pre: Path) -> None:
    cfg = ZeroshotConfig(store_root=str(store), clip_path=str(pre / "clip.pt"), out_dir=str(work / "zs"))
    result = run_zeroshot(cfg)
    visible = [c.key for c in load_conditions() if c.cine_visible]
    cols = ["lvef_pred", "lvef"] + [f"{k}{s}" for k in visible for s in ("", "_score")]
    trained, chance = (headline_scores(t[cols]) for t in (result.predictions, result.random_predictions))
    print(f"\nzero-shot on {len(result.predictions)} studies ({result.n_reports} with reports)")
    for name in trained:
        print(f"  {name}: {trained[name][0]:.3f} [{trained[name][1]:.3f}, {trained[name][2]:.3f}]"
              f"  random encoder {chance[name][0]:.3f}")  # fmt: skip
    for key, value in result.retrieval.items():
        print(f"  {key}: {value:.3f}  random encoder {result.random_retrieval[key]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("runs/bench_de"))
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--steps", type=int, default=200, help="pretraining steps")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--test-share", type=float, default=0.15, help="share of patients in the test split")
    parser.add_argument("--fractions", default=None, help="label fractions, e.g. [0.05,0.1,1.0]")
    parser.add_argument("--pretrain", type=Path, default=None, help="a finished pretraining folder to reuse")
    parser.add_argument("--prompt-prior", action="store_true", help="condition logits start from the prompts")
    parser.add_argument("--mode", choices=["linear", "projection"], default="projection", help="what trains (heads.py)")
    parser.add_argument("--skip-zeroshot", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    store = make_store(args.work, args.studies)
    ensure_split(StudyStore(store), val=0.15, test=args.test_share)  # once, before anything trains
    pre = args.pretrain or make_encoder(args.work / "pretrain", store, args.steps)
    run_grid(args.work, store, pre, args)
    if not args.skip_zeroshot:
        run_zero_shot(args.work, store, pre)


if __name__ == "__main__":
    main()
