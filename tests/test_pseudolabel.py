"""Pseudo-labels: the teacher's score of any (query, episode) is the fused score search gives, negatives come from the
teacher's top and are never the positive or a copy of its text, and the distillation losses train on them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from podsearch.evaluation import Corpus
from podsearch.pseudolabel import (
    PseudoLabelConfig,
    PseudoLabelError,
    dense_run,
    label_pairs,
    load_teacher,
    teacher_scores,
)
from podsearch.retrieval.bm25 import BM25Index
from podsearch.retrieval.fusion import Fusion
from podsearch.retrieval.index import make_index


@pytest.mark.parametrize("method", ["score", "rrf"])
def test_teacher_scores_are_the_fused_scores_of_what_the_indexes_return(method):
    """dense_run ranks as the exact index does; every episode the fusion returns gets its fused score in its own
    column, every other one 0."""
    rng = np.random.default_rng(3)
    ids = [f"{i:032x}" for i in range(60)]
    vectors = {p: rng.normal(size=(60, 8)).astype(np.float32) for p in ("base", "use")}
    queries = {p: rng.normal(size=(7, 8)).astype(np.float32) for p in ("base", "use")}
    fusion = Fusion(weights={"base": 1.0, "use": 0.5}, method=method, depth=15)
    runs = {}
    for part in fusion.parts:
        scores, positions = dense_run(queries[part] @ vectors[part].T, np.arange(60), fusion.depth)
        index = make_index("exact", 8)
        index.add(ids, vectors[part])
        assert [[ids[p] for p in row] for row in positions] == index.search(queries[part], fusion.depth)[1]
        runs[part] = (scores, [[ids[p] for p in row] for row in positions])
    fused_scores, fused_ids = fusion.fuse(runs, top_k=60)
    dense = teacher_scores(fusion, runs, ids)
    column = {e: i for i, e in enumerate(ids)}
    for q in range(7):
        assert [dense[q, column[e]] for e in fused_ids[q]] == fused_scores[q]
        assert all(dense[q, i] == 0 for i, e in enumerate(ids) if e not in set(fused_ids[q]))


def _corpus():
    texts = ["jazz history of new orleans", "football tactics and the pressing game", "true crime in the city",
             "jazz history of new orleans",  # the same description as episode 0: never its negative
             "cooking pasta at home", "space science and rockets", "jazz piano trio live", "the history of jazz"]
    return Corpus([f"{i:032x}" for i in range(len(texts))], texts)


def _bm25_only(corpus: Corpus, depth: int = 100):
    """score(queries) for label_pairs: BM25's ranking, and a bag-of-words cosine standing in for the base model."""
    index = BM25Index(corpus.ids, corpus.texts)
    words = sorted({w for t in corpus.texts for w in t.split()})
    vectors = np.array([[t.split().count(w) for w in words] for t in corpus.texts], dtype=float)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def score(queries):
        q = np.array([[s.split().count(w) for w in words] for s in queries], dtype=float)
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        scores, ranked = index.search(queries, depth)
        return {"bm25": ([list(map(float, r[:len(i)])) for r, i in zip(scores, ranked)], ranked)}, q @ vectors.T
    return score


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
    score = _bm25_only(corpus)
    for row in labels.itertuples():
        scores = teacher_scores(fusion, score([row.query])[0], corpus.ids)[0]
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
    fusion = {"rrf_k": 60, "depth": 100, "teacher": {"method": "score", "weights": {"base": 1, "use": 1, "bm25": 1}}}
    assert load_teacher(fusion).parts == ["base", "bm25", "use"]
    fusion["teacher"] = {"method": "score", "weights": {"finetuned": 1.0, "bm25": 1.0}}
    with pytest.raises(PseudoLabelError, match="fusion.teacher: the teacher may only fuse zero-shot"):
        load_teacher(fusion)
    with pytest.raises(PseudoLabelError, match="fusion.teacher: missing"):
        load_teacher({"rrf_k": 60, "depth": 100})


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
