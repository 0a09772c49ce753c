"""Keyword queries: the 1-3-word phrases that best represent an episode, the way people type into a search box.

KeyBERT's recipe (Grootendorst, 2020) with the pieces this pipeline already has: candidate n-grams from the episode's
title and description, ranked by cosine similarity to the episode's own vector (the embed_base stage's output, so
nothing is encoded twice), then picked with maximal marginal relevance so that the second keyword says something the
first did not. To keep the encoding cheap, only the `candidates` phrases with the highest tf x idf per episode are
encoded (each one costs a forward pass of the model: docs/querygen.md#generators).
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd

from podsearch.querygen.base import Candidate, Progress, QueryGenerator
from podsearch.querygen.filters import STOPWORD_SET, DocumentFrequencies, without_furniture, words

KEYWORD = "keyword"
# Stopwords a key phrase may hold between two content words ("book of genesis", "rock and roll"); any other
# stopword makes a fragment ("none that does", "inequality is coded"), not a phrase.
CONNECTORS = frozenset({"of", "and", "for", "in", "on", "de", "del", "la", "le", "el", "van", "und", "der", "y", "et",
                        "di", "e"})
# Phrases never cross punctuation: "... in Melbourne. Smith scored" must not yield "melbourne smith".
_SEGMENT = re.compile(r"[.,;:!?()\[\]{}|\"“”„«»…–—/\\]+|\s-\s")


def segments(text: str) -> list[str]:
    """The pieces of `text` a key phrase may come from: phrases never cross punctuation or a cut."""
    return _SEGMENT.split(text)


def candidate_phrases(text: str, max_words: int) -> Counter[str]:
    """n-grams (1..max_words words) of `text` (as `filters.without_furniture` returns it) whose words are alphabetic
    and at least 3 letters (no numbers, no "th" of "18th"), that start and end with a content word and hold no
    stopword but a connector inside, with their counts."""
    phrases: Counter[str] = Counter()
    for segment in segments(text):
        tokens = words(segment)
        for n in range(1, max_words + 1):
            for start in range(len(tokens) - n + 1):
                gram = tokens[start:start + n]
                if gram[0] in STOPWORD_SET or gram[-1] in STOPWORD_SET:
                    continue
                if any(t in STOPWORD_SET and t not in CONNECTORS for t in gram[1:-1]):
                    continue
                if any(not t.isalpha() or (len(t) < 3 and t not in CONNECTORS) for t in gram):
                    continue
                phrases[" ".join(gram)] += 1
    return phrases


def maximal_marginal_relevance(doc: np.ndarray, phrases: np.ndarray, n: int, diversity: float) -> list[int]:
    """Indices of n phrases: each next one maximises (1 - diversity) * sim(doc) - diversity * max sim(chosen).
    Rows are unit vectors, so dot products are cosines."""
    to_doc = phrases @ doc
    chosen = [int(np.argmax(to_doc))]
    between = phrases @ phrases.T
    while len(chosen) < min(n, len(phrases)):
        redundancy = between[:, chosen].max(axis=1)
        score = (1 - diversity) * to_doc - diversity * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen


class KeywordGenerator(QueryGenerator):
    """The shortlist in MMR order; the filter keeps the first ones that pass (as many as the mix asks for)."""

    name = KEYWORD

    def __init__(self, encoder_spec: str, episode_vectors: dict[str, np.ndarray], frequencies: DocumentFrequencies,
                 *, max_words: int = 3, candidates: int = 12, diversity: float = 0.5,
                 batch_size: int = 256):
        self.encoder_spec = encoder_spec
        self.episode_vectors = episode_vectors
        self.frequencies = frequencies
        self.max_words, self.candidates = max_words, candidates
        self.diversity, self.batch_size = diversity, batch_size
        self.encoder = None

    def load(self) -> None:
        from podsearch.encoders import load_encoder

        self.encoder = load_encoder("base", self.encoder_spec)

    def shortlist(self, title: str, description: str) -> list[str]:
        """The `candidates` phrases with the highest tf x mean idf, from the title and description without their
        sponsor, image and author credits. Phrases that name the show are not left out here but by the filter, which
        counts them (stats/querygen.json `rejected`)."""
        scored = []
        for phrase, count in candidate_phrases(without_furniture(title, description), self.max_words).items():
            tokens = phrase.split()
            scored.append((-count * sum(self.frequencies.idf(t) for t in tokens) / len(tokens), phrase))
        return [phrase for _, phrase in sorted(scored)[: self.candidates]]

    def generate(self, episodes: pd.DataFrame, seed: int, progress: Progress) -> list[list[Candidate]]:
        shortlists = [self.shortlist(r.title, r.description) for r in episodes.itertuples(index=False)]
        unique = sorted({p for shortlist in shortlists for p in shortlist})
        vectors = {}
        if unique:
            encoded = self.encoder.encode(unique, batch_size=self.batch_size, normalize_embeddings=True,
                                          show_progress_bar=False)
            vectors = dict(zip(unique, np.asarray(encoded, dtype=np.float32)))
        out = []
        for row, shortlist in zip(episodes.itertuples(index=False), shortlists):
            if not shortlist:
                out.append([])
                continue
            doc = self.episode_vectors[row.episode_id]
            matrix = np.stack([vectors[p] for p in shortlist])
            # The whole shortlist in MMR order: the filter keeps the first that pass its rules.
            picked = maximal_marginal_relevance(doc, matrix, len(shortlist), self.diversity)
            out.append([Candidate(shortlist[i], KEYWORD) for i in picked])
        progress(len(episodes))
        return out
