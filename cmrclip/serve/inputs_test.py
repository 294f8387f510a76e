import dataclasses

import pytest
import torch

from cmrclip.data.bags import StudyBagDataset, collate_bags
from cmrclip.errors import DataError
from cmrclip.ingest.store import StudyRecord, StudyStore
from cmrclip.models.recipe import clip_transform
from cmrclip.serve.inputs import geometry_warnings, open_source


def test_predict_sees_what_finetuning_sees(tiny_model, phantom_store):
    """LVEF from `predict` on store entries equals the study model's output on fine-tuning's own batches."""
    manifest = phantom_store.manifest()
    recipe = tiny_model.parts.recipe
    dataset = StudyBagDataset(phantom_store, manifest, [], ["lvef"], recipe.bags, clip_transform(recipe))
    for i, key in enumerate(dataset.study_keys):
        batch = collate_bags([dataset[i]])
        with torch.no_grad():
            expected = tiny_model.network(clip_mask=batch["clip_mask"], clips=batch["clips"]).lvef.item()
        pred = tiny_model.predict(f"{phantom_store.root}#{key}")
        assert pred.lvef.value == pytest.approx(expected, abs=1e-4)
        assert [c["view"] for c in pred.clips] == batch["views"][0]


def test_unusual_geometry_is_reported(tmp_path, make_phantom_view):
    store = StudyStore.create(tmp_path / "store")
    odd = dataclasses.replace(
        make_phantom_view(3, n_frames=6, size=40), pixel_spacing_mm=(5.0, 5.0), slice_thickness_mm=30.0
    )
    store.write_study(StudyRecord("0" * 16, "1" * 16, "x", {"SAX": odd}))
    with store.open("0" * 16) as study:
        warnings = geometry_warnings(study)
    assert any("pixel spacing 5.00 mm" in w for w in warnings)
    assert any("slice thickness 30.0 mm" in w for w in warnings)
    assert any("6 frames per cycle" in w for w in warnings)
    assert any("small matrix 40x40" in w for w in warnings)
    assert any("SAX: 3 slices" in w for w in warnings)


def test_missing_sources_are_clear(phantom_store, tmp_path):
    with pytest.raises(DataError, match="does not exist"), open_source(tmp_path / "nothing"):
        pass
    with pytest.raises(DataError, match="not in its store"), open_source(f"{phantom_store.root}#ffffffffffffffff"):
        pass
