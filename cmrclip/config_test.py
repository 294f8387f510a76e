from __future__ import annotations

from typing import Literal

import pytest
import yaml

from cmrclip.config import StrictModel, apply_overrides, load_config, save_config
from cmrclip.errors import ConfigError


class Inner(StrictModel):
    lr: float = 1e-3
    data_dir: str = "data"


class Demo(StrictModel):
    mode: Literal["linear", "transfer"] = "linear"
    inner: Inner = Inner()


def test_precedence_file_then_overrides(tmp_path):
    cfg_file = tmp_path / "sub" / "c.yaml"
    cfg_file.parent.mkdir()
    cfg_file.write_text(yaml.safe_dump({"mode": "transfer", "inner": {"lr": 0.5, "data_dir": "d"}}))
    cfg = load_config(Demo, cfg_file, ["inner.lr=0.25"])
    assert cfg.mode == "transfer"
    assert cfg.inner.lr == 0.25
    assert cfg.inner.data_dir == str((tmp_path / "sub" / "d").resolve())


def test_unknown_key_and_bad_mode_raise(tmp_path):
    with pytest.raises(ConfigError, match="extra"):
        load_config(Demo, None, ["inner.nope=1"])
    with pytest.raises(ConfigError, match="mode"):
        load_config(Demo, None, ["mode=classification"])


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"a\.b=c"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Demo, tmp_path / "missing.yaml")


def test_save_config_writes_version_and_seed(tmp_path):
    path = save_config(Demo(), tmp_path, seed=7)
    body = yaml.safe_load(path.read_text())
    assert body["seed"] == 7
    assert body["config"]["mode"] == "linear"
    assert body["cmrclip_version"]


@pytest.mark.parametrize(
    ("module", "name", "packaged"),
    [
        ("cmrclip.synth.cohort", "SynthConfig", "synth.yaml"),
        ("cmrclip.ingest.pipeline", "IngestConfig", "ingest.yaml"),
        ("cmrclip.text.tokenizer", "TokenizerConfig", "tokenizer.yaml"),
        ("cmrclip.train.pretrain", "PretrainConfig", "pretrain.yaml"),
        ("cmrclip.train.finetune", "FinetuneConfig", "finetune.yaml"),
        ("cmrclip.train.experiment", "ExperimentConfig", "experiment.yaml"),
        ("cmrclip.evaluate.evaluation", "EvaluateConfig", "evaluate.yaml"),
    ],
)
def test_python_defaults_equal_the_packaged_yaml(module, name, packaged):
    """One source of defaults: a job's config class built in Python equals the packaged YAML the CLI loads."""
    import importlib

    schema = getattr(importlib.import_module(module), name)
    assert schema().model_dump(mode="json") == load_config(schema, defaults=packaged).model_dump(mode="json")
