"""What makes a synthetic query unlike anything a listener would type, as rules with a name each.

Read as queries, episode titles and description sentences are full of feed furniture: "(emails sent to this address
will get no direct response)", "5P FRI ON THE GO 12_22_17", "Ep 17 - Bricks & Burglaries". A model trained to find an
episode from those learns show names and numbering, not topics. `tidy` strips the numbering a title carries around
its topic ("Ep 17 - Bricks & Burglaries" -> "Bricks & Burglaries"); `reject_reason` names what is still wrong with a
query, and the filter in base.py counts every rejection by that name in the querygen stats.
"""
from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from podsearch.retrieval.bm25 import STOPWORDS

REASONS = ("boilerplate", "date", "episode_number", "show_name", "low_content")

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# bm25s's English list lacks words like "from", "about", "what"; scikit-learn's (installed with
# sentence-transformers) has them.
STOPWORD_SET = frozenset(STOPWORDS) | ENGLISH_STOP_WORDS
URL_OR_EMAIL = re.compile(
    r"(?:https?://|www\.)\S+|\S+@\S+\.\w+|\b[\w-]+\.(?:com|org|net|co|fm|io|ly|gl|me|tv)\b(?:/\S*)?", re.I)
# Calls to action, contact lines, sponsor reads and feed notices, in the languages of the sample.
_BOILERPLATE = re.compile(
    r"\b(?:subscribe|subscribing|unsubscribe|itunes|apple podcasts|stitcher|spotify|soundcloud|patreon|"
    r"rate (?:and|&) review|leave (?:us )?a review|review us|follow (?:us|me)|like us|twitter|facebook|instagram|"
    r"youtube|email us|e-mail|emails? sent|contact us|call (?:us|in)|sponsored by|brought to you by|promo code|"
    r"coupon code|discount code|use code|support (?:the|this) (?:show|podcast)|donate|download (?:the|our)|"
    r"listen (?:live|on|at)|visit (?:us|our)|check out (?:our|my)|click here|all rights reserved|copyright|"
    r"abonnieren|abonniert|suscr[ií]bete|abonnez|abonneer)\b", re.I)
_MONTH = (r"(?:jan(?:uary|uar)?|feb(?:ruary|ruar)?|mar(?:ch)?|märz|apr(?:il)?|may|mai|jun(?:e|i)?|jul(?:y|i)?|"
          r"aug(?:ust)?|sep(?:t|tember)?|oct(?:ober)?|okt(?:ober)?|nov(?:ember)?|dec(?:ember)?|dez(?:ember)?)")
_DATE = re.compile(
    r"\b\d{1,4}[-/._]\d{1,2}[-/._]\d{2,4}\b"                      # 12/22/17, 2017-12-01, 12_22_17, 14.12.2017
    rf"|\b{_MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?(?:,? \d{{4}})?\b"   # December 21, Dec 21st 2017
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\.? {_MONTH}\b",                 # 21 December, 14th Dec, 3. Dezember
    re.I)
_NUMBERING = re.compile(
    r"\b(?:episode|episodes|ep|eps|epi|folge|aflevering|episodio|épisode|part|pt|teil|deel|parte|hour|hr|"
    r"segment|show|chapter|vol|volume|session|week|day|tag|no|nr|number)\.?\s*#?\d+\b"
    r"|#\d+|\b\d+\s*(?:of|/)\s*\d+\b",
    re.I)
# Numbering around a title's topic: "Ep 17 - ", "478: ", "#99 ", "005 - ", " | Part 2", " (Part 2)", " [Episode 43]".
_LEADING = re.compile(
    r"^\s*(?:(?:(?:episode|ep|eps|folge|aflevering|show|no|nr|part|pt|chapter|session|day)\.?\s*|#)\d+[a-z]?"
    r"\s*[:|\-–—.)\]]*\s*|\d+[a-z]?\s*[:|\-–—.)\]]+\s*)", re.I)
_TRAILING = re.compile(
    r"\s*(?:[|\-–—:,(\[]\s*)?(?:episode|ep|folge|part|pt|teil|deel|hour|hr|segment|show|no|nr)\.?\s*#?\d+[a-z]?"
    r"\s*[)\]]?\s*$|\s*[|(\[]\s*#?\d+\s*[)\]]?\s*$|\s+#\d+\s*$", re.I)

def words(text: str) -> list[str]:
    """Lower-case word tokens, as the filters and the keyword generator see text."""
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORD_SET and not w.isdigit()]


# "<show> Episode 12: <topic>", "YT#05: <topic>": everything up to numbering followed by a separator goes.
_UP_TO_NUMBERING = re.compile(
    r"^.*?(?:\b(?:episode|ep|folge|aflevering|episodio|part|pt|session|chapter)\.?\s*#?\d+[a-z]?|#\d+)"
    r"\s*[:|\-–—]\s*(?=\S+\s+\S)", re.I)  # only when at least two words of topic follow
_DIGIT = re.compile(r"\d")
_EDGE_DATE = re.compile(rf"^\s*(?:{_DATE.pattern})\s*[:|\-–—]\s*|\s*(?:[:|\-–—]\s*|\()(?:{_DATE.pattern})\)?\s*$", re.I)


def tidy(query: str) -> str:
    """The query without episode numbering or a date before or after its topic (applied before any rule is
    checked): "Angry Gallo Season 2, Episode 11: Minced Beef Thick Soup" -> "Minced Beef Thick Soup"."""
    if not _DIGIT.search(query):
        # Every pattern below needs a digit, so without one only the strip applies (and it is idempotent). Most
        # candidates have none; this skips 8 regex passes each (tidy was 15% of pseudo generation on 50k episodes).
        return query.strip(" -–—:|,.")
    previous = None
    while previous != query:
        previous = query
        query = _EDGE_DATE.sub("", _UP_TO_NUMBERING.sub("", query))
        query = _TRAILING.sub("", _LEADING.sub("", query)).strip(" -–—:|,.")
    return query


class DocumentFrequencies:
    """Inverse document frequency of content words over the episode texts: how much a word says about a topic."""

    def __init__(self, texts: Iterable[str]):
        counts: Counter[str] = Counter()
        n = 0
        for text in texts:
            counts.update(set(content_words(text)))
            n += 1
        self.n = max(n, 1)
        self._df = counts

    def idf(self, word: str) -> float:
        return math.log((1 + self.n) / (1 + self._df.get(word, 0)))

    def content_score(self, query: str) -> float:
        """Sum of the IDF of the query's distinct content words (stopwords and numbers count 0)."""
        return self.score_words(set(content_words(query)))

    def score_words(self, distinct_content_words: set[str]) -> float:
        return sum(self.idf(w) for w in distinct_content_words)


def reject_reason(query: str, show_title: str, frequencies: DocumentFrequencies | None, min_content: float
                  ) -> str | None:
    """The first rule the (tidied) query breaks, or None."""
    if URL_OR_EMAIL.search(query) or _BOILERPLATE.search(query):
        return "boilerplate"
    if _DATE.search(query):
        return "date"
    if _NUMBERING.search(query):
        return "episode_number"
    topic = set(content_words(query))
    if topic and topic <= _show_words(show_title):
        return "show_name"
    if frequencies is not None and frequencies.score_words(topic) < min_content:
        return "low_content"
    return None


@functools.lru_cache(maxsize=4096)
def _show_words(show_title: str) -> frozenset[str]:
    """The show title's content words, computed once for all the candidates of an episode (4 on average)."""
    return frozenset(content_words(show_title))
