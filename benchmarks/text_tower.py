"""Frozen vs jointly trained text tower in pretraining: held-out recall, zero-shot, and cost, on one store.

The paper trains its text encoder together with the video tower; our CPU default keeps MiniLM frozen
(``model.text.trainable_layers: 0``, features cached). ``model.text.trainable_layers: null`` trains every layer
jointly (``N``: the last N). This runs both with the same seed, steps and batch on a store that already has its split
(``cmrclip split``), and prints held-out recall (the val split), zero-shot macro AUROC on the test split beside the
random video tower, and seconds per step. Usage:

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/text_tower.py --store runs/demo/store --out runs/text_tower \
        --steps 40 --batch 32
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cmrclip.config import load_config
from cmrclip.evaluate.training import zeroshot_summary
from cmrclip.train.pretrain import PretrainConfig, pretrain
from cmrclip.train.zeroshot import ZeroshotConfig, run_zeroshot

TOWERS = {"frozen": "0", "joint": "null"}


def run(name: str, args: argparse.Namespace) -> dict:
    """Pretrain with one text-tower setting, then zero-shot on the test split; return the numbers."""
    out = args.out / name
    overrides = [
        f"store_root={args.store.resolve()}", f"train.steps={args.steps}", f"train.batch_size={args.batch}",
        f"model.text.trainable_layers={TOWERS[name]}", f"train.checkpoint_every={args.steps}", "data.num_workers=0",
        f"optim.warmup_steps={max(1, args.steps // 10)}",
    ]  # fmt: skip
    cfg = load_config(PretrainConfig, None, overrides, defaults="pretrain.yaml")
    start = time.perf_counter()
    result = pretrain(cfg, out)
    seconds = time.perf_counter() - start
    zs = run_zeroshot(ZeroshotConfig(store_root=str(args.store), clip_path=str(out / "clip.pt"), out_dir=str(out)))
    summary = zeroshot_summary(zs.predictions, zs.random_predictions, zs.retrieval, zs.random_retrieval)
    recall = {k: round(v, 3) for k, v in result.metrics.items() if "_r@" in k or k == "n_candidates"}
    return {
        "text_tower": name,
        "steps": result.steps,
        "seconds_per_step": round(seconds / max(result.steps, 1), 2),
        "held_out_recall": recall,
        "zero_shot_test": summary.round(3).to_dict(orient="records"),
        "n_test": len(zs.predictions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="a store with its split (cmrclip split)")
    parser.add_argument("--out", type=Path, default=Path("runs/text_tower"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--towers", nargs="+", default=list(TOWERS), choices=list(TOWERS))
    args = parser.parse_args()
    results = [run(name, args) for name in args.towers]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
