"""Text features: a tokenizer and a vocabulary, fitted on the attacker's population only.

A text dataset's loader returns its documents unfeaturised (``ArrayDataset.X`` is a 1-D object array of
``str`` and ``ArrayDataset.featurizer`` a :class:`TokenFeaturizer`). The vocabulary is *learned*, and a
vocabulary fitted on the training records would leak membership by itself (a word that occurs only in
one member gets its own embedding row, trained on that member alone). So the run fits it after the
membership split, on the ``population`` part only (``ArrayDataset.fitted(rows)``): members and the
audit's non-members are featurised alike, by a vocabulary that saw neither, and a word seen only in
them becomes the unknown token.

Encoding: lowercase; a token is a run of letters or digits (Unicode ``\\w`` without ``_``) of at most
``max_token_len`` characters (longer runs — base64, hashes — are cut to that length's prefix);
a document becomes its first ``max_len`` tokens as ids, padded with ``PAD`` (0); tokens outside the
vocabulary are ``UNK`` (1). The vocabulary keeps the tokens found in at least ``min_df`` population
documents, the ``max_vocab`` most frequent ones (ties broken alphabetically, so fitting is
deterministic). Ids are stored as float32, like every other feature array, and are exact below 2**24.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from ..errors import DataError

PAD, UNK = 0, 1
SPECIALS = ("<pad>", "<unk>")
_TOKEN = re.compile(r"[^\W_]+")
MAX_IDS = 2**24  # float32 holds every integer below this exactly


def tokenize(text: str, max_token_len: int = 30) -> list[str]:
    """Lowercased runs of letters/digits, each cut to ``max_token_len`` characters."""
    return [t[:max_token_len] for t in _TOKEN.findall(text.lower())]


class TokenFeaturizer:
    """Documents -> fixed-length token-id rows. ``fit`` learns the vocabulary; ``transform`` encodes.

    Learned state ends in ``_`` (``vocabulary_``: the tokens in id order, specials first)."""

    def __init__(self, max_len: int = 256, max_vocab: int = 20000, min_df: int = 2, max_token_len: int = 30):
        if max_len < 1 or max_vocab < len(SPECIALS) + 1 or min_df < 1 or max_token_len < 1:
            raise DataError(
                f"text features: max_len={max_len}, max_vocab={max_vocab}, min_df={min_df}, "
                f"max_token_len={max_token_len}; need max_len >= 1, max_vocab >= 3, min_df >= 1, max_token_len >= 1"
            )
        if max_vocab > MAX_IDS:
            raise DataError(f"text features: max_vocab={max_vocab} exceeds {MAX_IDS} (ids are stored as float32)")
        self.max_len, self.max_vocab, self.min_df, self.max_token_len = max_len, max_vocab, min_df, max_token_len

    def fit(self, docs: Iterable[str]) -> "TokenFeaturizer":
        df: Counter[str] = Counter()
        n = 0
        for doc in docs:
            df.update(set(tokenize(doc, self.max_token_len)))
            n += 1
        if n == 0:
            raise DataError(
                "the text vocabulary is fitted on the population part of the split, which is empty; "
                "give data.split.population a count or fraction > 0"
            )
        kept = sorted((t for t, c in df.items() if c >= self.min_df), key=lambda t: (-df[t], t))
        self.vocabulary_ = list(SPECIALS) + kept[: self.max_vocab - len(SPECIALS)]
        self.index_ = {t: i for i, t in enumerate(self.vocabulary_)}
        self.n_docs_ = n
        return self

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary_)

    def state(self) -> dict:
        """What was learned and how (JSON-ready): the settings, the number of documents fitted on and the
        vocabulary in id order. A run folder keeps it (``vocabulary.json``) to check later refits against."""
        if not hasattr(self, "vocabulary_"):
            raise DataError("the text featurizer is not fitted; call ArrayDataset.fitted(population rows) first")
        return {
            "featurizer": "tokens",
            "max_len": self.max_len,
            "max_vocab": self.max_vocab,
            "min_df": self.min_df,
            "max_token_len": self.max_token_len,
            "n_docs": self.n_docs_,
            "vocab_size": self.vocab_size,
            "tokens": list(self.vocabulary_),
        }

    def encode(self, doc: str) -> np.ndarray:
        """One document's ids (int64, length ``max_len``)."""
        ids = np.full(self.max_len, PAD, dtype=np.int64)
        toks = tokenize(doc, self.max_token_len)[: self.max_len]
        ids[: len(toks)] = [self.index_.get(t, UNK) for t in toks]
        return ids

    def transform(self, docs: Sequence[str]) -> np.ndarray:
        """(n, max_len) float32 token ids."""
        if not hasattr(self, "index_"):
            raise DataError("the text featurizer is not fitted; call ArrayDataset.fitted(population rows) first")
        out = np.zeros((len(docs), self.max_len), dtype=np.float32)
        for i, doc in enumerate(docs):
            out[i] = self.encode(doc)
        return out
