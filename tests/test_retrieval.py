"""Vector indexes (exact, hnsw), BM25 and reciprocal rank fusion on tiny inputs."""
from pathlib import Path

import numpy as np
import pytest

from podsearch.retrieval.bm25 import BM25Index
from podsearch.retrieval.fusion import Fusion, FusionError, load_fusions
from podsearch.retrieval.index import VectorIndexError, load_index, make_index
from podsearch.retrieval.ranking import id_ranks, order_candidates, top_k


def unit_vectors(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(n, dim)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def hex_ids(n):
    return [f"{i:032x}" for i in range(n)]


def brute_force(docs, queries, k):
    scores = queries @ docs.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k], np.sort(scores, axis=1)[:, ::-1][:, :k]


def test_exact_index_matches_brute_force():
    docs, queries, ids = unit_vectors(300, 24), unit_vectors(20, 24, seed=1), hex_ids(300)
    index = make_index("exact", 24)
    index.add(ids, docs)
    scores, ranked = index.search(queries, 10)
    expected_rows, expected_scores = brute_force(docs, queries, 10)
    assert ranked == [[ids[r] for r in row] for row in expected_rows]
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    assert all(isinstance(i, str) for row in ranked for i in row)


def test_hnsw_close_to_exact_and_uses_inner_product():
    docs, queries, ids = unit_vectors(1000, 32), unit_vectors(50, 32, seed=2), hex_ids(1000)
    exact, hnsw = make_index("exact", 32), make_index("hnsw", 32, m=16, ef_search=64)
    exact.add(ids, docs)
    hnsw.add(ids, docs)
    _, exact_ids = exact.search(queries, 10)
    hnsw_scores, hnsw_ids = hnsw.search(queries, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hnsw_ids, exact_ids)])
    assert overlap > 0.9
    # scores are similarities (higher first), not L2 distances
    assert np.all(np.diff(hnsw_scores, axis=1) <= 1e-6)
    assert hnsw.faiss_index.metric_type == 0  # faiss.METRIC_INNER_PRODUCT


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_save_load_round_trip(tmp_path, kind):
    docs, ids = unit_vectors(50, 8), hex_ids(50)
    index = make_index(kind, 8, m=8, ef_search=40)
    index.add(ids, docs)
    index.save(tmp_path / "idx")
    loaded = load_index(tmp_path / "idx")
    assert type(loaded) is type(index) and loaded.ids == ids
    assert loaded.search(docs[:5], 3)[1] == index.search(docs[:5], 3)[1]
    if kind == "hnsw":
        assert loaded.faiss_index.hnsw.efSearch == 40


def test_index_edges_and_errors(tmp_path):
    index = make_index("exact", 4)
    assert index.search(unit_vectors(2, 4), 5)[1] == [[], []]
    index.add(["a", "b"], unit_vectors(2, 4))
    scores, ranked = index.search(unit_vectors(3, 4), 10)  # k larger than the index
    assert scores.shape == (3, 2) and all(len(r) == 2 for r in ranked)
    with pytest.raises(VectorIndexError, match="expected shape"):
        index.add(["c"], unit_vectors(1, 5))
    with pytest.raises(VectorIndexError, match="duplicate"):
        index.add(["a"], unit_vectors(1, 4))
    with pytest.raises(VectorIndexError, match="ids but"):
        index.add(["x", "y"], unit_vectors(1, 4))
    with pytest.raises(VectorIndexError, match="unknown index kind"):
        make_index("annoy", 4)
    with pytest.raises(VectorIndexError, match="not a saved vector index"):
        load_index(tmp_path)


CORPUS = {
    "e1": "How to bake sourdough bread at home with a starter",
    "e2": "The stock market crashed and investors panic about bonds",
    "e3": "Training for your first marathon: running tips for beginners",
    "e4": "Der Hund und die Katze: Haustiere in der Stadt",
}


