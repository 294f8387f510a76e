"""Evaluation with honest statistics, on numpy/scipy/pandas only (no torch).

Fixed-orientation metrics, DeLong/bootstrap CIs, paired tests, calibration, conformal intervals, scan-rescan
agreement, plots and a self-contained HTML report.
"""

from __future__ import annotations

from cmrclip.evaluate.delong import delong_ci, delong_paired_test, delong_unpaired_test
from cmrclip.evaluate.evaluation import EvaluateConfig, evaluate_predictions
from cmrclip.evaluate.io import Predictions, read_predictions
from cmrclip.evaluate.plots import plot_data_efficiency
from cmrclip.evaluate.report import ReportImage, ReportSection, build_html_report
from cmrclip.evaluate.run import run_evaluate

__all__ = [
    "EvaluateConfig",
    "Predictions",
    "ReportImage",
    "ReportSection",
    "build_html_report",
    "delong_ci",
    "delong_paired_test",
    "delong_unpaired_test",
    "evaluate_predictions",
    "plot_data_efficiency",
    "read_predictions",
    "run_evaluate",
]
