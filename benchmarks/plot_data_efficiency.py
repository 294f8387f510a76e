"""One data-efficiency picture from several grids of `bench_data_efficiency.py` (the lines a reader compares).

    .venv/bin/python benchmarks/plot_data_efficiency.py --out docs/images \
        "pretrained + prompt prior=runs/bench512/grid_prior_linear:pretrained" \
        "pretrained=runs/bench512/grid_linear:pretrained" "random encoder=runs/bench512/grid_linear:random"

Each argument is LABEL=GRID_DIR:INIT; writes OUT/data_efficiency_{macro_auroc,lvef_mae}.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from cmrclip.evaluate.plots import plot_data_efficiency

LABELS = {"macro_auroc": "macro AUROC (conditions, test)", "lvef_mae": "LVEF MAE (points, test)"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lines", nargs="+", help="LABEL=GRID_DIR:INIT")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    parts = []
    for line in args.lines:
        label, source = line.split("=", 1)
        grid, init = source.rsplit(":", 1)
        table = pd.read_csv(Path(grid) / "table.csv")
        parts.append(table[table["init"] == init].assign(init=label))
    table = pd.concat(parts, ignore_index=True)
    for metric, label in LABELS.items():
        path = plot_data_efficiency(table[table["metric"] == metric], args.out / f"data_efficiency_{metric}.png", label)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
