from __future__ import annotations

import numpy as np
import pytest

from cmrclip.conditions import condition_keys
from cmrclip.errors import CheckpointError
from cmrclip.ingest.store import StudyStore
from cmrclip.train.zeroshot import ZeroshotConfig, run_zeroshot


@pytest.mark.slow
def test_run_zeroshot_scores_every_study_with_a_random_baseline(clip_file, tmp_path):
    paths = {"store_root": str(clip_file / "store"), "clip_path": str(clip_file / "clip.pt"), "out_dir": str(tmp_path)}
    cfg = ZeroshotConfig(**paths, bags={"views": ["4CH"]}, ks=(1, 12), split="all")
    result = run_zeroshot(cfg)
    for table in (result.predictions, result.random_predictions):
        assert len(table) == 12
        assert table[[f"{k}_score" for k in condition_keys()]].stack().between(0, 1).all()
        assert table["lvef_pred"].between(10, 80).all()
    assert result.n_reports == 12
    assert result.retrieval["video_to_text_r@12"] == 1.0 and 0 <= result.retrieval["text_to_video_r@1"] <= 1
    assert not np.allclose(result.predictions["lvef_pred"], result.random_predictions["lvef_pred"])
    assert (tmp_path / "predictions_zeroshot.csv").is_file()
    test_only = run_zeroshot(cfg.model_copy(update={"split": "test"}))  # the default: the store's test split
    manifest = StudyStore(clip_file / "store").manifest()
    assert set(test_only.predictions["study_key"]) == set(manifest.loc[manifest["split"] == "test", "study_key"])
    assert ZeroshotConfig().split == "test"
    with pytest.raises(CheckpointError, match="no CLIP checkpoint"):
        run_zeroshot(cfg.model_copy(update={"clip_path": str(tmp_path / "missing.pt")}))
