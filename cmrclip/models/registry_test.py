from __future__ import annotations

import pytest

from cmrclip.errors import ConfigError
from cmrclip.models.registry import build_video_encoder, list_models, load_preset
from cmrclip.models.video import MViTConfig


def test_presets_are_listed_and_valid():
    names = list_models()
    assert {"tiny", "small", "mvit_b_16x4"} <= set(names)
    for name in names:
        assert load_preset(name).name == name


def test_build_from_name_config_and_dict_agree():
    cfg = load_preset("tiny")
    a = build_video_encoder("tiny", seed=3)
    b = build_video_encoder(cfg, seed=3)
    c = build_video_encoder(cfg.model_dump(), seed=3)
    assert a.config == b.config == c.config
    assert all(
        p.equal(q) and q.equal(r) for p, q, r in zip(a.parameters(), b.parameters(), c.parameters(), strict=True)
    )


def test_overrides_apply_and_are_validated():
    assert load_preset("tiny", {"depth": 4}).depth == 4
    assert build_video_encoder(MViTConfig(), overrides={"proj_dim": 64}).video_proj.out_features == 64
    with pytest.raises(ConfigError, match="unknown video model 'huge'"):
        load_preset("huge")
    with pytest.raises(ConfigError, match="depth"):
        load_preset("tiny", {"depth": "deep"})
    with pytest.raises(ConfigError, match="invalid video model config"):
        build_video_encoder({"wrong_field": 1})