def test_bm25_ranks_matching_episode_first(tmp_path):
    index = BM25Index(list(CORPUS), list(CORPUS.values()))
    scores, ranked = index.search(["sourdough starter", "marathon running", "Hund in der Stadt"], 2)
    assert [r[0] for r in ranked] == ["e1", "e3", "e4"]
    assert scores.shape == (3, 2) and scores[0, 0] > scores[0, 1]
    # German stopwords are dropped, so "der"/"die" do not make e4 match an English query
    _, ranked = index.search(["die der das bread"], 1)
    assert ranked[0] == ["e1"]
    index.save(tmp_path / "bm25")
    assert BM25Index.load(tmp_path / "bm25").search(["marathon"], 1)[1] == [["e3"]]


def test_bm25_unknown_words_and_large_k():
    index = BM25Index(list(CORPUS), list(CORPUS.values()))
    scores, ranked = index.search(["zzzz qqqq"], 10)
    assert scores.shape == (1, 4) and np.all(scores == 0)
    with pytest.raises(ValueError, match="duplicate"):
        BM25Index(["a", "a"], ["x", "y"])


def _runs(**systems):
    """Fusion input from ranked id lists: one query, scores 1.0, 0.9, ... down each list."""
    return {name: ([[1.0 - 0.1 * i for i in range(len(ids))]], [ids]) for name, ids in systems.items()}


def test_weighted_rrf_hand_computed():
    runs = _runs(bm25=["a", "b", "c"], dense=["c", "a", "d"])
    scores, ids = Fusion({"bm25": 1.0, "dense": 1.0}, rrf_k=60).fuse(runs, top_k=3)
    expected = {"a": 1 / 61 + 1 / 62, "c": 1 / 63 + 1 / 61, "b": 1 / 62}
    assert ids[0] == ["a", "c", "b"]
    np.testing.assert_allclose(scores[0], [expected["a"], expected["c"], expected["b"]])
    # A weight of 2 on dense: c (dense #1) now beats a (bm25 #1, dense #2)
    _, ids = Fusion({"bm25": 1.0, "dense": 2.0}, rrf_k=60).fuse(runs, top_k=2)
    assert ids[0] == ["c", "a"]
    # Weight 0 leaves a system out entirely
    fusion = Fusion({"bm25": 0.0, "dense": 1.0})
    assert fusion.parts == ["dense"] and fusion.fuse(runs, 3)[1][0] == ["c", "a", "d"]


def test_score_fusion_normalises_each_system_per_query():
    runs = {"x": ([[10.0, 5.0, 0.0]], [["a", "b", "c"]]), "y": ([[0.9, 0.8]], [["c", "b"]])}
    scores, ids = Fusion({"x": 1.0, "y": 1.0}, method="score").fuse(runs, top_k=3)
    # x: a 1, b 0.5, c 0; y: c 1, b 0  -> a 1, b 0.5, c 1: a and c tie, broken by id
    assert ids[0] == ["a", "c", "b"]
    np.testing.assert_allclose(scores[0], [1.0, 1.0, 0.5])


def test_fusion_params_are_validated():
    fusion = Fusion.from_params("shipped", {"method": "score", "weights": {"use": 1, "finetuned": "0.5"}}, 30, 50)
    assert fusion.to_dict() == {"method": "score", "weights": {"use": 1.0, "finetuned": 0.5}, "rrf_k": 30,
                                "depth": 50}
    for bad, message in (({"weights": {"a": -1}}, "must be >= 0"), ({"method": "max", "weights": {"a": 1}}, "max"),
                         ({"weights": {"a": "x"}}, "must be a number"), ({}, "expected")):
        with pytest.raises(FusionError, match=message):
            Fusion.from_params("shipped", bad, 60, 100)
    with pytest.raises(FusionError, match="needs the rankings of b"):
        Fusion({"a": 1.0, "b": 1.0}).fuse(_runs(a=["x"]), 1)
    with pytest.raises(FusionError, match="fusion.depth: missing"):
        load_fusions({"rrf_k": 60})
    assert list(load_fusions({"rrf_k": 60, "depth": 10, "h": {"weights": {"a": 1}}})) == ["h"]


