from __future__ import annotations

import numpy as np
import pytest
import torch

from cmrclip.errors import CheckpointError, DataError
from cmrclip.models.bundle import save_bundle
from cmrclip.models.convert import load_video_encoder, save_video_encoder
from cmrclip.models.heads import HeadConfig, StudyModel
from cmrclip.models.prompts import retrieval_recall
from cmrclip.models.registry import build_video_encoder
from cmrclip.train.embed import embed_store, load_encoder_any, mil_pool, pca_2d, tsne_2d


def test_recall_perfect_random_and_ties():
    x = torch.eye(8)
    r = retrieval_recall(x, x)
    assert r["video_to_text_r@1"] == 1.0 and r["text_to_video_r@1"] == 1.0 and r["n_candidates"] == 8
    # each video's own text ranks last but one: beaten by exactly one other candidate
    text = x * 0.4 + torch.roll(x, 1, 0) * 0.5
    r = retrieval_recall(x, text, ks=(1, 2))
    assert r["video_to_text_r@1"] == 0.0 and r["video_to_text_r@2"] == 1.0
    same = torch.ones(5, 3)  # all tied: random tie-breaking gives chance, k / N
    tied = retrieval_recall(same, same, ks=(1, 2, 5))
    assert tied["video_to_text_r@1"] == pytest.approx(0.2) and tied["text_to_video_r@2"] == pytest.approx(0.4)
    assert tied["video_to_text_r@5"] == 1.0
    # two studies share a report text: their video queries each find it with probability 1/2 at k=1
    video, text = torch.eye(4), torch.eye(4)
    video[1] = torch.tensor([1.0, 0.1, 0.0, 0.0])
    text[1] = text[0]
    r = retrieval_recall(video, text, ks=(1,))
    assert r["video_to_text_r@1"] == pytest.approx((0.5 + 0.5 + 1 + 1) / 4)
    gen = torch.Generator().manual_seed(0)
    v, t = torch.randn(400, 16, generator=gen), torch.randn(400, 16, generator=gen)
    chance = retrieval_recall(v, t, ks=(10,))["video_to_text_r@10"]
    assert abs(chance - 10 / 400) < 0.03


def test_pca_matches_dominant_direction():
    rng = np.random.default_rng(0)
    x = np.outer(rng.normal(size=50), [3.0, 0, 0, 0]) + rng.normal(scale=0.1, size=(50, 4))
    p = pca_2d(x)
    assert p.shape == (50, 2)
    assert abs(np.corrcoef(p[:, 0], x[:, 0])[0, 1]) > 0.99
    assert pca_2d(np.ones((3, 1))).shape == (3, 2)


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory):
    enc = build_video_encoder(
        "tiny", overrides={"input_size": (8, 32, 32), "depth": 2, "stage_starts": (1,), "proj_dim": 16}
    )
    path = tmp_path_factory.mktemp("enc") / "encoder.pt"
    save_video_encoder(enc, path)
    return path


def test_embed_store_writes_clips_studies_and_picture(toy_store, encoder_file, tmp_path):
    res = embed_store(encoder_file, toy_store, tmp_path, colour_by="site")
    data = np.load(res.npz)
    assert res.n_studies == 24 and data["study"].shape == (24, 16)
    # each toy study: 4CH + SAX 6 slices with the ends dropped -> 5 clips
    assert res.n_clips == 24 * 5 and data["clip"].shape == (120, 16)
    assert set(data["clip_view"]) == {"4CH", "SAX"} and set(data["clip_study"]) == set(data["study_key"])
    assert np.allclose(np.linalg.norm(data["study"], axis=1), 1.0, atol=1e-5)
    first = data["clip"][data["clip_study"] == data["study_key"][0]].mean(0)
    assert np.allclose(first / np.linalg.norm(first), data["study"][0], atol=1e-5)
    assert res.picture is not None and res.picture.stat().st_size > 1000


def test_embed_errors(toy_store, encoder_file, tmp_path):
    with pytest.raises(DataError, match="no column 'nope'"):
        embed_store(encoder_file, toy_store, tmp_path, colour_by="nope")
    with pytest.raises(DataError, match="no studies to embed"):
        embed_store(encoder_file, toy_store, tmp_path, split="nope")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder_any(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_encoder_any(tmp_path / "junk.pt")


def test_embed_store_mil_pools_with_the_study_heads_attention(toy_store, encoder_file, tmp_path):
    encoder = load_video_encoder(encoder_file)
    torch.manual_seed(0)
    model = StudyModel(encoder, encoder.video_proj, encoder.out_dim, HeadConfig(hidden=8, attention_dim=4), ["normal"])
    torch.nn.init.normal_(model.pools[0].attention_w.weight, std=50.0)  # far from uniform weights
    model.eval()
    features = 5 * torch.randn(5, encoder.out_dim, generator=torch.Generator().manual_seed(0))
    clips, study = mil_pool(model)(features)
    with torch.no_grad():
        emb = model.projection(features)
        weights = model(torch.ones(1, 5, dtype=torch.bool), features=features[None]).attention[0]
    assert weights.max() > 0.3 and torch.isclose(weights.sum(), torch.tensor(1.0))
    torch.testing.assert_close(clips, torch.nn.functional.normalize(emb, dim=-1))
    torch.testing.assert_close(study, torch.nn.functional.normalize((weights[:, None] * emb).sum(0), dim=0))
    save_bundle(tmp_path / "model.pt", model, calibration={})
    mil = np.load(embed_store(tmp_path / "model.pt", toy_store, tmp_path / "mil", pool="mil").npz)
    mean = np.load(embed_store(tmp_path / "model.pt", toy_store, tmp_path / "mean").npz)
    np.testing.assert_allclose(mil["clip"], mean["clip"], atol=1e-5)  # the same clips and projection
    assert mil["study"].shape == mean["study"].shape == (24, 16)
    assert np.allclose(np.linalg.norm(mil["study"], axis=1), 1.0, atol=1e-5)
    with pytest.raises(CheckpointError, match="MIL pooling needs a study model"):
        embed_store(encoder_file, toy_store, tmp_path / "x", pool="mil")


def test_tsne_map_keeps_clusters_apart_and_draws(toy_store, encoder_file, tmp_path):
    rng = np.random.default_rng(0)
    centres = np.eye(8)[[0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]]
    points = tsne_2d(centres + 0.05 * rng.normal(size=centres.shape))
    a, b = points[:6], points[6:]
    within = max(np.ptp(a, axis=0).max(), np.ptp(b, axis=0).max())
    assert np.linalg.norm(a.mean(0) - b.mean(0)) > within  # the two groups do not mix
    res = embed_store(encoder_file, toy_store, tmp_path, colour_by="site", picture_map="tsne")
    assert res.picture == tmp_path / "embeddings_tsne.png" and res.picture.stat().st_size > 1000
