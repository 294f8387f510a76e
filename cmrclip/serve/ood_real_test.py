"""The OOD guard of a model trained on the analytic synthetic cohort, on real, noise and non-cardiac studies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cmrclip.data.bags import ClipRef
from cmrclip.ingest.pipeline import IngestConfig, ingest
from cmrclip.models.convert import save_video_encoder
from cmrclip.models.registry import build_video_encoder
from cmrclip.serve.inputs import Study
from cmrclip.serve.predict import load_model
from cmrclip.synth import generate_cohort
from cmrclip.train.finetune import FinetuneConfig, run_finetune


@pytest.fixture(scope="module")
def analytic_model(tmp_path_factory):
    """A linear probe on a random tiny encoder, trained on 32 analytic synthetic studies (ingested as predict does)."""
    root = tmp_path_factory.mktemp("ood_real")
    generate_cohort(root / "cohort", n_studies=32, seed=5, matrix=64, phases=8)
    ingest([root / "cohort" / "dicom"], root / "store", IngestConfig(salt="ood-test", workers=2),
           labels=root / "cohort" / "ground_truth.csv")  # fmt: skip
    save_video_encoder(build_video_encoder("tiny", seed=0), root / "encoder.pt")
    cfg = FinetuneConfig(
        store_root=str(root / "store"), out_dir=str(root / "run"), encoder_path=str(root / "encoder.pt"), mode="linear",
        targets=["Hypertrophic.Cardiomyopathy"], epochs=3, val_share=0.3, test_share=0.3,
    )  # fmt: skip
    result = run_finetune(cfg)
    return load_model(result.bundle, salt="ood-test"), root


def _study(clips: torch.Tensor) -> Study:
    refs = [ClipRef("SAX", i) for i in range(len(clips))]
    return Study("x" * 16, clips, [], refs, ["SAX"])


@pytest.mark.slow
def test_analytic_model_warns_on_real_noise_and_non_cardiac_but_rarely_in_distribution(analytic_model, shared_data):
    model, root = analytic_model
    for tar in sorted((shared_data / "sunnybrook" / "dicom_tar_xz").glob("*.tar.xz")):
        pred = model.predict(tar)
        assert pred.ood_distance > 1 and any(w.startswith("out-of-distribution") for w in pred.warnings), tar.name
    recipe = model.parts.recipe
    shape = (4, 3, recipe.frames, *recipe.size)
    noise = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    still = (torch.sin(xx / 4) * torch.cos(yy / 6)).expand(shape).contiguous()  # a textured still image
    for clips in (noise, still, torch.zeros(shape)):
        assert model.predict(_study(clips)).ood_distance > 1
    table = pd.read_csv(root / "run" / "predictions_test.csv")
    scores = [model.predict(f"{root / 'store'}#{key}").ood_distance for key in table["study_key"]]
    assert len(scores) >= 6 and np.mean(np.array(scores) > 1) <= 0.1
