"""Train a WordPiece (BERT) tokenizer on a report corpus.

The output folder loads with ``transformers.BertTokenizerFast.from_pretrained(out_dir)`` and its
``tokenizer.json`` with ``tokenizers.Tokenizer.from_file``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from cmrclip.config import StrictModel
from cmrclip.errors import DataError, ReportError
from cmrclip.progress import ProgressFn, null_progress
from cmrclip.text.normalize import decode_report, normalize_text

__all__ = ["SPECIAL_TOKENS", "TokenizerConfig", "TokenizerInfo", "iter_corpus", "train_tokenizer"]

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class TokenizerConfig(StrictModel):
    """Settings of ``cmrclip tokenizer train`` (defaults in ``cmrclip/configs/tokenizer.yaml``)."""

    vocab_size: int = Field(default=30522, ge=100)
    min_frequency: int = Field(default=2, ge=1)
    lowercase: bool = True
    max_length: int = Field(default=512, ge=8)


@dataclass(frozen=True)
class TokenizerInfo:
    """What was trained: the output folder, vocabulary size reached and the number of documents read."""

    out_dir: Path
    vocab_size: int
    documents: int


def _jsonl_texts(path: Path) -> Iterator[str]:
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(decode_report(raw).text)
        except json.JSONDecodeError:
            logger.warning("%s:%d is not JSON; skipped", path, lineno)
            continue
        text = record.get("text") if isinstance(record, dict) else None
        if isinstance(text, str) and text.strip():
            yield text


def iter_corpus(paths: Iterable[Path]) -> Iterator[str]:
    """Yield normalised documents: each line's ``text`` of ``.jsonl`` files, each whole ``.txt`` file otherwise.

    Raises:
        ReportError: if a path does not exist.
    """
    for path in map(Path, paths):
        if not path.exists():
            raise ReportError(f"corpus path {path} does not exist; pass .txt/.jsonl files or folders of them")
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.suffix == ".jsonl":
                yield from (normalize_text(t) for t in _jsonl_texts(file))
            elif file.suffix == ".txt":
                yield normalize_text(decode_report(file.read_bytes()).text)


def _write_config(out_dir: Path, lowercase: bool, max_length: int) -> None:
    config = {
        "tokenizer_class": "BertTokenizerFast",
        "do_lower_case": lowercase,
        "model_max_length": max_length,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    special = {k: v for k, v in config.items() if k.endswith("_token")}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")


def train_tokenizer(
    corpus_paths: Iterable[Path],
    out_dir: Path,
    vocab_size: int = 30522,
    min_frequency: int = 2,
    lowercase: bool = True,
    max_length: int = 512,
    progress: ProgressFn = null_progress,
) -> TokenizerInfo:
    """Train a BERT WordPiece tokenizer on the reports in ``corpus_paths`` and save it in ``out_dir``.

    Args:
        corpus_paths: ``.jsonl`` files (a ``text`` field per line), ``.txt`` files, or folders of them.
        out_dir: written with ``tokenizer.json``, ``vocab.txt``, ``tokenizer_config.json``,
            ``special_tokens_map.json``.
        vocab_size: target vocabulary size (a small corpus may give fewer).
        min_frequency: minimum count of a merged piece.
        lowercase: lower-case and strip accents (an uncased tokenizer, as PubMedBERT's).
        max_length: ``model_max_length`` recorded for ``transformers``.
        progress: called as ``progress("tokenizer", documents_read, 0)``.

    Raises:
        ReportError: if a corpus path does not exist.
        DataError: if the corpus holds no text.
    """
    from tokenizers import BertWordPieceTokenizer
    from tokenizers.processors import BertProcessing

    paths = [Path(p) for p in corpus_paths]
    documents = 0

    def counted() -> Iterator[str]:
        nonlocal documents
        for text in iter_corpus(paths):
            documents += 1
            if documents % 1000 == 0:
                progress("tokenizer", documents, 0)
            yield text

    tokenizer = BertWordPieceTokenizer(lowercase=lowercase, strip_accents=lowercase, clean_text=True)
    tokenizer.train_from_iterator(
        counted(),
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    if documents == 0:
        raise DataError(f"no report text found in {[str(p) for p in paths]}; check the files' 'text' fields")
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = BertProcessing(("[SEP]", sep_id), ("[CLS]", cls_id))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    tokenizer.save_model(str(out_dir))
    _write_config(out_dir, lowercase, max_length)
    logger.info("trained a %d-token vocabulary on %d documents -> %s", tokenizer.get_vocab_size(), documents, out_dir)
    return TokenizerInfo(out_dir=out_dir, vocab_size=tokenizer.get_vocab_size(), documents=documents)
