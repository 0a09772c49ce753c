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

from podsearch.curated import CuratedQuery
from podsearch.data import PREPARED_COLUMNS
from podsearch.encoders import USE_THREADS
from podsearch.embeddings import EmbeddingError, encode_texts, load_embeddings, rows_for, save_embeddings
from podsearch.runfiles import runs_frame
from podsearch.evaluation import (
    SINGLE_SYSTEMS,
    Corpus,
    DenseModel,
    EvaluationError,
    Runner,
    StatsConfig,
    curated_query_set,
    details,
    score_set,
    synthetic_queries,
)
from podsearch.retrieval.fusion import Fusion

FUSIONS = {"hybrid": Fusion({"bm25": 1.0, "finetuned": 1.0}), "shipped": Fusion({"finetuned": 1.0, "use": 1.0})}
SYSTEMS = [*SINGLE_SYSTEMS, *FUSIONS]
SALTS = {"base": 0, "finetuned": 1, "use": 2, "e5": 3}  # one fake encoder per dense system

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
    (folder / "data/curated").mkdir(parents=True)
    queries = [{"id": "q001", "query": "pizza dough", "style": "keyword", "language": "en", "split": "test"},
               {"id": "q002", "query": "retirement tax", "style": "keyword", "language": "en", "split": "test"},
               {"id": "q003", "query": "how do astronauts live in space", "style": "question", "language": "en",
                "split": "dev"},
               {"id": "q004", "query": "unjudged query", "style": "keyword", "language": "de", "split": "dev"}]
    (folder / "data/curated/queries.yaml").write_text(yaml.safe_dump(queries))
    judgments = pd.DataFrame({"query_id": ["q001", "q002", "q002", "q002", "q003"],
                              "episode_id": [ids[3], ids[7], ids[1], ids[0], ids[4]],
                              "relevant": [1, 1, 1, 0, 1], "judge": "test"})
    judgments.to_csv(folder / "data/curated/judgments.tsv", sep="\t", index=False)
    for name, salt in SALTS.items():
        save_embeddings(folder / f"data/embeddings/{name}.npy", ids, encode_texts(FakeEncoder(salt=salt), EPISODES))
    params = {"train": {"base_model": "package:fake", "batch_size": 99},
              "embed": {"batch_size": 4, "max_seq_length": 128},
              "e5": {"model": "package:fake-e5", "max_words": 3},
              "compute": {"engine": "local", "ray_address": None, "embed": {"actors": 2, "cpus_per_actor": 1}},
              "evaluate": {"index": index, "hnsw_m": 8, "hnsw_ef_search": 32, "depth": 100, "batch_size": 8,
                           "seed": 1, "resamples": 1000, "pinecone_index": "x", "pinecone_cloud": "aws",
                           "pinecone_region": "us-east-1"},
              "fusion": {"rrf_k": 60, "depth": 100,
                         "hybrid": {"method": "rrf", "weights": {"bm25": 1.0, "finetuned": 1.0}},
                         "shipped": {"method": "rrf", "weights": {"finetuned": 1.0, "use": 1.0}}}}
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

def test_synthetic_queries_merge_identical_queries():
    pairs = pd.DataFrame({"query": ["episode 12", "episode 12 ", "bread"], "episode_id": [ep(1), ep(2), ep(3)]})
    query_set = synthetic_queries(pairs, {ep(1), ep(2), ep(3)})
    assert query_set.queries == ["bread", "episode 12"]
    assert query_set.relevant == [{ep(3)}, {ep(1), ep(2)}]
    with pytest.raises(EvaluationError, match="not in the prepared episodes"):
        synthetic_queries(pairs, {ep(1)})


