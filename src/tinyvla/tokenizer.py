"""Instruction tokenizer: a Hugging Face `tokenizers` word-level model, trained offline on the
task's instructions and saved as `tokenizer.json` beside the weights."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable, Sequence

import torch
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from tokenizers.trainers import WordLevelTrainer

from tinyvla.errors import DataError

PAD, UNK = "[PAD]", "[UNK]"


class InstructionTokenizer:
    """Text -> (ids, mask) padded to the longest instruction in the batch (at most `context_length`).

    Instructions longer than the context are truncated with a warning (the end of a long instruction
    is usually filler; an error would make a long paraphrase unusable at deployment time)."""

    def __init__(self, tokenizer: Tokenizer, context_length: int):
        self.tok = tokenizer
        self.context_length = context_length
        padding = tokenizer.padding  # set for a pretrained model's tokenizer (see from_pretrained_dir)
        self.pad_id = padding["pad_id"] if padding else tokenizer.token_to_id(PAD)
        if self.pad_id is None:
            raise DataError("tokenizer has no [PAD] token")

    @classmethod
    def train(cls, texts: Iterable[str], context_length: int) -> "InstructionTokenizer":
        tok = Tokenizer(WordLevel(unk_token=UNK))
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.train_from_iterator(list(texts), WordLevelTrainer(special_tokens=[PAD, UNK], min_frequency=1))
        return cls(tok, context_length)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def save(self, path: str | Path) -> None:
        self.tok.save(str(path))

    @classmethod
    def load(cls, path: str | Path, context_length: int) -> "InstructionTokenizer":
        return cls(Tokenizer.from_file(str(path)), context_length)

    @classmethod
    def from_pretrained_dir(cls, directory: str | Path, context_length: int) -> "InstructionTokenizer":
        """A pretrained LM's own `tokenizer.json`, with a padding token chosen from its vocabulary."""
        tok = Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
        if tok.padding:  # pad to the longest in the batch, not to a fixed length (BERT's files say 128)
            tok.enable_padding(pad_id=tok.padding["pad_id"], pad_token=tok.padding["pad_token"])
        else:
            for candidate in ("<|endoftext|>", "<pad>", "[PAD]", "<|padding|>", "</s>", "<eos>"):
                pad_id = tok.token_to_id(candidate)
                if pad_id is not None:
                    tok.enable_padding(pad_id=pad_id, pad_token=candidate)
                    break
            else:
                raise DataError(f"the tokenizer in {str(directory)!r} has no padding/end-of-text token")
        tok.no_truncation()
        return cls(tok, context_length)

    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ids (b, l) int64, mask (b, l) bool."""
        if isinstance(texts, str):
            texts = [texts]
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise DataError(f"empty or non-string instruction: {t!r}")
        encodings = self.tok.encode_batch(list(texts))
        too_long = [len(e.ids) for e in encodings if len(e.ids) > self.context_length]
        if too_long:
            warnings.warn(
                f"{len(too_long)} instruction(s) longer than the context ({max(too_long)} > "
                f"{self.context_length} tokens) were truncated",
                stacklevel=2,
            )
        length = min(max(len(e.ids) for e in encodings), self.context_length)
        ids = torch.full((len(encodings), length), self.pad_id, dtype=torch.long)
        for i, e in enumerate(encodings):
            row = e.ids[:length]
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids, ids != self.pad_id
