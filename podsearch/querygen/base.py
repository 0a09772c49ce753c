"""The interface every query generator implements, and the filter that rejects degenerate queries.

A generator proposes candidates per episode; the filter decides which become pairs. Keeping the two apart means every
generator is judged by the same rules and their rejection counts are comparable in stats/querygen.json.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from podsearch.querygen.filters import REASONS, DocumentFrequencies, reject_reason

# Columns a generator may read; prepare's table has them all, tests may build frames with just these.
EPISODE_COLUMNS = ("episode_id", "text", "title", "description", "show_id", "show_title", "show_description")
KEPT = "kept"
REJECT_REASONS = ("empty", "too_long", *REASONS, "copies_description", "duplicate")
# Valid candidates beyond queries_per_episode: not degenerate, just not needed, so counted apart.
SURPLUS = "surplus"

_NON_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Candidate:
    """One proposed query for an episode.

    `passage` is the episode text the query should retrieve when that differs from the episode's `text`: pseudo
    queries cut out of the text (a title, an inverse-cloze sentence) leave it out, so training does not reward
    matching the query's own words verbatim. None means "use the episode text".
    """

    query: str
    generator: str
    passage: str | None = None


Progress = Callable[[int], None]


class QueryGenerator(ABC):
    """Proposes query candidates for a batch of episodes. Models load lazily so a fully resumed run loads none."""

    name: str

    def load(self) -> None:
        """Load weights; called once before the first shard that needs generating."""

    @abstractmethod
    def generate(self, episodes: pd.DataFrame, seed: int, progress: Progress) -> list[list[Candidate]]:
        """Candidates for each row of `episodes`, in row order; `progress(n)` after every n episodes done.

        `seed` is per shard: the same shard with the same seed must give the same candidates.
        """


def normalise(text: str) -> str:
    """Lower-case words joined by single spaces: how queries are compared, so case/punctuation do not hide copies."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def judge(
    candidates: list[Candidate],
    description: str,
    *,
    max_words: int,
    copy_min_words: int,
    limit: int,
    show_title: str = "",
    show_id: str | None = None,
    title: str | None = None,
    frequencies: DocumentFrequencies | None = None,
    min_content: float = 0.0,
) -> list[str]:
    """A status per candidate: `kept`, a reason from REJECT_REASONS, or `surplus` once `limit` are kept.

    Candidates arrive tidied (`filters.tidy`). After the length checks come the rules of `filters.reject_reason`
    (boilerplate, dates, numbering, the show's name or the words its feed -- or the program its `title` names --
    repeats, too little topic content). A copy is a query of at least `copy_min_words` words found verbatim (after
    normalising) in the text it should retrieve, or a query equal to it: shorter queries are keywords, which are
    meant to appear in the text. The reference is the candidate's `passage` when set (an inverse-cloze sentence is
    by construction in the description, not in its passage), else the episode description.
    """
    statuses: list[str] = []
    seen: set[str] = set()
    recurring = frequencies.recurring(show_id, title) if frequencies is not None else frozenset()
    kept = 0
    for cand in candidates:
        norm = normalise(cand.query)
        words = norm.split()
        if not words:
            status = "empty"
        elif len(cand.query.split()) > max_words:
            status = "too_long"
        elif reason := reject_reason(cand.query, show_title, frequencies, min_content, recurring):
            status = reason
        # The reference (a whole passage) is normalised only here, for candidates no earlier rule rejected:
        # normalising every candidate's passage was a large share of pseudo generation (docs/scale.md).
        elif norm == (reference := normalise(cand.passage if cand.passage is not None else description)) or (
                len(words) >= copy_min_words and f" {norm} " in f" {reference} "):
            status = "copies_description"
        elif norm in seen:
            status = "duplicate"
        elif kept >= limit:
            status = SURPLUS
        else:
            status = KEPT
            kept += 1
        seen.add(norm)
        statuses.append(status)
    return statuses


def reason_counts(statuses: pd.Series) -> dict[str, int]:
    """Rejections by reason, every reason present (0 when unseen) so metrics keep a stable shape."""
    counts = Counter(statuses)
    return {reason: int(counts.get(reason, 0)) for reason in REJECT_REASONS}