# --- runner and report ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("index_kind", ["exact", "hnsw"])
def test_runner_scores_every_system(index_kind):
    ids = [ep(i) for i in range(len(EPISODES))]
    models = {name: DenseModel(ids, encode_texts(FakeEncoder(salt=s), EPISODES), FakeEncoder(salt=s))
              for name, s in SALTS.items()}
    query_set = synthetic_queries(pd.DataFrame({"query": ["sourdough bread", "astronaut interview"],
                                                "episode_id": [ids[0], ids[4]]}), set(ids))
    runner = Runner(index_kind=index_kind, index_options={"m": 8, "ef_search": 32}, depth=30, fusions=FUSIONS)
    runs = runner.run(SYSTEMS, models, Corpus(ids, EPISODES), query_set)
    assert list(runs) == SYSTEMS
    for name in SYSTEMS:
        assert [{r[0]} for r in runs[name].ids] == query_set.relevant, name
        assert all(s == sorted(s, reverse=True) for s in runs[name].scores), name
    # each dense encoder saw every query once, in one batch
    assert all(len(m.encoder.calls) == 1 and len(m.encoder.calls[0]) == 2 for m in models.values())
    scored = score_set(runs, query_set, StatsConfig(seed=0, n_resamples=500))
    assert scored["hybrid"]["recall@10"] == 1.0 and scored["bm25"]["mrr@30"] == 1.0
    assert scored["base"]["ci95"]["mrr@30"] == [1.0, 1.0]
    tests = scored["significance"]
    assert {(t["system"], t["against"]) for t in tests} >= {("finetuned", "base"), ("shipped", "bm25"),
                                                            ("shipped", "use"), ("base", "bm25")}
    assert all(t["p_value"] == 1.0 for t in tests)  # every system is perfect here: nothing to tell apart
    assert ("ann_overlap@10" in details(runs, query_set)["base"]) == (index_kind == "hnsw")
    frame = runs_frame(query_set.ids, runs)
    assert list(frame.columns) == ["system", "query_id", "episode_id", "rank", "score"]
    assert len(frame) == sum(len(r) for run in runs.values() for r in run.ids)


def test_curated_query_set_keeps_unjudged_queries_for_pooling():
    queries = [CuratedQuery("q1", "a", "keyword", "en", "dev"), CuratedQuery("q2", "b", "question", "fr", "test")]
    judgments = pd.DataFrame({"query_id": ["q1", "q1"], "episode_id": [ep(1), ep(2)], "relevant": [1, 0],
                              "judge": "x"})
    query_set = curated_query_set(queries, judgments)
    assert query_set.ids == ["q1", "q2"] and query_set.relevant == [{ep(1)}, set()]
    assert query_set.judged == [{ep(1), ep(2)}, set()]
    assert query_set.attributes[1] == {"style": "question", "language": "fr", "split": "test"}


def test_evaluate_stage_end_to_end(tmp_path, monkeypatch):
    write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    stage = load_stage("evaluate")
    used = set()
    monkeypatch.setattr(stage, "load_params", recording_load_params(stage.load_params, used))
    loaded = []
    monkeypatch.setattr(stage, "load_encoder", lambda kind, spec: loaded.append((kind, spec)) or FakeEncoder(
        salt=SALTS[kind]))
    stage.main([])

    report = json.loads((tmp_path / "metrics/eval.json").read_text())
    assert set(report) == {"synthetic", "curated_dev", "curated_test"}
    for set_name, entry in report.items():
        for system in SYSTEMS:
            assert set(entry[system]) == {"recall@10", "recall@30", "mrr@30", "ci95"}
            for metric in ("recall@10", "recall@30", "mrr@30"):
                low, high = entry[system]["ci95"][metric]
                assert 0.0 <= low <= entry[system][metric] <= high <= 1.0
        assert all(0 < t["p_value"] <= 1 for t in entry["significance"])
    assert {row["subset"] for row in report["curated_test"]["by_subset"]} == {"style=keyword", "language=en"}
    # q002 has two relevant answers (and one judged irrelevant); q004 has none and is counted, not scored
    stats = json.loads((tmp_path / "stats/eval.json").read_text())
    assert stats["sizes"]["curated_test"] == {"queries": 2, "episodes": 8}
    assert stats["sizes"]["curated_dev"]["queries"] == 1 and stats["sizes"]["curated_unjudged"] == 1
    assert stats["sizes"]["synthetic"] == {"queries": 4, "episodes": 4}
    assert 0 < stats["systems"]["curated_test"]["bm25"]["judged@10"] <= 1
    runs = pd.read_parquet(tmp_path / "data/eval/runs/curated.parquet")
    assert set(runs["query_id"]) == {"q001", "q002", "q003", "q004"} and set(runs["system"]) == set(SYSTEMS)
    for name in ("synthetic", "curated_dev", "curated_test"):
        curve = pd.read_csv(tmp_path / f"plots/recall_at_k_{name}.csv")
        assert list(curve.columns) == ["k", *sorted(SYSTEMS)] and curve["k"].tolist() == list(range(1, 31))
        assert all(curve[system].is_monotonic_increasing for system in SYSTEMS)
    # evaluate depends on evaluate.*, fusion.* and the base and E5 model specs only: evaluate-only edits rerun it alone
    assert {key.split(".")[0] for key in used} == {"evaluate", "fusion", "train", "e5"}
    assert {key for key in used if key.startswith(("train.", "e5."))} == {"train.base_model", "e5.model"}
    assert ("base", "package:fake") in loaded and ("e5", "package:fake-e5") in loaded


