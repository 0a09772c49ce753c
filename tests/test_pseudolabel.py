"""Pseudo-labels: the teacher's score of any (query, episode) is the fused score search gives, negatives come from the
teacher's top and are never the positive or a copy of its text, and the distillation losses train on them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from podsearch.pseudolabel import (
    Corpus,
    PseudoLabelConfig,
    PseudoLabelError,
    label_pairs,
    load_teacher,
    teacher_scores,
)
from podsearch.retrieval.bm25 import BM25Index
from podsearch.retrieval.fusion import Fusion
from podsearch.retrieval.ranking import id_ranks, top_k


def _ranked(raw: np.ndarray, ids: list[str], depth: int, positive_only: bool):
    """What a part's index returns for each query: its top `depth` (scores, ids), ties by id."""
    keys = id_ranks(ids)
    scores, ranked = [], []
    for row in raw:
        positions = [p for p in top_k(row, depth, keys) if row[p] > 0 or not positive_only]
        scores.append([float(row[p]) for p in positions])
        ranked.append([ids[p] for p in positions])
    return scores, ranked


@pytest.mark.parametrize("method", ["score", "rrf"])
def test_teacher_scores_are_the_fused_scores(method):
    """For every episode a fusion returns, teacher_scores gives the same score; every other episode scores 0 in the
    fusion and at most the lowest returned score here (it is ranked below all of them)."""
    rng = np.random.default_rng(3)
    ids = [f"{i:032x}" for i in range(60)]
    raw = {"base": rng.normal(size=(7, 60)), "use": rng.normal(size=(7, 60)),
           "bm25": np.where(rng.random((7, 60)) < 0.4, rng.gamma(2.0, size=(7, 60)), 0.0)}
    raw["bm25"][6] = 0.0  # a query sharing no word with any episode: BM25 returns nothing
    fusion = Fusion(weights={"base": 1.0, "use": 0.5, "bm25": 2.0}, method=method, depth=15)
    runs = {p: _ranked(m, ids, fusion.depth, positive_only=p == "bm25") for p, m in raw.items()}
    fused_scores, fused_ids = fusion.fuse(runs, top_k=60)
    dense = teacher_scores(fusion, raw)
    column = {e: i for i, e in enumerate(ids)}
    for q in range(7):
        got = [dense[q, column[e]] for e in fused_ids[q]]
        np.testing.assert_allclose(got, fused_scores[q], rtol=1e-9, atol=1e-12)
        others = [dense[q, i] for i, e in enumerate(ids) if e not in set(fused_ids[q])]
        assert all(v == 0 for v in others)


def _corpus():
    texts = ["jazz history of new orleans", "football tactics and the pressing game", "true crime in the city",
             "jazz history of new orleans",  # the same description as episode 0: never its negative
             "cooking pasta at home", "space science and rockets", "jazz piano trio live", "the history of jazz"]
    return Corpus([f"{i:032x}" for i in range(len(texts))], texts)


def _bm25_only(corpus: Corpus):
    index = BM25Index(corpus.ids, corpus.texts)
    words = sorted({w for t in corpus.texts for w in t.split()})
    vectors = np.array([[t.split().count(w) for w in words] for t in corpus.texts], dtype=float)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def raw_scores(queries):
        q = np.array([[s.split().count(w) for w in words] for s in queries], dtype=float)
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        return {"bm25": index.score_all(queries), "base": q @ vectors.T}
    return raw_scores


def test_label_pairs_mines_negatives_from_the_teacher_top():
    corpus = _corpus()
    pairs = pd.DataFrame({"query": ["jazz history", "pressing football", "jazz history"],
                          "episode_id": [corpus.ids[0], corpus.ids[1], corpus.ids[7]], "generator": "keyword"})
    fusion = Fusion(weights={"bm25": 1.0}, method="score", depth=100)
    config = PseudoLabelConfig(negatives=2, mine_depth=4, seed=1)
    labels, stats = label_pairs(pairs, corpus, fusion, config, _bm25_only(corpus))
    for row in labels.itertuples():
        assert len(row.negative_ids) == 2
        assert row.episode_id not in row.negative_ids
        text = corpus.texts[corpus.ids.index(row.episode_id)]
        assert all(corpus.texts[corpus.ids.index(n)] != text for n in row.negative_ids)
    # "jazz history" -> episode 0: its copy (episode 3) is not a negative; episodes 6 and 7 share words
    assert corpus.ids[3] not in labels["negative_ids"][0]
    # The positive of "pressing football" is the teacher's top hit, every negative scores below it.
    assert labels["teacher_rank"][1] == 1
    assert all(s < labels["teacher_positive"][1] for s in labels["teacher_negatives"][1])
    # Ranks: 1 + the episodes the teacher scores higher, equal scores ordered by id (episode 0 before its copy 3).
    raw = _bm25_only(corpus)
    for row in labels.itertuples():
        scores = teacher_scores(fusion, raw([row.query]))[0]
        own = corpus.ids.index(row.episode_id)
        expected = 1 + sum(s > scores[own] or (s == scores[own] and i < own) for i, s in enumerate(scores))
        assert row.teacher_rank == expected
    # "jazz history": the shortest episode with both words (7) is the top hit, episode 0 next, tied with its copy
    assert labels["teacher_rank"].tolist() == [2, 1, 1]
    assert stats["positive_rank"] == {"1": 2, "2-10": 1, "11-100": 0, ">100": 0}
    assert stats["label_scale"] > 0
    again, _ = label_pairs(pairs, corpus, fusion, config, _bm25_only(corpus))
    pd.testing.assert_frame_equal(labels, again)  # seeded


def test_teacher_of_the_fine_tune_is_refused():
    fusion = {"rrf_k": 60, "depth": 100, "teacher": {"method": "score", "weights": {"base": 1, "use": 1, "bm25": 1}},
              "shipped": {"method": "score", "weights": {"finetuned": 1.0, "bm25": 1.0}}}
    assert load_teacher(fusion, "teacher").parts == ["base", "bm25", "use"]
    with pytest.raises(PseudoLabelError, match="fusion.shipped: the teacher may only fuse zero-shot"):
        load_teacher(fusion, "shipped")
    with pytest.raises(PseudoLabelError, match="no fused system 'oracle'"):
        load_teacher(fusion, "oracle")


def test_config_needs_more_candidates_than_negatives():
    with pytest.raises(PseudoLabelError, match="mine_depth"):
        PseudoLabelConfig.from_params({"negatives": 4, "mine_depth": 4})
    with pytest.raises(PseudoLabelError, match="negatives"):
        PseudoLabelConfig.from_params({"negatives": 0})


def test_unknown_positive_is_one_clear_error():
    corpus = _corpus()
    pairs = pd.DataFrame({"query": ["jazz"], "episode_id": ["f" * 32], "generator": "keyword"})
    with pytest.raises(PseudoLabelError, match="not in the train corpus"):
        label_pairs(pairs, corpus, Fusion(weights={"bm25": 1.0}), PseudoLabelConfig(negatives=1, mine_depth=3),
                    _bm25_only(corpus))
