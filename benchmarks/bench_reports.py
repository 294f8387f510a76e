"""Report text benchmark: labelling and de-identification throughput on one core, plus label quality.

Usage: OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_reports.py [--seconds 10] [--synthetic 2000]

Throughput is reported both as wall time and as CPU time of this process (the machine is shared, so CPU time is
the fairer per-core figure). Quality: the hand-written gold and held-out sets (cmrclip/text/testdata) and
synthetic reports written by cmrclip.synth with known truth.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "cmrclip" / "text"))

from labeler_test import load, scores  # noqa: E402
from synthetic_test import agreement, synthetic_reports  # noqa: E402

from cmrclip.text.deid import deidentify  # noqa: E402
from cmrclip.text.labeler import label_report  # noqa: E402
from cmrclip.text.lexicon import load_lexicon  # noqa: E402


def rate(fn: Callable[[str], Any], texts: list[str], seconds: float) -> tuple[float, float]:
    """Reports per second (wall, CPU) of ``fn`` cycling over ``texts`` for about ``seconds``."""
    fn(texts[0])
    n, wall, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        for text in texts:
            fn(text)
        n += len(texts)
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--synthetic", type=int, default=2000)
    args = parser.parse_args()
    print("loadavg before:", Path("/proc/loadavg").read_text().strip())
    t = time.perf_counter()
    load_lexicon()
    print(f"lexicon compile: {time.perf_counter() - t:.3f} s")

    gold = [r["text"] for r in load("reports_gold.jsonl")]
    frozen = [r["text"] for r in load("reports_frozen.jsonl")]
    synth_texts, synth_truth = synthetic_reports(args.synthetic, seed=11)

    def surrogate(text: str) -> Any:
        return deidentify(text, mode="surrogate", key="bench")

    for name, texts in (("gold (hand-written)", gold), ("frozen (issue 16)", frozen), ("synthetic", synth_texts)):
        chars = sum(map(len, texts)) / len(texts)
        wall, cpu = rate(label_report, texts, args.seconds)
        print(f"label  {name:20s} {len(texts):5d} reports, {chars:.0f} chars avg: {wall:7.0f}/s wall, {cpu:7.0f}/s CPU")
        wall, cpu = rate(deidentify, texts, args.seconds / 2)
        print(f"deid   {name:20s} {len(texts):5d} reports: {wall:7.0f}/s wall, {cpu:7.0f}/s CPU")
        wall, cpu = rate(surrogate, texts, args.seconds / 2)
        print(f"deid surrogate {name:12s} {len(texts):5d} reports: {wall:7.0f}/s wall, {cpu:7.0f}/s CPU")

    for name in ("reports_gold.jsonl", "reports_heldout.jsonl"):
        per_label, negative_f1, lvef_wrong = scores(load(name))
        worst = sorted(per_label.items(), key=lambda kv: kv[1])[:3]
        print(f"{name}: min per-label positive F1 {min(per_label.values()):.3f} over {len(per_label)} labels "
              f"(worst {[(k, round(v, 3)) for k, v in worst]}), negative F1 {negative_f1:.3f}, "
              f"LVEF wrong {len(lvef_wrong)}")  # fmt: skip
    print("synthetic agreement:", json.dumps({k: round(v, 4) for k, v in agreement(synth_texts, synth_truth).items()}))
    print("loadavg after:", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main()