def test_evaluate_stage_hnsw_reports_overlap_and_errors_are_one_line(tmp_path, monkeypatch):
    ids = write_inputs(tmp_path, index="hnsw")
    monkeypatch.chdir(tmp_path)
    stage = load_stage("evaluate")
    monkeypatch.setattr(stage, "load_encoder", lambda kind, spec: FakeEncoder(salt=SALTS[kind]))
    stage.main(["--systems", "base,bm25"])
    stats = json.loads((tmp_path / "stats/eval.json").read_text())
    assert stats["index"] == "hnsw" and 0 <= stats["systems"]["synthetic"]["base"]["ann_overlap@30"] <= 1
    assert set(json.loads((tmp_path / "metrics/eval.json").read_text())["synthetic"]) == {
        "base", "bm25", "significance"}

    with (tmp_path / "data/curated/judgments.tsv").open("a") as fh:
        fh.write(f"q001\t{'0' * 31}z\t1\ttest\n")
    with pytest.raises(SystemExit, match=r"judgments.tsv: row 7, column 'episode_id': .* not in the prepared"):
        stage.main([])
    with pytest.raises(SystemExit, match="unknown system 'bm26'"):
        stage.main(["--systems", "bm26"])
    assert ids


def test_embed_stage_writes_aligned_matrix(tmp_path, monkeypatch):
    ids = write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    stage = load_stage("embed")
    used = set()
    monkeypatch.setattr(stage, "load_params", recording_load_params(stage.load_params, used))
    seen = {}
    monkeypatch.setattr(stage, "OnnxEncoder", lambda folder, threads, max_seq_length: seen.update(
        folder=folder, threads=threads, max_seq_length=max_seq_length) or FakeEncoder())
    monkeypatch.setattr(stage, "load_use", lambda threads: seen.update(threads=threads) or FakeEncoder())
    e5 = FakeEncoder()
    monkeypatch.setattr(stage, "E5Encoder", lambda spec, role, threads: seen.update(spec=spec, role=role,
                                                                                     threads=threads) or e5)
    stage.main(["--model", "base", "--onnx", "models/onnx/base", "--out", "out/base.npy"])
    loaded_ids, matrix = load_embeddings(tmp_path / "out/base.npy", expected_ids=ids)
    assert matrix.shape == (len(EPISODES), 64)
    assert seen == {"folder": "models/onnx/base", "threads": 0, "max_seq_length": 128}
    compute = {"compute.engine", "compute.ray_address", "compute.embed"}  # where it runs (the same matrix anywhere)
    assert used == {"embed.batch_size", "embed.max_seq_length"} | compute  # the export folder stands for the model spec
    with pytest.raises(SystemExit, match="--onnx is required"):
        stage.main(["--model", "finetuned", "--out", "out/finetuned.npy"])

    used.clear()
    seen.clear()
    stage.main(["--model", "use", "--out", "out/use.npy"])
    assert seen == {"threads": USE_THREADS}
    assert used == {"embed.batch_size"} | compute  # embed_use reruns only when its batch size (or engine) changes

    used.clear()
    seen.clear()
    stage.main(["--model", "e5", "--out", "out/e5.npy"])
    assert seen == {"spec": "package:fake-e5", "role": "passage", "threads": 0}
    encoded = sorted(text for call in e5.calls for text in call)
    assert encoded == sorted(" ".join(text.split()[:3]) for text in EPISODES)  # each episode's first e5.max_words
    assert load_embeddings(tmp_path / "out/e5.npy", expected_ids=ids)[1].shape == (len(EPISODES), 64)
    assert used == {"embed.batch_size", "e5.model", "e5.max_words"} | compute
