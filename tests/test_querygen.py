"""generate_queries: the filter, the three generators on their real code paths (tiny local models), exact episode
counts, seeded reproducibility, resuming after an interruption, and the stage script."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import test_querygen_tiny as tiny
from podsearch.querygen import QueryGenError, generate_pairs, make_generator
from podsearch.querygen import runner
from podsearch.querygen.base import Candidate, judge
from podsearch.querygen.hf import length_sorted_batches
from podsearch.querygen.instruct import parse_queries
from podsearch.querygen.pseudo import ICT, SHOW_TITLE, TITLE, split_sentences

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory) -> Path:
    return tiny.make_t5(tmp_path_factory.mktemp("t5"))


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    return tiny.make_llama(tmp_path_factory.mktemp("llama"))


def make_params(method: str, model_dir: Path | None = None, **overrides) -> dict:
    params = {
        "method": method, "queries_per_episode": 3, "seed": 7, "shard_size": 5, "max_query_words": 16,
        "copy_min_words": 4,
        "doc2query": {"model": str(model_dir), "max_input_tokens": 32, "max_length": 10, "top_p": 0.95,
                      "batch_size": 4},
        "instruct": {"model": str(model_dir), "gguf_file": None, "max_input_tokens": 24, "max_new_tokens": 10,
                     "temperature": 0.8, "top_p": 0.95, "batch_size": 4},
    }
    params.update(overrides)
    return params


def candidates_of(shard_dir: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(shard_dir.glob("shard-*.parquet"))], ignore_index=True)


def test_judge_counts_each_degenerate_kind():
    description = "We talk about the history of the bitcoin price crash in december"
    cands = [Candidate(q, "x") for q in [
        " ", "one two three four five six seven eight", "history of the Bitcoin price", "bitcoin crash",
        "Bitcoin  CRASH!", "price history", "why bitcoin fell", "crypto news",
    ]]
    statuses = judge(cands, description, max_words=6, copy_min_words=4, limit=3)
    assert statuses == [
        "empty", "too_long", "copies_description", "kept", "duplicate", "kept", "kept", "surplus",
    ]


def test_judge_checks_copies_against_the_passage_when_given():
    # An ICT sentence is in the description by construction; what matters is whether its passage still holds it.
    sentence = "Anna shares her starter recipe today"
    description = f"{sentence}. More bread talk."
    assert judge([Candidate(sentence, ICT, "More bread talk.")], description,
                 max_words=16, copy_min_words=4, limit=3) == ["kept"]
    assert judge([Candidate(sentence, ICT, f"Intro. {sentence}.")], description,
                 max_words=16, copy_min_words=4, limit=3) == ["copies_description"]


def test_length_sorted_batches_cover_every_row_once():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 0, 11, 10, 12]
    batches = length_sorted_batches(lengths, 4)
    assert [len(b) for b in batches] == [4, 4, 4, 1]
    assert sorted(i for b in batches for i in b) == list(range(13))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True)


def test_parse_queries_strips_decoration_and_cut_lines():
    text = "Here are three queries:\n1. \"bitcoin crash\"\n- sourdough recipe\n\n3) space rocket launch\nhalf writ"
    assert parse_queries(text, finished=True) == ["bitcoin crash", "sourdough recipe", "space rocket launch", "half writ"]
    assert parse_queries(text, finished=False) == ["bitcoin crash", "sourdough recipe", "space rocket launch"]
    assert parse_queries("a query\n", finished=False) == ["a query"]


def test_pseudo_on_real_sample(prepared_df, tmp_path):
    pairs, metrics = generate_pairs(prepared_df, make_params("pseudo", shard_size=8), tmp_path / "shards")
    n = len(prepared_df)
    assert list(pairs.columns) == ["query", "episode_id", "generator", "passage"]
    assert metrics["episodes"] == n and metrics["shards"] == -(-n // 8)
    assert sum(metrics["episodes_by_query_count"].values()) == n
    assert pairs.groupby("episode_id").size().max() <= 3
    assert metrics["pairs"] == len(pairs) == sum(metrics["queries_by_generator"].values())
    assert set(pairs["generator"]) <= {TITLE, ICT, SHOW_TITLE}
    text = prepared_df.set_index("episode_id")["text"]
    for row in pairs.itertuples():
        # The query is cut out of the episode text and left out of its passage.
        assert row.passage and row.passage != text[row.episode_id]
        if row.generator == TITLE:
            assert row.query in text[row.episode_id]
    ict = pairs[pairs["generator"] == ICT]
    assert len(ict) > 0
    desc = prepared_df.set_index("episode_id")["description"]
    assert all(q in desc[e] for q, e in zip(ict["query"], ict["episode_id"]))
    assert all(q not in p for q, p in zip(ict["query"], ict["passage"]))


def test_split_sentences_keeps_only_query_sized_ones():
    assert split_sentences("Hi. We talk about bread today! Is rye good? Ok") == ["We talk about bread today!", "Is rye good?"]


def test_doc2query_every_episode_gets_its_samples(t5_dir, tmp_path):
    episodes = tiny.episodes(13)  # 13 = 3 shards of 5 (last short), batches of 4 (last short)
    params = make_params("doc2query", t5_dir)
    pairs, metrics = generate_pairs(episodes, params, tmp_path / "a")
    cands = candidates_of(tmp_path / "a")
    assert cands.groupby("episode_id").size().reindex(episodes["episode_id"]).tolist() == [3] * 13
    assert metrics["candidates"] == 39 and metrics["episodes"] == 13
    assert sum(metrics["rejected"].values()) + metrics["surplus_candidates"] + metrics["pairs"] == 39
    assert list(pairs.columns) == ["query", "episode_id", "generator"]
    assert set(pairs["generator"]) <= {"doc2query"}
    # Same params, fresh folder: identical candidates (seeded per shard).
    generate_pairs(episodes, params, tmp_path / "b")
    pd.testing.assert_frame_equal(cands, candidates_of(tmp_path / "b"))


def test_instruct_runs_batched_chat_prompts(llama_dir, tmp_path):
    episodes = tiny.episodes(13)
    params = make_params("instruct", llama_dir)
    generator = make_generator(params)
    generator.load()
    assert generator.tokenizer.padding_side == "left"
    prompt = generator.prompt(episodes["title"][0], episodes["description"][0])
    assert episodes["title"][0] in prompt and prompt.endswith("<|im_start|>assistant\n")
    done = []
    out = generator.generate(episodes, seed=1, progress=done.append)
    assert len(out) == 13 and sum(done) == 13
    assert all(c.generator == "instruct" for cands in out for c in cands)
    assert out == generator.generate(episodes, seed=1, progress=done.append)
    _, metrics = generate_pairs(episodes, params, tmp_path / "shards")
    assert metrics["episodes"] == 13 and metrics["method"] == "instruct"
    assert sum(metrics["episodes_by_query_count"].values()) == 13


def test_interrupted_run_resumes_to_the_same_output(t5_dir, tmp_path, monkeypatch):
    episodes = tiny.episodes(13)
    params = make_params("doc2query", t5_dir, shard_size=4)
    full_pairs, _ = generate_pairs(episodes, params, tmp_path / "full")

    real_write = runner._write_shard
    written = []

    def crash_after_two(path, rows, meta):
        if len(written) == 2:
            raise KeyboardInterrupt("simulated interruption")
        real_write(path, rows, meta)
        written.append(path.name)

    monkeypatch.setattr(runner, "_write_shard", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        generate_pairs(episodes, params, tmp_path / "resumed")
    monkeypatch.setattr(runner, "_write_shard", real_write)
    assert sorted(p.name for p in (tmp_path / "resumed").glob("shard-*")) == written

    generated = []
    real_generate = runner._generate_shard
    monkeypatch.setattr(runner, "_generate_shard", lambda g, shard, *a: generated.append(len(shard)) or real_generate(g, shard, *a))
    pairs, metrics = generate_pairs(episodes, params, tmp_path / "resumed")
    assert generated == [4, 1]  # only shards 2 and 3 (13 = 4+4+4+1) were redone
    assert metrics["shards_reused"] == 2 and metrics["shards"] == 4
    pd.testing.assert_frame_equal(pairs, full_pairs)


def test_shards_from_other_params_are_not_reused(tmp_path):
    episodes = tiny.episodes(13)
    generate_pairs(episodes, make_params("pseudo"), tmp_path)
    _, again = generate_pairs(episodes, make_params("pseudo"), tmp_path)
    assert again["shards_reused"] == again["shards"] == 3
    _, reseeded = generate_pairs(episodes, make_params("pseudo", seed=8), tmp_path)
    assert reseeded["shards_reused"] == 0
    _, fewer = generate_pairs(episodes.iloc[:6], make_params("pseudo", seed=8), tmp_path)
    assert fewer["shards_reused"] == 0 and len(list(tmp_path.glob("shard-*"))) == 2


def test_bad_input_and_method_are_clear_errors(tmp_path):
    with pytest.raises(QueryGenError, match="missing column"):
        generate_pairs(tiny.episodes(3).drop(columns="title"), make_params("pseudo"), tmp_path)
    with pytest.raises(QueryGenError, match="not one of"):
        make_generator(make_params("magic"))


def test_stage_writes_pairs_and_metrics(tmp_path, monkeypatch):
    import stages.generate_queries as stage

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["querygen"]["method"] = "pseudo"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    tiny.episodes(9).assign(show_id="s", language="English", pub_date="", audio="").to_parquet(tmp_path / "ep.parquet")
    monkeypatch.chdir(tmp_path)
    stage.main(["--episodes", "ep.parquet", "--out", "pairs.parquet", "--shards", "shards", "--metrics", "m.json"])
    pairs = pd.read_parquet("pairs.parquet")
    metrics = json.loads(Path("m.json").read_text())
    assert metrics["method"] == "pseudo" and metrics["episodes"] == 9 and metrics["pairs"] == len(pairs)
    assert {"query", "episode_id", "generator"} <= set(pairs.columns)
    assert pairs["episode_id"].map(type).eq(str).all()
