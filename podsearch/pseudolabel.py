"""GPL-style pseudo-labels: a zero-shot teacher scores each training query against its positive and against negatives
mined from the teacher's own top candidates, so the fine-tune can be trained to reproduce the teacher's margins
(MarginMSE) or its distribution over candidates (KL divergence) instead of a hard 0/1 label.

The teacher is params.yaml's `fusion.teacher`, a fused system built from zero-shot
parts only (base, use, e5, bm25): never the fine-tune it trains. Its score for any (query, episode) is exactly the fused
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
from podsearch.evaluation import Corpus
from podsearch.retrieval.fusion import Fusion
from podsearch.retrieval.ranking import id_ranks, top_k

log = logging.getLogger(__name__)

ZERO_SHOT_PARTS = ("base", "use", "e5", "bm25")
TEACHER = "teacher"  # the fused system of params.yaml `fusion` that labels the pairs


class PseudoLabelError(PodsearchError, ValueError):
    """A teacher or input the pseudo-labelling cannot use; the stage prints it as one line."""


@dataclass(frozen=True)
class PseudoLabelConfig:
    """params.yaml `pseudolabel`."""

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


def load_teacher(fusion_params: Mapping[str, Any]) -> Fusion:
    """params.yaml's `fusion.teacher` (the one entry the pseudolabel stage depends on in dvc.yaml), checked to fuse
    zero-shot parts only: a teacher with the fine-tune in it would train the fine-tune on its own output."""
    name = TEACHER
    if name not in fusion_params:
        raise PseudoLabelError(f"params.yaml fusion.{name}: missing; the pseudolabel stage's teacher")
    fusion = Fusion.from_params(name, fusion_params[name], fusion_params["rrf_k"], fusion_params["depth"])
    bad = [p for p in fusion.parts if p not in ZERO_SHOT_PARTS]
    if bad:
        raise PseudoLabelError(f"params.yaml fusion.{name}: the teacher may only fuse zero-shot systems "
                               f"({', '.join(ZERO_SHOT_PARTS)}), not {', '.join(bad)}")
    return fusion


def dense_run(raw: np.ndarray, tie_keys: np.ndarray, depth: int) -> tuple[list[list[float]], list[np.ndarray]]:
    """A dense part's ranking as an exact index returns it: each query's top `depth` (scores, corpus positions),
    ties by id (podsearch.retrieval.ranking.top_k)."""
    positions = [top_k(row, depth, tie_keys) for row in raw]
    return [[float(v) for v in row[p]] for row, p in zip(raw, positions)], positions


def teacher_scores(fusion: Fusion, runs: Mapping[str, tuple], corpus_ids: list[str]) -> np.ndarray:
    """The fused score of every (query, corpus episode): Fusion.fuse over the parts' rankings, spread over the corpus
    columns, 0 for an episode no part retrieved (search would not return it either)."""
    scores, ids = fusion.fuse(runs, top_k=len(corpus_ids))
    column = {e: i for i, e in enumerate(corpus_ids)}
    out = np.zeros((len(ids), len(corpus_ids)), dtype=np.float64)
    for row, (row_scores, row_ids) in enumerate(zip(scores, ids)):
        out[row, [column[e] for e in row_ids]] = row_scores
    return out


def raw_scorer(corpus: Corpus, fusion: Fusion, embeddings: str | Path, base_model: str, e5_model: str | None = None
               ) -> Callable[[list[str]], tuple[dict[str, tuple], np.ndarray]]:
    """`score(queries)` for label_pairs: (each part's top `fusion.depth` ranking as (scores, ids) per query, and the
    base model's cosine of every (query, corpus episode), which sets the labels' scale). Dense parts reuse the embed
    stages' vectors (embeddings/<part>.npy, only the query is encoded); BM25 indexes the corpus texts and returns
    what BM25Index.search returns."""
    from podsearch.embeddings import encode_texts, load_embeddings, rows_for
    from podsearch.encoders import encoder_spec, load_encoder
    from podsearch.retrieval.bm25 import BM25Index

    dense = {}
    for name in ("base", *(p for p in fusion.parts if p in ("use", "e5"))):
        ids, matrix = load_embeddings(Path(embeddings) / f"{name}.npy")
        dense[name] = (load_encoder(name, encoder_spec(name, base_model, e5_model=e5_model or "")),
                       rows_for(ids, matrix, corpus.ids, what=f"{name} embeddings"))
    bm25 = BM25Index(corpus.ids, corpus.texts) if "bm25" in fusion.parts else None
    keys = id_ranks(corpus.ids)

    def score(queries: list[str]) -> tuple[dict[str, tuple], np.ndarray]:
        raw = {name: encode_texts(encoder, queries, 128, desc=f"{name} queries") @ matrix.T
               for name, (encoder, matrix) in dense.items()}
        runs = {}
        for part in fusion.parts:
            if part == "bm25":
                part_scores, ranked = bm25.search(queries, fusion.depth)
                runs[part] = ([list(map(float, r[:len(i)])) for r, i in zip(part_scores, ranked)], ranked)
            else:
                part_scores, positions = dense_run(raw[part], keys, fusion.depth)
                runs[part] = (part_scores, [[corpus.ids[p] for p in row] for row in positions])
        return runs, raw["base"]

    return score


def label_pairs(pairs: pd.DataFrame, corpus: Corpus, fusion: Fusion, config: PseudoLabelConfig,
                score: Callable[[list[str]], tuple[Mapping[str, tuple], np.ndarray]]) -> tuple[pd.DataFrame, dict]:
    """One row per pair: the positive's teacher score and rank, `negatives` mined negatives and their teacher
    scores. `score(queries)` gives each part's ranking of those queries and the base model's cosines against every
    corpus episode (the student before training: they set the scale of the labels).

    Negatives are drawn (seeded, per query) from the teacher's top `mine_depth`, never the positive or an
    episode whose text equals the positive's (the sample has duplicated descriptions: it would be a false negative).
    Ranks count episodes scoring strictly higher, ties by id, 1 = the teacher's top hit.

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
    tie_keys = id_ranks(corpus.ids)  # equal scores in id order, as the parts' rankings break them
    ranks, pos_scores, neg_ids, neg_scores, base_scores = [], [], [], [], []
    short = 0
    with tqdm(total=len(queries), desc="pseudo-labels", unit="query", mininterval=2.0) as bar:
        # Batches of pairs in order, repeated queries included: the encoders' float results depend on which texts
        # share a padded batch, so scoring each distinct query once would move every label's last bits.
        for start in range(0, len(queries), config.batch_size):
            batch = queries[start:start + config.batch_size]
            runs, base = score(batch)
            for row, query_scores in enumerate(teacher_scores(fusion, runs, corpus.ids)):
                positive = positives[start + row]
                pos = query_scores[positive]
                tied_before = (query_scores == pos) & (tie_keys < tie_keys[positive])
                ranks.append(int((query_scores > pos).sum() + tied_before.sum()) + 1)
                pos_scores.append(float(pos))
                top = top_k(query_scores, config.mine_depth + 1, tie_keys)
                pool = [i for i in top if text_group[i] != text_group[positive]][: config.mine_depth]
                picked = sorted(rng.choice(len(pool), size=min(config.negatives, len(pool)), replace=False))
                short += len(picked) < config.negatives
                neg_ids.append([corpus.ids[pool[i]] for i in picked])
                neg_scores.append([float(query_scores[pool[i]]) for i in picked])
                base_scores.append(base[row, [positive, *(pool[i] for i in picked)]])
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
