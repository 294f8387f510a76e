from __future__ import annotations

import pytest
import torch

from cmrclip.errors import ConfigError
from cmrclip.models.registry import seeded_init
from cmrclip.models.text import (
    TextConfig,
    TextEncoder,
    cache_text_features,
    load_tokenizer,
    minilm_dir,
    tokenize,
)

SMALL = {"vocab_size": 100, "hidden_size": 32, "num_layers": 3, "num_heads": 2, "intermediate_size": 64, "proj_dim": 16}


def _small(**kw) -> TextEncoder:
    return seeded_init(lambda: TextEncoder(TextConfig(**(SMALL | kw))), 0)


def _batch() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[2, 17, 40, 9, 3], [2, 55, 3, 0, 0]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long()}


def test_small_tower_shapes_and_projection():
    enc = _small().eval()
    b = _batch()
    feats = enc.features(**b)
    assert feats.shape == (2, 32)
    z = enc.encode(**b)
    assert z.shape == (2, 16)
    torch.testing.assert_close(enc.project(feats), z)
    torch.testing.assert_close(enc.encode(**b, normalize=True).norm(dim=-1), torch.ones(2))


def test_mean_pooling_ignores_padding():
    enc = _small(pooling="mean").eval()
    b = _batch()
    padded = {k: torch.cat([v, torch.zeros(2, 3, dtype=v.dtype)], 1) for k, v in b.items()}
    torch.testing.assert_close(enc.features(**b), enc.features(**padded), atol=1e-5, rtol=1e-5)
    hidden = enc.bert(**b).last_hidden_state
    torch.testing.assert_close(enc.features(**b)[1], hidden[1, :3].mean(0))


def test_trainable_layers_and_frozen_tower():
    enc = _small(trainable_layers=1)
    trainable = {n.split(".")[2] for n, p in enc.bert.named_parameters() if p.requires_grad}
    assert trainable == {"2"}  # only the last of three encoder layers
    assert enc.text_proj.weight.requires_grad and not enc.frozen
    frozen = _small(trainable_layers=0).train()
    assert frozen.frozen and not frozen.bert.training and frozen.training
    assert all(p.requires_grad for p in _small().bert.parameters())


def test_cache_text_features_matches_direct_features():
    enc = _small(trainable_layers=0)
    texts = ["a", "bb", "ccc"]

    def fake_tokenize(batch):
        ids = torch.tensor([[2, 10 + len(t), 3] for t in batch])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    seen = []
    cached = cache_text_features(enc, fake_tokenize, texts, batch_size=2, progress=lambda *a: seen.append(a))
    direct = enc.features(**fake_tokenize(texts))
    torch.testing.assert_close(cached, direct)
    assert seen[-1] == ("text features", 3, 3)
    with pytest.raises(ConfigError, match="frozen text tower"):
        cache_text_features(_small(), fake_tokenize, texts)


def test_minilm_loads_offline_from_the_installed_package():
    cfg = TextConfig(source="minilm", pooling="mean", proj_dim=8, trainable_layers=0, max_length=16)
    assert (minilm_dir() / "config.json").is_file()
    enc = TextEncoder(cfg).eval()
    tok = load_tokenizer(cfg)
    batch = tokenize(tok, ["Severe LV dilation.", "Normal biventricular size and function."], cfg.max_length)
    assert batch["input_ids"][0, 0] == tok.cls_token_id
    feats = enc.features(**batch)
    assert enc.hidden_size == 384 and feats.shape == (2, 384)
    same = enc.features(**tokenize(tok, ["Severe LV dilation."], cfg.max_length))
    torch.testing.assert_close(same[0], feats[0], atol=1e-5, rtol=1e-5)


def test_missing_local_folders_raise():
    with pytest.raises(ConfigError, match=r"has no config\.json"):
        TextEncoder(TextConfig(source="local", local_dir="/nonexistent/bert"))
    with pytest.raises(ConfigError, match="tokenizer_dir"):
        load_tokenizer(TextConfig())
