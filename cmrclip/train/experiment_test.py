from __future__ import annotations

import math

import pandas as pd
import pytest

from cmrclip.errors import ConfigError
from cmrclip.models.convert import load_video_encoder, save_video_encoder
from cmrclip.models.registry import build_video_encoder
from cmrclip.train.experiment import ExperimentConfig, _cell_config, cell_dir, run_experiment
from cmrclip.train.finetune_test import HCM, make_toy_store


def _score(pred: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    err = (pred["lvef_pred"] - pred["lvef"]).abs().dropna()
    return {"lvef_mae": (float(err.mean()), math.nan, math.nan)}


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    store = make_toy_store(root / "store", n_patients=20)
    enc = build_video_encoder("tiny", seed=1, overrides={"input_size": [16, 32, 32], "embed_dim": 32, "proj_dim": 64})
    save_video_encoder(enc, root / "encoder.pt")
    return store, root


def _cfg(store, root, **kw):
    data = {
        "out_dir": str(root / "exp"),
        "finetune": {
            "store_root": str(store.root),
            "targets": [HCM],
            "epochs": 2,
            "batch_size": 4,
            "head": {"hidden": 8, "attention_dim": 4},
            "bags": {"views": ["4CH", "SAX"], "sax_every": 3},
        },
        "inits": [
            {"name": "pretrained", "mode": "linear", "encoder_path": str(root / "encoder.pt")},
            {"name": "random", "mode": "linear", "random_init": True},
        ],
        "fractions": [0.25, 1.0],
        "seeds": [0],
    }
    return ExperimentConfig.model_validate(data | kw)


@pytest.mark.slow
def test_grid_runs_every_cell_then_resumes(grid):
    store, root = grid
    cfg = _cfg(store, root)
    first = run_experiment(cfg, _score)
    assert first.n_run == 4 and first.n_skipped == 0
    table = pd.read_csv(first.table_path)
    assert set(table.columns) >= {"init", "fraction", "seed", "metric", "value", "lower", "upper", "n_train"}
    assert len(table) == 4
    n = table.set_index(["init", "fraction"])["n_train"]
    assert n[("pretrained", 0.25)] < n[("pretrained", 1.0)]
    assert n[("pretrained", 0.25)] == n[("random", 0.25)]  # same patients for every init
    used = table.set_index(["init", "fraction"])["n_labelled"]  # every label used, validation included
    val_used = used - n
    assert (val_used > 0).all() and val_used[("pretrained", 0.25)] < val_used[("pretrained", 1.0)]
    assert (cell_dir(root / "exp", "random", 1.0, 0) / "model.pt").is_file()
    random_info = load_video_encoder(root / "exp" / "inits" / "random_s0.pt").info
    assert random_info.train_patients == []  # trained on nobody: the leakage check passes, with no warning
    again = run_experiment(cfg, _score)
    assert again.n_run == 0 and again.n_skipped == 4
    pd.testing.assert_frame_equal(again.table, table, check_dtype=False)


def test_bad_grids_raise(grid):
    store, root = grid
    with pytest.raises(ConfigError, match="empty"):
        run_experiment(_cfg(store, root, seeds=[]), _score)
    with pytest.raises(ConfigError, match="repeat"):
        run_experiment(_cfg(store, root, inits=[{"name": "a"}, {"name": "a"}]), _score)


def test_an_init_can_override_the_prompt_prior(grid):
    store, root = grid
    cfg = _cfg(store, root, inits=[{"name": "p", "prompt_prior": True}, {"name": "q"}])
    with_prior, without = (_cell_config(cfg, init, 1.0, 0, root / "x") for init in cfg.inits)
    assert with_prior.head.prompt_prior and not without.head.prompt_prior
    assert with_prior.head.hidden == without.head.hidden == 8  # the rest of the shared head is kept
