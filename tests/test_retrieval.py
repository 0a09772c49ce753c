"""Vector indexes (exact, hnsw), BM25 and reciprocal rank fusion on tiny inputs."""
from pathlib import Path

import numpy as np
import pytest

from podsearch.retrieval import BM25Index, VectorIndex, make_index, reciprocal_rank_fusion
from podsearch.retrieval.index import VectorIndexError


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
    loaded = VectorIndex.load(tmp_path / "idx")
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
        VectorIndex.load(tmp_path)


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


def test_rrf_hand_computed():
    bm25 = [["a", "b", "c"]]
    dense = [["c", "a", "d"]]
    scores, ids = reciprocal_rank_fusion([bm25, dense], k=60, top_k=3)
    expected = {"a": 1 / 61 + 1 / 62, "c": 1 / 63 + 1 / 61, "b": 1 / 62, "d": 1 / 63}
    assert ids[0] == ["a", "c", "b"]
    np.testing.assert_allclose(scores[0], [expected["a"], expected["c"], expected["b"]])


def test_rrf_ties_are_deterministic_and_validated():
    # "x" and "y" tie on fused score; the better single rank wins, then the id
    _, ids = reciprocal_rank_fusion([[["x", "y"]], [["y", "x"]]], k=60, top_k=2)
    assert ids == [["x", "y"]]
    assert reciprocal_rank_fusion([], k=60) == ([], [])
    with pytest.raises(ValueError, match="same number of queries"):
        reciprocal_rank_fusion([[["a"]], [["a"], ["b"]]])


def test_saved_bm25_index_is_byte_identical_across_interpreters(tmp_path):
    """bm25s orders its vocabulary by a set (string hashes differ per process); ours is sorted, so DVC sees the
    same index output for the same input."""
    import subprocess
    import sys

    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from podsearch.retrieval.bm25 import BM25Index\n"
        "texts = ['holiday dieting tips and tricks', 'arsenal lose to united', 'zebra yak quokka kiwi emu', 'bread']\n"
        "BM25Index([str(i) for i in range(4)], texts).save(sys.argv[1])\n"
    ) % str(Path(__file__).resolve().parents[1])
    folders = []
    for seed in ("1", "2"):
        folder = tmp_path / seed
        env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, "-c", script, str(folder)], check=True, env=env, capture_output=True)
        folders.append({p.name: p.read_bytes() for p in folder.iterdir()})
    assert folders[0] == folders[1]
