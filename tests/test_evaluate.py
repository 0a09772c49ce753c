"""Embeddings storage, curated-query validation, and the evaluate/embed stages end to end on tiny data with a fake
encoder (a hashed bag of words: deterministic, no model weights)."""
import importlib.util
import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from podsearch.data import PREPARED_COLUMNS
from podsearch.embeddings import EmbeddingError, encode_texts, load_embeddings, rows_for, save_embeddings
from podsearch.evaluation import (
    SYSTEMS, Corpus, DenseModel, EvaluationError, Runner, load_curated, score, synthetic_queries,
)

ROOT = Path(__file__).resolve().parents[1]


class FakeEncoder:
    """Hashed bag of words: texts sharing words get similar vectors, which is all retrieval tests need."""

    def __init__(self, dim=64, salt=0):
        self.dim, self.salt, self.calls = dim, salt, []

    def encode(self, texts):
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, (zlib.crc32(word.encode()) + self.salt) % self.dim] += 1.0
        return out


def ep(i):
    return f"{i:032x}"


EPISODES = [
    "sourdough bread baking at home with a starter",
    "stock market crash and bond investors",
    "marathon training plan for beginners",
    "the best pizza dough recipe from naples",
    "interview with a retired astronaut about the space station",
    "premier league goalkeeper record saves",
    "meditation retreat questions and answers",
    "tax reform and your retirement account",
]


def write_inputs(folder: Path, index: str = "exact"):
    """A tiny repository layout: prepared episodes, test split, curated queries, embeddings, params.yaml."""
    ids = [ep(i) for i in range(len(EPISODES))]
    (folder / "data/prepared").mkdir(parents=True)
    frame = pd.DataFrame({column: "" for column in PREPARED_COLUMNS}, index=range(len(ids)))
    frame["episode_id"], frame["text"], frame["language"] = ids, EPISODES, "English"
    frame.to_parquet(
        folder / "data/prepared/episodes.parquet", index=False)
    (folder / "data/splits").mkdir(parents=True)
    test = pd.DataFrame({"query": ["bread starter", "marathon plan", "astronaut space", "goalkeeper saves"],
                         "episode_id": [ids[0], ids[2], ids[4], ids[5]], "generator": "pseudo-title"})
    test.to_parquet(folder / "data/splits/test.parquet", index=False)
    curated = [{"query": "pizza dough", "episode_ids": [ids[3]]},
               {"query": "retirement tax", "episode_ids": [ids[7], ids[1]], "note": "two answers"}]
    (folder / "data/curated_queries.yaml").write_text(yaml.safe_dump(curated))
    for name, salt in (("base", 0), ("finetuned", 1), ("use", 2)):
        save_embeddings(folder / f"data/embeddings/{name}.npy", ids, encode_texts(FakeEncoder(salt=salt), EPISODES))
    params = {"train": {"base_model": "package:fake", "batch_size": 99},
              "embed": {"batch_size": 4, "max_seq_length": 128},
              "evaluate": {"ks": [1, 5, 10, 30], "index": index, "hnsw_m": 8, "hnsw_ef_search": 32, "rrf_k": 60,
                           "rrf_depth": 100, "batch_size": 8, "pinecone_index": "x", "pinecone_cloud": "aws",
                           "pinecone_region": "us-east-1"}}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return ids


def load_stage(name):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RecordingDict(dict):
    def __init__(self, data, section, log):
        super().__init__(data)
        self.section, self.log = section, log

    def __getitem__(self, key):
        self.log.add(f"{self.section}.{key}")
        return super().__getitem__(key)


def recording_load_params(real, log):
    def load(section=None, *args, **kwargs):
        return RecordingDict(real(section, *args, **kwargs), section, log)
    return load


# --- embeddings -----------------------------------------------------------------------------------------------

