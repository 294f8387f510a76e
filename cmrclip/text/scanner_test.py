from __future__ import annotations

import re

import numpy as np

from cmrclip.text.lexicon import load_lexicon
from cmrclip.text.scanner import PhraseScanner, first_chars


def test_first_chars():
    assert first_chars(r"(?:the )?(?:lv|left)") == frozenset("tl")
    assert first_chars(r"(?<!non)ischemic") == frozenset("i")
    assert first_chars(r"[ab]c|d") == frozenset("abd")
    assert first_chars(r".x") is None
    assert first_chars(r"(?:a)?") is None  # can match empty


def reference(groups, text):
    body = "|".join(f"(?P<{name}>{'|'.join(pats)})" for name, pats in groups)
    return [(m.span(), m.lastgroup) for m in re.finditer(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])", text)]


def test_scanner_equals_one_big_alternation_on_random_text():
    groups = [("a", ["dilated lv", "lv"]), ("b", ["(?:mildly )?dilated(?: left)? ventricle", "dil\\w+"]),
              ("c", [".lv"]), ("d", ["ventricle"])]  # fmt: skip
    scanner = PhraseScanner(groups)
    words = ["dilated", "lv", "mildly", "left", "ventricle", "xlv", "dilatation", "no", "the"]
    rng = np.random.default_rng(0)
    for _ in range(300):
        text = " ".join(rng.choice(words, size=8))
        assert [(m.span(), m.lastgroup) for m in scanner.scan(text)] == reference(groups, text)


def test_lexicon_scanner_matches_reference_on_reports():
    lexicon = load_lexicon()
    text = "the left ventricle is mildly dilated. severe as. no pericardial effusion; pleural effusion. lv mass 90 g"
    keys = [lexicon.entries[int(m.lastgroup[1:])].keys for m in lexicon.scanner.scan(text)]
    assert keys == [
        ("Left.Ventricular.Dilation",),
        ("Severe.Aortic.Stenosis",),
        ("Large.Pericardial.Effusion",),
    ]
