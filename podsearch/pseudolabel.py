"""GPL-style pseudo-labels: a zero-shot teacher scores each training query against its positive and against negatives
mined from the teacher's own top candidates, so the fine-tune can be trained to reproduce the teacher's margins
(MarginMSE) or its distribution over candidates (KL divergence) instead of a hard 0/1 label.

The teacher is a fused system of params.yaml's `fusion` section (pseudolabel.teacher names it) built from zero-shot
parts only (base, use, bm25): never the fine-tune it trains. Its score for any (query, episode) is exactly the fused
score search would give, extended to episodes outside a part's top `depth` (which contribute 0 there too), so the
positive and every negative get a score even when a part did not retrieve them.

Reference: Wang et al., "GPL: Generative Pseudo Labeling for Unsupervised Domain Adaptation of Dense Retrieval",
NAACL 2022 (arXiv 2112.07577).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from podsearch.config import from_section
from podsearch.errors import PodsearchError
from podsearch.retrieval.fusion import Fusion

log = logging.getLogger(__name__)

ZERO_SHOT_PARTS = ("base", "use", "bm25")
DENSE_PARTS = ("base", "use")


class PseudoLabelError(PodsearchError, ValueError):
    """A teacher or input the pseudo-labelling cannot use; the stage prints it as one line."""


@dataclass(frozen=True)
class PseudoLabelConfig:
    """params.yaml `pseudolabel`."""

    teacher: str = "teacher"      # a fused system of params.yaml `fusion`, from zero-shot parts only
    negatives: int = 4            # mined negatives per query
    mine_depth: int = 10          # negatives are drawn from the teacher's top `mine_depth` train episodes
    seed: int = 42
    batch_size: int = 512         # queries scored against the corpus at once (memory: batch x episodes floats)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "PseudoLabelConfig":
        config = from_section(cls, params, "pseudolabel")
        if config.negatives < 1:
            raise PseudoLabelError(f"params.yaml pseudolabel.negatives: expected >= 1, got {config.negatives}")
        if config.mine_depth <= config.negatives:
            raise PseudoLabelError(f"params.yaml pseudolabel.mine_depth ({config.mine_depth}) must exceed "
                                   f"pseudolabel.negatives ({config.negatives}): the positive is among the top")
        return config


def load_teacher(fusion_params: Mapping[str, Any], name: str) -> Fusion:
    """The fused system `name` of params.yaml's `fusion` section, checked to fuse zero-shot parts only: a teacher
    with the fine-tune in it would train the fine-tune on its own output."""
    if name not in fusion_params:
        raise PseudoLabelError(f"params.yaml pseudolabel.teacher: no fused system {name!r} in fusion")
    fusion = Fusion.from_params(name, fusion_params[name], fusion_params["rrf_k"], fusion_params["depth"])
    bad = [p for p in fusion.parts if p not in ZERO_SHOT_PARTS]
    if bad:
        raise PseudoLabelError(f"params.yaml fusion.{name}: the teacher may only fuse zero-shot systems "
                               f"({', '.join(ZERO_SHOT_PARTS)}), not {', '.join(bad)}")
    return fusion


def part_scores(fusion: Fusion, raw: np.ndarray, positive_only: bool = False) -> np.ndarray:
    """One part's contribution to the fused score of every episode, for a batch of queries: raw scores
    (queries x episodes) -> what Fusion.fuse adds for each episode, 0 outside the part's top `depth`.

    score: min-max over the part's top `depth` (an episode below it scores <= the minimum, so clipping at 0 gives
    exactly the 0 it gets by not being retrieved); rrf: 1 / (k + rank) within the top `depth`. positive_only: the
    part retrieves only episodes scoring > 0 (BM25: those sharing a word with the query), and fusion sees only those.
    """
    raw = np.asarray(raw, dtype=np.float64)
    n, m = raw.shape
    depth = min(fusion.depth, m)
    # Stable descending order, ties by column (the corpus is in episode-id order, as order_candidates breaks ties).
    order = np.argsort(-raw, axis=1, kind="stable")[:, :depth]
    top = np.take_along_axis(raw, order, axis=1)
    retrieved = top > 0 if positive_only else np.ones_like(top, dtype=bool)
    if fusion.method == "rrf":
        values = np.broadcast_to(1.0 / (fusion.rrf_k + np.arange(1, depth + 1)), top.shape).copy()
    else:
        values = np.zeros_like(top)
    out = np.zeros((n, m), dtype=np.float64)
    for row in range(n):
        keep = retrieved[row]
        if fusion.method == "score":
            kept = top[row][keep]
            low, high = (kept.min(), kept.max()) if kept.size else (0.0, 0.0)
            values[row] = 1.0 if high == low else (top[row] - low) / (high - low)
        out[row, order[row][keep]] = values[row][keep]
    return out


def teacher_scores(fusion: Fusion, raw_by_part: Mapping[str, np.ndarray]) -> np.ndarray:
    """The fused score of every (query, episode) in a batch: the weighted sum of part_scores."""
    total = None
    for part in fusion.parts:
        contribution = fusion.weights[part] * part_scores(fusion, raw_by_part[part], positive_only=part == "bm25")
        total = contribution if total is None else total + contribution
    return total


@dataclass
class Corpus:
    """The episodes negatives are mined from (the train split's), in id order, with each one's text."""

    ids: list[str]
    texts: list[str]


def raw_scorer(corpus: Corpus, parts: list[str], embeddings: str | Path, base_model: str
               ) -> Callable[[list[str]], dict[str, np.ndarray]]:
    """`raw_scores(queries)` for label_pairs: each part's raw scores of the queries against every corpus episode.
    Dense parts reuse the embed stages' vectors (embeddings/<part>.npy, only the query is encoded), BM25 indexes the
    corpus texts. `base` is always scored: its cosines set the labels' scale."""
    from podsearch.embeddings import encode_texts, load_embeddings, rows_for
    from podsearch.encoders import load_encoder
    from podsearch.retrieval.bm25 import BM25Index

    dense = {}
    for name in ("base", *(p for p in parts if p == "use")):
        ids, matrix = load_embeddings(Path(embeddings) / f"{name}.npy")
        dense[name] = (load_encoder(name, base_model if name == "base" else None),
                       rows_for(ids, matrix, corpus.ids, what=f"{name} embeddings"))
    bm25 = BM25Index(corpus.ids, corpus.texts) if "bm25" in parts else None

    def raw_scores(queries: list[str]) -> dict[str, np.ndarray]:
        raw = {name: encode_texts(encoder, queries, 128, desc=f"{name} queries") @ matrix.T
               for name, (encoder, matrix) in dense.items()}
        if bm25 is not None:
            raw["bm25"] = bm25.score_all(queries)
        return raw

    return raw_scores


def label_pairs(pairs: pd.DataFrame, corpus: Corpus, fusion: Fusion, config: PseudoLabelConfig,
                raw_scores: Callable[[list[str]], Mapping[str, np.ndarray]]) -> tuple[pd.DataFrame, dict]:
    """One row per pair: the positive's teacher score and rank, `negatives` mined negatives and their teacher
    scores. `raw_scores(queries)` gives each part's raw scores of those queries against every corpus episode, and
    always `base` (the student before training), whose cosines set the scale of the labels.

    Negatives are drawn (seeded, per query) from the teacher's top `mine_depth`, never the positive or an episode
    whose text equals the positive's (the sample has duplicated descriptions: it would be a false negative). Ranks
    count episodes scoring strictly higher, ties by id, 1 = the teacher's top hit.

    Scores are put on the student's cosine scale: multiplied by std(base cosine) / std(teacher score) over every
    labelled (query, episode). MarginMSE fits student margins to teacher margins, and fused margins (0 .. sum of
    weights) would ask cosines to move several times further apart than they can.
    """
    from tqdm.auto import tqdm

    position = {e: i for i, e in enumerate(corpus.ids)}
    unknown = [e for e in pairs["episode_id"] if e not in position]
    if unknown:
        raise PseudoLabelError(f"episode {unknown[0]} of the train pairs is not in the train corpus "
                               f"({len(unknown)} pairs)")
    text_group = pd.Series(corpus.texts).astype(str).str.strip().factorize()[0]
    rng = np.random.default_rng(config.seed)
    queries = pairs["query"].astype(str).tolist()
    positives = np.array([position[e] for e in pairs["episode_id"]])
    ranks, pos_scores, neg_ids, neg_scores, base_scores = [], [], [], [], []
    short = 0
    with tqdm(total=len(queries), desc="pseudo-labels", unit="query", mininterval=2.0) as bar:
        for start in range(0, len(queries), config.batch_size):
            batch = queries[start:start + config.batch_size]
            raw = raw_scores(batch)
            scores = teacher_scores(fusion, raw)
            for row, query_scores in enumerate(scores):
                positive = positives[start + row]
                pos = query_scores[positive]
                higher = query_scores > pos
                tied_before = (query_scores == pos) & (np.arange(len(query_scores)) < positive)
                ranks.append(int(higher.sum() + tied_before.sum()) + 1)
                pos_scores.append(float(pos))
                order = np.lexsort((np.arange(len(query_scores)), -query_scores))[: config.mine_depth + 1]
                pool = [i for i in order if text_group[i] != text_group[positive]][: config.mine_depth]
                picked = sorted(rng.choice(len(pool), size=min(config.negatives, len(pool)), replace=False))
                short += len(picked) < config.negatives
                neg_ids.append([corpus.ids[pool[i]] for i in picked])
                neg_scores.append([float(query_scores[pool[i]]) for i in picked])
                base_scores.append(raw["base"][row, [positive, *(pool[i] for i in picked)]])
            bar.update(len(batch))
    teacher = np.concatenate([[p, *n] for p, n in zip(pos_scores, neg_scores)])
    if not len(teacher) or np.std(teacher) == 0:
        raise PseudoLabelError("the teacher gives every labelled pair the same score; nothing to distil")
    scale = float(np.std(np.concatenate(base_scores)) / np.std(teacher))
    out = pairs.reset_index(drop=True).copy()
    out["teacher_rank"] = np.asarray(ranks, dtype=np.int32)
    out["teacher_positive"] = (np.asarray(pos_scores) * scale).astype(np.float32)
    out["negative_ids"] = neg_ids
    out["teacher_negatives"] = [[float(np.float32(s * scale)) for s in row] for row in neg_scores]
    out["base_positive"] = np.asarray([b[0] for b in base_scores], dtype=np.float32)
    rank = out["teacher_rank"]
    stats = {
        "pairs": len(out),
        "queries_distinct": int(out["query"].nunique()),
        "corpus_episodes": len(corpus.ids),
        "negatives_per_query": config.negatives,
        "label_scale": round(scale, 6),
        "fewer_negatives": int(short),
        "positive_rank": {"1": int((rank == 1).sum()), "2-10": int(((rank > 1) & (rank <= 10)).sum()),
                          "11-100": int(((rank > 10) & (rank <= 100)).sum()), ">100": int((rank > 100).sum())},
        "positive_below_top_negative": int(sum(p < max(n) for p, n in zip(pos_scores, neg_scores) if n)),
    }
    return out, stats
