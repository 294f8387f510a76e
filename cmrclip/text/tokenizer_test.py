from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmrclip.errors import DataError, ReportError
from cmrclip.text.tokenizer import train_tokenizer

GOLD = Path(__file__).parent / "testdata" / "reports_gold.jsonl"


def test_train_tokenizer_loads_in_tokenizers(tmp_path):
    from tokenizers import Tokenizer

    info = train_tokenizer([GOLD], tmp_path / "tok", vocab_size=400, min_frequency=1)
    assert info.documents == 66
    assert 100 < info.vocab_size <= 400
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        assert (tmp_path / "tok" / name).is_file()
    tok = Tokenizer.from_file(str(tmp_path / "tok" / "tokenizer.json"))
    ids = tok.encode("Severe aortic stenosis, LVEF 55%.").ids
    assert ids[0] == tok.token_to_id("[CLS]")
    assert ids[-1] == tok.token_to_id("[SEP]")
    assert tok.token_to_id("[UNK]") not in ids[1:-1]


@pytest.mark.slow
def test_output_loads_with_transformers(tmp_path):
    from transformers import BertTokenizerFast

    txt = tmp_path / "extra.txt"
    txt.write_text("Lipomatous hypertrophy of the interatrial septum.", encoding="utf-8")
    train_tokenizer([GOLD, txt], tmp_path / "tok", vocab_size=500, min_frequency=1)
    tok = BertTokenizerFast.from_pretrained(tmp_path / "tok")
    enc = tok(["Dilated LV", "Normal study"], padding=True, truncation=True, max_length=16)
    assert tok.model_max_length == 512
    assert tok.convert_ids_to_tokens(enc["input_ids"][0])[:3] == ["[CLS]", "dilated", "lv"]


def test_bad_corpus(tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        train_tokenizer([tmp_path / "missing.jsonl"], tmp_path / "tok")
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"id": 1, "text": ""}) + "\nnot json\n", encoding="utf-8")
    with pytest.raises(DataError, match="no report text"):
        train_tokenizer([empty], tmp_path / "tok")
