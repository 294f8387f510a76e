"""Report quality on the hand-written sets: labels, current LVEF and de-identification (issue 16).

Usage: OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/eval_reports.py [--mode tag] [--show 20]

Sets: ``reports_gold.jsonl`` (66) and ``reports_heldout.jsonl`` (20), whose identifiers are planted by the
``planted()`` wrapper of ``cmrclip/text/deid_test.py``, and ``reports_frozen.jsonl`` (169, identifiers in the text).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "cmrclip" / "text"))

from scoring_test import deid_rows  # noqa: E402

from cmrclip.text import deid  # noqa: E402
from cmrclip.text.labeler import label_report  # noqa: E402
from cmrclip.text.scoring import load_gold, score_deid, score_labels  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="tag")
    parser.add_argument("--show", type=int, default=15)
    args = parser.parse_args()
    kwargs = {"mode": args.mode} if "mode" in inspect.signature(deid.deidentify).parameters else {}

    def run(text: str) -> str:
        return deid.deidentify(text, **kwargs).text

    for name in ("reports_gold.jsonl", "reports_heldout.jsonl", "reports_frozen.jsonl"):
        rows = load_gold(name)
        labels = score_labels(rows, label_report)
        scrubbed = score_deid(deid_rows(name), run)
        print(f"{name} ({len(rows)} reports)\n  labels: {labels.line()}")
        if labels.measures_exact:
            print("  other measures exact:", {k: round(v, 3) for k, v in labels.measures_exact.items()})
        print(f"  deid ({args.mode}): {scrubbed.line()}")
        for row in labels.lvef_wrong[: args.show]:
            print("    lvef", row)
        for row in labels.misses[: args.show]:
            print("    label", row)
        for row in scrubbed.leaks[: args.show]:
            print("    leak", row)


if __name__ == "__main__":
    main()
