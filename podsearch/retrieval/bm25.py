"""BM25 lexical retrieval (bm25s), the classic baseline the dense models must beat."""
from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np
from bm25s import stopwords as _sw

from podsearch.artifacts import damaged, reading, writing
from podsearch.retrieval.ranking import id_ranks, top_k

# The corpus is multilingual, so English-only stopwords would leave German/Spanish/... function words dominating
# scores for those shows. A union of the sample's languages is a cheap fix; collisions (a stopword in one language
# being a content word in another) are rare and short.
STOPWORDS = sorted(
    set(_sw.STOPWORDS_EN) | set(_sw.STOPWORDS_GERMAN) | set(_sw.STOPWORDS_SPANISH) | set(_sw.STOPWORDS_FRENCH)
    | set(_sw.STOPWORDS_DUTCH) | set(_sw.STOPWORDS_ITALIAN) | set(_sw.STOPWORDS_PORTUGUESE)
    | set(_sw.STOPWORDS_RUSSIAN)
)
_STOPWORD_SET = frozenset(STOPWORDS)
_IDS = "ids.txt"


def _split(texts: list[str]) -> bm25s.tokenization.Tokenized:
    """bm25s's lowercased word tokens, stopwords included (ids numbered in order of first occurrence).

    Stopwords are dropped by the callers: bm25s.tokenize builds a set of its stopword list for every text (1,353
    words here), which made tokenizing most of the index build; the tokens left are the same, and the index builds
    much faster at full size (docs/scale.md#what-was-fixed-to-get-there).
    """
    return bm25s.tokenize(list(texts), stopwords=None, return_ids=True, show_progress=False)


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lowercased word tokens without stopwords; the same function for corpus and queries so vocabularies agree."""
    split = _split(texts)
    words = [None if w in _STOPWORD_SET else w for w in split.vocab]
    return [[w for w in map(words.__getitem__, doc) if w is not None] for doc in split.ids]


def _tokenized_corpus(texts: list[str]) -> bm25s.tokenization.Tokenized:
    """Token ids over a sorted vocabulary: bm25s orders its own vocabulary by a set, i.e. by string hashes that change
    with every interpreter, which would make the saved index differ byte-wise between identical runs."""
    split = _split(texts)
    vocab = {word: i for i, word in enumerate(sorted(w for w in split.vocab if w not in _STOPWORD_SET))}
    new_id = [vocab.get(w) for w in split.vocab]  # bm25s's id -> id in the sorted vocabulary; None for a stopword
    ids = [[i for i in map(new_id.__getitem__, doc) if i is not None] for doc in split.ids]
    return bm25s.tokenization.Tokenized(ids=ids, vocab=vocab)


class BM25Index:
    def __init__(self, ids: list[str], texts: list[str], k1: float = 1.5, b: float = 0.75):
        ids = [str(i) for i in ids]
        if len(ids) != len(texts):
            raise ValueError(f"BM25Index: {len(ids)} ids but {len(texts)} texts")
        if len(set(ids)) != len(ids):
            raise ValueError("BM25Index: duplicate episode ids")
        self.ids = ids
        self.model = bm25s.BM25(k1=k1, b=b)
        if ids:
            self.model.index(_tokenized_corpus(texts), show_progress=False)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Top-k per query by BM25 score, ties by episode id: scores (n, k') and ids, k' = min(k, corpus size).

        Episodes that share no word with the query score 0 and are not returned: their order would be arbitrary,
        not a ranking. So a row can hold fewer than k' ids; its scores are padded with 0.
        """
        queries = [str(q) for q in queries]
        k = min(int(k), len(self.ids))
        scores = np.zeros((len(queries), max(k, 0)), dtype=np.float32)
        ranked: list[list[str]] = []
        for row, all_scores in enumerate(self._scores(queries)):
            if k <= 0 or all_scores is None:
                ranked.append([])
                continue
            # Whole-corpus scores, then a tie-aware top-k: bm25s's own top-k orders equal scores arbitrarily.
            positions = [p for p in top_k(all_scores, k, self.tie_keys) if all_scores[p] > 0]
            scores[row, : len(positions)] = all_scores[positions]
            ranked.append([self.ids[p] for p in positions])
        return scores, ranked

    def score_all(self, queries: list[str]) -> np.ndarray:
        """Every episode's BM25 score for each query (n_queries x n_episodes), 0 where no query word occurs."""
        out = np.zeros((len(queries), len(self.ids)), dtype=np.float32)
        for row, all_scores in enumerate(self._scores([str(q) for q in queries])):
            if all_scores is not None:
                out[row] = all_scores
        return out

    def _scores(self, queries: list[str]):
        """Whole-corpus scores per query; None for a query with no word in the vocabulary."""
        for tokens in tokenize(queries):
            known = self.model.get_tokens_ids(tokens)
            yield self.model.get_scores(known) if known else None

    @property
    def tie_keys(self) -> np.ndarray:
        if getattr(self, "_tie_keys", None) is None:
            self._tie_keys = id_ranks(self.ids)
        return self._tie_keys

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        with writing(folder, folder=True) as tmp:
            self.model.save(str(tmp), show_progress=False)
            (tmp / _IDS).write_text("".join(f"{i}\n" for i in self.ids))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "BM25Index":
        folder = Path(folder)
        if not (folder / _IDS).exists():
            raise ValueError(f"{folder}: no {_IDS}; not a saved BM25 index")
        index = cls.__new__(cls)
        with reading(folder / _IDS):
            index.ids = (folder / _IDS).read_text().splitlines()
        with reading(folder):  # bm25s's arrays, vocabulary and params files
            index.model = bm25s.BM25.load(str(folder), show_progress=False)
        documents = getattr(index.model, "scores", {}).get("num_docs")
        if documents != len(index.ids):
            raise damaged(folder, f"{len(index.ids)} ids in {_IDS} for {documents} documents")
        return index
