"""Model-free weak supervision: the episode title, and inverse-cloze (ICT) sentences, as queries.

Title -> rest of the text is the classic title/body pseudo pair; ICT (Lee et al., 2019) takes a sentence out of a
passage and asks the encoder to find the passage it came from. Both queries are cut out of the episode text, so each
candidate carries a `passage`: the episode text with that query's source removed. Without it the positive would
contain the query verbatim and the encoder would learn string matching instead of topic matching.
"""
from __future__ import annotations

import random
import re

import pandas as pd

from podsearch.querygen.base import Candidate, Progress, QueryGenerator

TITLE = "pseudo-title"
ICT = "pseudo-ict"
# Fallback when the description has too few sentences: listeners do search "<show> <episode topic>".
SHOW_TITLE = "pseudo-show-title"

# A sentence ends at . ! ? or … followed by whitespace; abbreviations split wrongly, which only costs a weak query.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_SPACES = re.compile(r"\s+")
# Removing a sentence from "a. b. c." leaves "a. . c."; the stray stop goes too.
_DOUBLE_STOP = re.compile(r"([.!?…])(?:\s*\.)+")
MIN_SENTENCE_WORDS = 3


def split_sentences(description: str) -> list[str]:
    """Sentences long enough to stand as a query (>= MIN_SENTENCE_WORDS words), in order."""
    parts = (s.strip() for s in _SENTENCE_END.split(description))
    return [s for s in parts if len(s.split()) >= MIN_SENTENCE_WORDS]


def remove_span(text: str, span: str) -> str:
    """`text` without the first occurrence of `span`, tidied; unchanged when `span` is not in it."""
    cut = _SPACES.sub(" ", text.replace(span, " ", 1))
    return _DOUBLE_STOP.sub(r"\1", cut).lstrip(" .").rstrip()


def crop(sentence: str, max_words: int, rng: random.Random) -> str:
    """A random window of `max_words` words from a sentence that is longer: a long ICT sentence still yields a
    query of a length a person would type, instead of being rejected as too long."""
    words = sentence.split()
    if len(words) <= max_words:
        return sentence
    start = rng.randrange(len(words) - max_words + 1)
    return " ".join(words[start:start + max_words])


class PseudoGenerator(QueryGenerator):
    """Candidates in preference order: title, every ICT sentence (shuffled), show title + title.

    The filter keeps the first `queries_per_episode` valid ones, so the usual result is title + 2 ICT sentences and
    the later candidates are the fallbacks for short descriptions or rejected titles.
    """

    name = "pseudo"

    def __init__(self, max_query_words: int):
        self.max_query_words = max_query_words

    def generate(self, episodes: pd.DataFrame, seed: int, progress: Progress) -> list[list[Candidate]]:
        rng = random.Random(seed)
        out = [
            self._episode(row.text, row.title, row.description, row.show_title, rng)
            for row in episodes.itertuples(index=False)
        ]
        progress(len(episodes))
        return out

    def _episode(self, text: str, title: str, description: str, show_title: str, rng: random.Random) -> list[Candidate]:
        without_title = remove_span(text, title)
        candidates = [Candidate(title, TITLE, without_title)]
        sentences = split_sentences(description)
        rng.shuffle(sentences)
        candidates += [
            Candidate(crop(s, self.max_query_words, rng), ICT, remove_span(text, s)) for s in sentences
        ]
        if show_title:
            candidates.append(Candidate(f"{show_title} {title}", SHOW_TITLE, without_title))
        return candidates