def test_encode_texts_batches_by_length_and_keeps_input_order():
    texts = ["a", "a b c d e", "a b", "a b c d e f g h", "a b c"]
    encoder = FakeEncoder()
    matrix = encode_texts(encoder, texts, batch_size=2, desc="test")
    assert [len(batch) for batch in encoder.calls] == [2, 2, 1]
    assert encoder.calls[0] == ["a b c d e f g h", "a b c d e"]  # longest first
    np.testing.assert_allclose(matrix, encode_texts(FakeEncoder(), texts, batch_size=100), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert matrix.dtype == np.float32


def test_embeddings_round_trip_and_alignment(tmp_path):
    ids = [ep(i) for i in range(3)]
    matrix = np.eye(3, 4, dtype=np.float32)
    save_embeddings(tmp_path / "base.npy", ids, matrix)
    assert (tmp_path / "base.ids.txt").read_text().split() == ids
    loaded_ids, loaded = load_embeddings(tmp_path / "base.npy", expected_ids=ids)
    assert loaded_ids == ids and np.array_equal(loaded, matrix)
    with pytest.raises(EmbeddingError, match="not aligned"):
        load_embeddings(tmp_path / "base.npy", expected_ids=ids[::-1])
    with pytest.raises(EmbeddingError, match="run the embed stage"):
        load_embeddings(tmp_path / "missing.npy")
    np.testing.assert_array_equal(rows_for(ids, matrix, [ids[2], ids[0]]), matrix[[2, 0]])
    with pytest.raises(EmbeddingError, match="no embedding"):
        rows_for(ids, matrix, ["f" * 32])


# --- query sets -----------------------------------------------------------------------------------------------

def test_curated_validation_names_the_query(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text('- query: cooking pasta\n  episode_ids: ["' + ep(9) + '"]\n')
    with pytest.raises(EvaluationError, match=r"'cooking pasta'.*not in the prepared episodes"):
        load_curated(path, {ep(1)})
    path.write_text("- query: unquoted id\n  episode_ids: [12345]\n")
    with pytest.raises(EvaluationError, match="not a string; quote ids"):
        load_curated(path, {"12345"})
    path.write_text(f'- {{query: a, episode_ids: ["{ep(1)}"]}}\n- {{query: a, episode_ids: ["{ep(1)}"]}}\n')
    with pytest.raises(EvaluationError, match="duplicate query"):
        load_curated(path, {ep(1)})
    path.write_text("- query: nothing\n")
    with pytest.raises(EvaluationError, match="non-empty list 'episode_ids'"):
        load_curated(path, set())


def test_synthetic_queries_merge_identical_queries():
    pairs = pd.DataFrame({"query": ["episode 12", "episode 12 ", "bread"], "episode_id": [ep(1), ep(2), ep(3)]})
    query_set = synthetic_queries(pairs, {ep(1), ep(2), ep(3)})
    assert query_set.queries == ["bread", "episode 12"]
    assert query_set.relevant == [{ep(3)}, {ep(1), ep(2)}]
    with pytest.raises(EvaluationError, match="not in the prepared episodes"):
        synthetic_queries(pairs, {ep(1)})


def _sample_episode_ids() -> set[str]:
    """Ids of the prepared sample: from the pipeline's output, else prepared here from the pulled raw sample."""
    prepared = ROOT / "data/prepared/episodes.parquet"
    if prepared.exists():
        return set(pd.read_parquet(prepared, columns=["episode_id"])["episode_id"])
    sample = ROOT / "data/sample/listennotes-dec2017"
    if not (sample / "episodes.csv").exists():
        pytest.skip("embedded sample absent: `dvc pull data/sample/listennotes-dec2017.dvc` (.ci/run does)")
    from podsearch.data import load_raw, prepare_episodes

    frame, _ = prepare_episodes(*load_raw(sample / "podcasts.csv", sample / "episodes.csv"), seed=0)
    return set(frame["episode_id"])


def test_repository_curated_queries_are_valid():
    known = _sample_episode_ids()
    query_set = load_curated(ROOT / "data/curated_queries.yaml", known)
    assert len(query_set) >= 30
    raw = yaml.safe_load((ROOT / "data/curated_queries.yaml").read_text())
    assert all(isinstance(i, str) and len(i) == 32 for entry in raw for i in entry["episode_ids"])


# --- runner and report ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("index_kind", ["exact", "hnsw"])
def test_runner_scores_every_system(index_kind):
    ids = [ep(i) for i in range(len(EPISODES))]
    models = {name: DenseModel(ids, encode_texts(FakeEncoder(salt=s), EPISODES), FakeEncoder(salt=s))
              for s, name in enumerate(("base", "finetuned", "use"))}
    query_set = synthetic_queries(pd.DataFrame({"query": ["sourdough bread", "astronaut interview"],
                                                "episode_id": [ids[0], ids[4]]}), set(ids))
    runner = Runner(index_kind=index_kind, index_options={"m": 8, "ef_search": 32}, depth=30)
    results = runner.run(list(SYSTEMS), models, Corpus(ids, EPISODES), query_set)
    assert list(results) == list(SYSTEMS)
    for name in SYSTEMS:
        assert [{r[0]} for r in results[name]["rankings"]] == query_set.relevant, name
    # each dense encoder saw every query once, in one batch
    assert all(len(m.encoder.calls) == 1 and len(m.encoder.calls[0]) == 2 for m in models.values())
    metrics, curve = score(results, query_set, [1, 5, 10, 30])
    assert metrics["hybrid"]["recall@1"] == 1.0 and metrics["bm25"]["mrr@10"] == 1.0
    assert ("ann_overlap@10" in metrics["base"]) == (index_kind == "hnsw")
    assert len(curve) == len(SYSTEMS) * 30


def test_evaluate_stage_end_to_end(tmp_path, monkeypatch):
    write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    stage = load_stage("evaluate")
    used = set()
    monkeypatch.setattr(stage, "load_params", recording_load_params(stage.load_params, used))
    loaded = []
    salts = {"base": 0, "finetuned": 1, "use": 2}
    monkeypatch.setattr(stage, "load_encoder", lambda kind, spec: loaded.append((kind, spec)) or FakeEncoder(
        salt=salts[kind]))
    stage.main([])

    report = json.loads((tmp_path / "metrics/eval.json").read_text())
    for system in SYSTEMS:
        for key in (f"recall@30_{system}", f"mrr@30_{system}", f"curated_recall@30_{system}"):
            assert 0.0 <= report[key] <= 1.0
        assert set(report["synthetic"][system]) == {"recall@1", "recall@5", "recall@10", "recall@30", "mrr@10",
                                                   "mrr@30", "ndcg@10"}
    assert report["sizes"] == {"synthetic": {"queries": 4, "episodes": 4}, "curated": {"queries": 2, "episodes": 8}}
    assert report["curated"]["bm25"]["recall@1"] == pytest.approx(0.75)  # second query has two answers
    for name in ("synthetic", "curated"):
        curve = pd.read_csv(tmp_path / f"plots/recall_at_k_{name}.csv")
        assert list(curve.columns) == ["k", *sorted(SYSTEMS)] and curve["k"].tolist() == list(range(1, 31))
        assert all(curve[system].is_monotonic_increasing for system in SYSTEMS)
    # evaluate depends on evaluate.* and the base model spec only, so evaluate-only edits rerun evaluate alone
    assert {key.split(".")[0] for key in used} == {"evaluate", "train"}
    assert {key for key in used if key.startswith("train.")} == {"train.base_model"}
    assert ("base", "package:fake") in loaded


def test_evaluate_stage_hnsw_reports_overlap_and_errors_are_one_line(tmp_path, monkeypatch):
    ids = write_inputs(tmp_path, index="hnsw")
    monkeypatch.chdir(tmp_path)
    stage = load_stage("evaluate")
    monkeypatch.setattr(stage, "load_encoder", lambda kind, spec: FakeEncoder(salt={"base": 0, "finetuned": 1,
                                                                                  "use": 2}[kind]))
    stage.main(["--systems", "base,bm25"])
    report = json.loads((tmp_path / "metrics/eval.json").read_text())
    assert report["index"] == "hnsw" and 0 <= report["ann_overlap@30_base"] <= 1
    assert set(report["synthetic"]) == {"base", "bm25"}

    (tmp_path / "data/curated_queries.yaml").write_text(f'- {{query: lost, episode_ids: ["{"0" * 31}z"]}}\n')
    with pytest.raises(SystemExit, match="'lost'.*not in the prepared episodes"):
        stage.main([])
    with pytest.raises(SystemExit, match="unknown system"):
        stage.main(["--systems", "bm26"])
    assert ids


def test_embed_stage_writes_aligned_matrix(tmp_path, monkeypatch):
    ids = write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    stage = load_stage("embed")
    used = set()
    monkeypatch.setattr(stage, "load_params", recording_load_params(stage.load_params, used))
    seen = {}
    monkeypatch.setattr(stage, "load_encoder", lambda kind, spec, max_seq_length: seen.update(
        kind=kind, spec=spec, max_seq_length=max_seq_length) or FakeEncoder())
    stage.main(["--model", "base", "--out", "out/base.npy"])
    loaded_ids, matrix = load_embeddings(tmp_path / "out/base.npy", expected_ids=ids)
    assert matrix.shape == (len(EPISODES), 64)
    assert seen == {"kind": "base", "spec": "package:fake", "max_seq_length": 128}
    assert used == {"embed.batch_size", "embed.max_seq_length", "train.base_model"}

    used.clear()
    stage.main(["--model", "use", "--out", "out/use.npy"])
    assert seen == {"kind": "use", "spec": None, "max_seq_length": None}
    assert used == {"embed.batch_size"}  # embed_use reruns only when its batch size changes