# --- ties: equal scores are ordered by episode id everywhere, whatever the sort kernel does ----------------------

def test_top_k_breaks_ties_by_id_across_the_cut():
    ids = ["e9", "e1", "e5", "e3", "e7"]
    scores = np.array([0.5, 0.9, 0.5, 0.5, 0.1], dtype=np.float32)
    keys = id_ranks(ids)
    assert [ids[p] for p in top_k(scores, 3, keys)] == ["e1", "e3", "e5"]  # the three 0.5s compete for 2 places
    assert [ids[p] for p in top_k(scores, 10, keys)] == ["e1", "e3", "e5", "e9", "e7"]
    assert order_candidates(["b", "a", "c"], [1.0, 1.0, 2.0], 2) == ([2.0, 1.0], ["c", "a"])


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_vector_index_orders_equal_scores_by_id(kind):
    """Twelve identical vectors (one score) under shuffled ids: the top 5 must be the 5 smallest ids, every time,
    although faiss returns equal scores in whatever order its kernels produce them."""
    rng = np.random.default_rng(0)
    ids = [f"{i:032x}" for i in rng.permutation(40)]
    vectors = rng.normal(size=(40, 8)).astype(np.float32)
    vectors[:12] = vectors[0]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = make_index(kind, 8, m=8, ef_search=64)
    index.add(ids, vectors)
    scores, ranked = index.search(vectors[:1], 5)
    assert ranked[0] == sorted(ids[:12])[:5]
    assert np.all(scores[0] == scores[0][0])


def test_bm25_orders_equal_scores_by_id():
    texts = ["bread baking"] * 6 + ["bread", "other topic"]
    ids = ["f", "c", "a", "e", "b", "d", "h", "g"]
    scores, ranked = BM25Index(ids, texts).search(["bread baking"], 4)
    assert ranked[0] == ["a", "b", "c", "d"]
    assert len(set(scores[0].tolist())) == 1
    # Shuffling the corpus order changes nothing
    order = [3, 0, 5, 1, 7, 2, 6, 4]
    assert BM25Index([ids[i] for i in order], [texts[i] for i in order]).search(["bread baking"], 4)[1] == ranked


def test_saved_bm25_index_is_byte_identical_across_interpreters(tmp_path):
    """bm25s orders its vocabulary by a set (string hashes differ per process); ours is sorted, so DVC sees the
    same index output for the same input."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from podsearch.retrieval.bm25 import BM25Index\n"
        "texts = ['holiday dieting tips and tricks', 'arsenal lose to united', 'zebra yak quokka kiwi emu', 'bread']\n"
        "BM25Index([str(i) for i in range(4)], texts).save(sys.argv[1])\n"
    )
    folders = []
    for seed in ("1", "2"):
        folder = tmp_path / seed
        env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, "-c", script, str(folder)], check=True, env=env, capture_output=True,
                       cwd=Path(__file__).resolve().parents[1])  # `-c` imports from the working directory
        folders.append({p.name: p.read_bytes() for p in folder.iterdir()})
    assert folders[0] == folders[1]


def test_bm25_tokens_are_bm25s_own(prepared_df):
    """The corpus is split with no stopwords and they are dropped after (bm25s rebuilds its stopword set per text):
    the tokens must be exactly those of bm25s.tokenize with the stopword list."""
    import bm25s

    from podsearch.retrieval.bm25 import STOPWORDS, _tokenized_corpus, tokenize

    texts = [*prepared_df["text"], "", "the and of", "Der Tag und die Nacht: ¿qué pasó? 2017"]
    reference = bm25s.tokenize(texts, stopwords=STOPWORDS, return_ids=False, show_progress=False)
    assert tokenize(texts) == reference
    corpus = _tokenized_corpus(texts)
    assert list(corpus.vocab) == sorted({t for doc in reference for t in doc})
    assert [[list(corpus.vocab)[i] for i in doc] for doc in corpus.ids] == reference

