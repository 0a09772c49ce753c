"""IR metrics: hand-computed cases and cross-checks against sentence-transformers' InformationRetrievalEvaluator and
trec_eval (pytrec_eval through ir-measures)."""
import math
import random

import numpy as np
import pytest

from podsearch.metrics import (
    evaluate_rankings,
    first_relevant_rank,
    ndcg_at_k,
    overlap_at_k,
    per_query,
    recall_curve,
)


def test_hand_computed_single_query():
    ranking = ["x", "rel1", "y", "rel2", "z"]
    relevant = {"rel1", "rel2", "rel3"}
    metrics = evaluate_rankings([ranking], [relevant], ks=(1, 2, 5), mrr_ks=(1, 10), ndcg_ks=(5,))
    assert metrics["recall@1"] == 0.0
    assert metrics["recall@2"] == pytest.approx(1 / 3)
    assert metrics["recall@5"] == pytest.approx(2 / 3)
    assert metrics["mrr@1"] == 0.0 and metrics["mrr@10"] == pytest.approx(0.5)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics["ndcg@5"] == pytest.approx(dcg / idcg)


def test_means_over_queries_and_perfect_ranking():
    metrics = evaluate_rankings([["a", "b"], ["c", "d"]], [{"a"}, {"d"}], ks=(1,), mrr_ks=(10,), ndcg_ks=(10,))
    assert metrics["recall@1"] == 0.5 and metrics["mrr@10"] == pytest.approx(0.75)
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 10) == pytest.approx(1.0)


def test_recall_curve_matches_pointwise_recall():
    rng = random.Random(0)
    docs = [f"d{i}" for i in range(40)]
    rankings = [rng.sample(docs, 30) for _ in range(25)]
    relevant = [set(rng.sample(docs, rng.randint(1, 3))) for _ in range(25)]
    curve = recall_curve(rankings, relevant, max_k=30)
    for k in (1, 5, 17, 30):
        assert curve[k - 1] == pytest.approx(evaluate_rankings(rankings, relevant, ks=(k,))[f"recall@{k}"])
    assert all(a <= b + 1e-12 for a, b in zip(curve, curve[1:]))


def test_overlap_and_validation():
    assert overlap_at_k([["a", "b", "c"]], [["c", "a", "z"]], 2) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="relevance sets"):
        evaluate_rankings([["a"]], [])
    with pytest.raises(ValueError, match="at least one relevant"):
        evaluate_rankings([["a"]], [set()])


def test_agrees_with_sentence_transformers_information_retrieval_evaluator():
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    rng = random.Random(42)
    corpus = {f"doc{i:03d}": f"text {i}" for i in range(60)}
    queries = {f"q{i}": f"query {i}" for i in range(30)}
    relevant = {q: set(rng.sample(sorted(corpus), rng.randint(1, 4))) for q in queries}
    rankings = {q: rng.sample(sorted(corpus), 30) for q in queries}
    for q in list(queries)[:10]:  # make sure plenty of hits land at various ranks
        rankings[q][rng.randrange(10)] = sorted(relevant[q])[0]
        rankings[q] = list(dict.fromkeys(rankings[q]))

    ks = [1, 5, 10, 30]
    evaluator = InformationRetrievalEvaluator(
        queries, corpus, relevant, mrr_at_k=[10, 30], ndcg_at_k=[10], accuracy_at_k=ks, precision_recall_at_k=ks,
        map_at_k=[30], write_csv=False,
    )
    # The evaluator's own scorer on exactly our rankings: strictly decreasing scores preserve the order.
    results = [[{"corpus_id": doc, "score": 1.0 - rank / 100} for rank, doc in enumerate(rankings[q])]
               for q in evaluator.queries_ids]
    reference = evaluator.compute_metrics(results)

    ours = evaluate_rankings([rankings[q] for q in evaluator.queries_ids],
                             [relevant[q] for q in evaluator.queries_ids], ks=ks, mrr_ks=(10, 30), ndcg_ks=(10,))
    for k in ks:
        assert ours[f"recall@{k}"] == pytest.approx(reference["recall@k"][k])
    for k in (10, 30):
        assert ours[f"mrr@{k}"] == pytest.approx(reference["mrr@k"][k])
    assert ours["ndcg@10"] == pytest.approx(reference["ndcg@k"][10])
    assert 0 < ours["recall@30"] < 1 and ours["mrr@10"] > 0  # a non-trivial comparison


def test_per_query_values_agree_with_trec_eval_through_ir_measures():
    """The per-query values the CIs and significance tests resample, against pytrec_eval (via ir-measures)."""
    import ir_measures
    from ir_measures import RR, R, nDCG

    rng = random.Random(7)
    docs = [f"d{i:03d}" for i in range(80)]
    query_ids = [f"q{i}" for i in range(40)]
    relevant = [set(rng.sample(docs, rng.randint(1, 5))) for _ in query_ids]
    rankings = [rng.sample(docs, 30) for _ in query_ids]
    for ranking, rel in zip(rankings[:20], relevant[:20]):
        ranking[rng.randrange(12)] = sorted(rel)[0]
    rankings = [list(dict.fromkeys(r)) for r in rankings]
    qrels = [ir_measures.Qrel(q, d, 1) for q, rel in zip(query_ids, relevant) for d in rel]
    run = [ir_measures.ScoredDoc(q, d, 100.0 - rank) for q, r in zip(query_ids, rankings) for rank, d in enumerate(r)]
    measures = {"recall@10": R @ 10, "recall@30": R @ 30, "mrr@30": RR @ 30, "ndcg@10": nDCG @ 10}
    reference = {(m.query_id, str(m.measure)): m.value for m in ir_measures.iter_calc(list(measures.values()), qrels,
                                                                                       run)}
    for name, measure in measures.items():
        ours = per_query(rankings, relevant, name)
        assert ours.shape == (len(query_ids),)
        np.testing.assert_allclose(ours, [reference[(q, str(measure))] for q in query_ids], atol=1e-9)
    assert first_relevant_rank(["a", "b", "c"], {"c", "z"}) == 3 and first_relevant_rank(["a"], {"z"}) is None
    with pytest.raises(ValueError, match="unknown metric"):
        per_query(rankings, relevant, "precision@5")
