from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cmrclip.errors import DataError
from cmrclip.evaluate.plots import Curve, Panel, plot_data_efficiency, plot_roc


def test_plot_data_efficiency(tmp_path):
    rows = []
    for init, base in (("cmrclip", 0.8), ("kinetics", 0.65)):
        for frac in (0.01, 0.1, 0.5, 1.0):
            value = base + 0.05 * np.log10(frac * 100) / 2
            rows.append({"init": init, "fraction": frac, "value": value, "lower": value - 0.03, "upper": value + 0.03})
    out = plot_data_efficiency(pd.DataFrame(rows), tmp_path / "eff.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 100
    with pytest.raises(DataError, match="lacks columns"):
        plot_data_efficiency(pd.DataFrame(rows).drop(columns="upper"), tmp_path / "x.png")
    with pytest.raises(DataError, match="fractions"):
        plot_data_efficiency(pd.DataFrame(rows).assign(fraction=2.0), tmp_path / "x.png")


def test_plot_roc_survives_a_one_class_target(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random(100) < 0.3).astype(float)
    good = Panel("ok", [Curve("model", y, rng.normal(size=100) + y)])
    panels = [good, Panel("bad", [Curve("m", np.zeros(5), np.ones(5))])]
    assert plot_roc(panels, tmp_path / "roc.png").stat().st_size > 1000
    with pytest.raises(DataError):
        plot_roc([], tmp_path / "none.png")


def test_a_panel_without_roc_says_why_for_each_curve():
    from matplotlib.figure import Figure

    from cmrclip.evaluate.plots import _roc_panel

    ax = Figure().subplots()
    _roc_panel(ax, Panel("bad", [Curve("model", np.zeros(4), np.ones(4)), Curve("baseline", np.zeros(4), np.ones(4))]))
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 2 and texts[0].startswith("model: no ROC") and texts[1].startswith("baseline: no ROC")
    assert all("one class" in t for t in texts)
    assert ax.texts[0].get_position() != ax.texts[1].get_position()  # stacked, not printed over each other
