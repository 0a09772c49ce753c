"""Training stage: tiny recipe-shaped model end to end, dense-duplicate batching, subsampling, in-batch eval."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from podsearch.data import PREPARED_COLUMNS
from podsearch.training import (
    TrainConfig,
    TrainDataError,
    add_negatives,
    attach_distillation,
    attach_documents,
    denoise,
    load_model,
    make_inbatch_evaluator,
    other_languages,
    round_robin_subsample,
    train_encoder,
)
from tests.tiny_models import make_tiny_distiluse

ROOT = Path(__file__).resolve().parents[1]

TOPICS = ["jazz history", "football tactics", "true crime", "startup money", "space science", "cooking pasta",
          "film reviews", "kids stories", "world news", "health sleep", "video games", "travel japan"]


def _episodes(n: int) -> pd.DataFrame:
    ids = [f"{i:032x}" for i in range(n)]
    texts = [f"episode {i} about {TOPICS[i % len(TOPICS)]}. a show on {TOPICS[i % len(TOPICS)]} and more"
             for i in range(n)]
    frame = pd.DataFrame({column: [f"{column} {i}" for i in range(n)] for column in PREPARED_COLUMNS})
    frame["episode_id"], frame["text"] = ids, texts
    return frame


def _pairs(episodes: pd.DataFrame, per_episode: int = 3) -> pd.DataFrame:
    rows = [
        {"query": f"{k} {TOPICS[i % len(TOPICS)]} {i}", "episode_id": episode_id, "generator": "pseudo-title"}
        for i, episode_id in enumerate(episodes["episode_id"]) for k in ("about", "podcast on", "best")[:per_episode]
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> str:
    words = " ".join(TOPICS + ["episode", "about", "show", "more", "best", "podcast", "on"]).split()
    return make_tiny_distiluse(tmp_path_factory.mktemp("tiny"), words=words)


class _Alarm:
    """Fail instead of hanging the suite if the sampler never finishes (the legacy no-duplicates loader could)."""

    def __init__(self, seconds: int):
        self.seconds = seconds

    def __enter__(self):
        def _raise(*_):
            raise TimeoutError(f"no-duplicates training did not finish in {self.seconds} s")

        self.previous = signal.signal(signal.SIGALRM, _raise)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.previous)


def test_dense_duplicates_do_not_hang_and_every_pair_is_trained(tiny_model_dir, tmp_path):
    from datasets import Dataset
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    episodes = _episodes(5)
    pairs = attach_documents(_pairs(episodes), episodes)  # 15 pairs, only 5 distinct documents
    config = TrainConfig(base_model=tiny_model_dir, batch_size=64, max_seq_length=32, logging_steps=1, device="cpu")

    upstream = NoDuplicatesBatchSampler(Dataset.from_dict({"anchor": pairs["query"].tolist(),
                                                           "positive": pairs["document"].tolist()}),
                                        batch_size=64, drop_last=False)
    assert len(upstream) == 1  # the length the Trainer would trust: it would train on 5 of 15 pairs

    with _Alarm(60):
        result = train_encoder(load_model(config), pairs, config, tmp_path / "ckpt")
    metrics = result.metrics
    assert metrics["trained_pairs"] == 15
    assert metrics["trained_distinct_pairs"] == 15
    assert metrics["steps"] == 3 == metrics["batches_per_epoch"]  # 3 batches of the 5 distinct documents
    assert metrics["smallest_batch"] == 5
    assert metrics["pairs_per_second"] > 0


def test_negatives_hard_and_same_show(tiny_model_dir, tmp_path):
    episodes = _episodes(12)
    episodes["show_id"] = [f"show{i % 4}" for i in range(12)]  # 4 shows of 3 episodes
    pairs = attach_documents(_pairs(episodes, per_episode=1), episodes)
    vectors = dict(zip(episodes["episode_id"], np.eye(12, 16, dtype=np.float32)))  # orthogonal episodes
    # Each query sits right on its own episode, a little towards the next one: that one is its hard negative.
    ids = episodes["episode_id"].tolist()
    queries = np.stack([vectors[ids[i]] + 0.3 * vectors[ids[(i + 1) % 12]] for i in range(12)])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    hard, counts = add_negatives(pairs, episodes, "hard", queries, vectors, depth=12)
    assert counts == {"same_show": 0, "hard": 12, "no_negative": 0}
    text = episodes.set_index("episode_id")["text"]
    assert hard["negative"].tolist() == [text[ids[(i + 1) % 12]] for i in range(12)]
    same, counts = add_negatives(pairs, episodes, "same_show", queries, vectors)
    assert counts["same_show"] == 12
    show = episodes.set_index("episode_id")["show_id"]
    by_text = dict(zip(episodes["text"], episodes["episode_id"]))
    for episode_id, negative in zip(same["episode_id"], same["negative"]):
        assert by_text[negative] != episode_id and show[by_text[negative]] == show[episode_id]
    with pytest.raises(TrainDataError, match="train.negatives: 'random'"):
        add_negatives(pairs, episodes, "random", queries, vectors)
    # Triplets train end to end (the loss reads anchor, positive, negative), with either loss
    for loss in ("mnrl", "cached_mnrl"):
        config = TrainConfig(base_model=tiny_model_dir, batch_size=6, max_seq_length=32, device="cpu", loss=loss,
                             mini_batch_size=2)
        result = train_encoder(load_model(config), hard, config, tmp_path / loss)
        assert result.metrics["trained_pairs"] == 12 and type(result.loss).__name__.startswith(
            {"mnrl": "Multiple", "cached_mnrl": "Cached"}[loss])
    with pytest.raises(TrainDataError, match="train.loss: 'triplet'"):
        train_encoder(load_model(config), hard, TrainConfig(base_model=tiny_model_dir, loss="triplet"), tmp_path)


def test_round_robin_subsample_takes_one_pair_per_episode_first():
    episodes = _episodes(10)
    pairs = _pairs(episodes)
    picked = round_robin_subsample(pairs, 10, seed=1)
    assert len(picked) == 10 and picked["episode_id"].nunique() == 10
    more = round_robin_subsample(pairs, 15, seed=1)
    assert more["episode_id"].value_counts().max() == 2 and more["episode_id"].nunique() == 10
    pd.testing.assert_frame_equal(picked, round_robin_subsample(pairs, 10, seed=1))
    assert not picked.equals(round_robin_subsample(pairs, 10, seed=2))
    assert len(round_robin_subsample(pairs, None, seed=1)) == 30


def test_other_languages_first_takes_every_pair_outside_the_main_language_before_the_rest():
    episodes = _episodes(12)
    episodes["language"] = ["English"] * 9 + ["German", "German", "Dutch"]
    pairs = _pairs(episodes)  # 3 per episode: 27 English, 9 other
    language, other = other_languages(pairs, episodes)
    assert int(other.sum()) == 9 and set(language[~other]) == {"English"}
    picked = round_robin_subsample(pairs.assign(language=language), 12, seed=1, first=other)
    assert (picked["language"] != "English").sum() == 9
    assert picked.loc[picked["language"] == "English", "episode_id"].nunique() == 3
    # among the pairs that come first, still one per episode before a second
    few = round_robin_subsample(pairs.assign(language=language), 3, seed=1, first=other)
    assert few["episode_id"].nunique() == 3 and set(few["language"]) <= {"German", "Dutch"}
    # nothing marked first: the same draw as without the option
    pd.testing.assert_frame_equal(round_robin_subsample(pairs, 12, seed=1),
                                  round_robin_subsample(pairs, 12, seed=1, first=pd.Series(False, pairs.index)))
    # a tie for the main language goes to the first name, so the choice never depends on row order
    tied = episodes.assign(language=["English"] * 6 + ["Dutch"] * 6)
    tied_language, tied_other = other_languages(pairs.iloc[::-1], tied)
    assert set(tied_language[~tied_other]) == {"Dutch"}


def test_attach_documents_prefers_passage_and_rejects_unknown_episodes():
    episodes = _episodes(3)
    pairs = _pairs(episodes, per_episode=1)
    pairs["passage"] = ["chunk one", None, ""]
    docs = attach_documents(pairs, episodes)["document"].tolist()
    assert docs == ["chunk one", episodes["text"][1], episodes["text"][2]]
    bad = pd.concat([pairs, pd.DataFrame([{"query": "q", "episode_id": "f" * 32, "generator": "x"}])])
    with pytest.raises(TrainDataError, match=r"row 3, column 'episode_id'"):
        attach_documents(bad, episodes)


def test_inbatch_evaluator_matches_upstream_and_encodes_each_text_once(tiny_model_dir):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import RerankingEvaluator

    episodes = _episodes(6)
    eval_pairs = _pairs(episodes)
    model = SentenceTransformer(tiny_model_dir, device="cpu")
    ours = make_inbatch_evaluator(eval_pairs, episodes)
    sample = ours.samples[0]
    assert len(sample["positive"]) == 1 and len(sample["negative"]) == 5  # all other eval episodes
    upstream = RerankingEvaluator(ours.samples, at_k=5, name="inbatch", write_csv=False)

    encoded = []
    original = model.encode_document

    def counting(inputs, **kwargs):
        encoded.extend(inputs)
        return original(inputs, **kwargs)

    model.encode_document = counting
    scores = ours(model)
    assert len(encoded) == 6  # each eval episode once, not 18 queries x 6 candidates
    model.encode_document = original
    expected = upstream(model)
    for key in ("inbatch_map", "inbatch_mrr@5", "inbatch_ndcg@5"):
        assert scores[key] == pytest.approx(expected[key], abs=1e-5)


def test_train_stage_end_to_end_saves_reloadable_model_and_card(tiny_model_dir, tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    import stages.train as stage

    episodes = _episodes(24)
    pairs = _pairs(episodes)
    split_dir = tmp_path / "splits"
    split_dir.mkdir()
    eval_ids = set(episodes["episode_id"][:6])
    pairs[~pairs["episode_id"].isin(eval_ids)].to_parquet(split_dir / "train.parquet")
    pairs[pairs["episode_id"].isin(eval_ids)].to_parquet(split_dir / "eval.parquet")
    episodes.to_parquet(tmp_path / "episodes.parquet")
    params = {"train": {
        "base_model": tiny_model_dir, "batch_size": 8, "epochs": 1, "warmup_ratio": 0.1, "learning_rate": 3.0e-4,
        "weight_decay": 0.01, "max_grad_norm": 1.0, "scale": 20.0, "max_seq_length": 32, "max_train_pairs": 40,
        "seed": 7, "logging_steps": 2, "device": "auto",
    }}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    before = SentenceTransformer(tiny_model_dir, device="cpu").encode(["jazz history"])

    with _Alarm(60):
        stage.main(["--train", "splits/train.parquet", "--eval", "splits/eval.parquet",
                    "--episodes", "episodes.parquet", "--out", "model", "--metrics", "train.json",
                    "--stats", "stats.json", "--timings", "logs/train.json", "--live", "live"])

    quality = json.loads(Path("train.json").read_text())
    assert set(quality) == {"inbatch_mrr@5_before", "inbatch_mrr@5_after"}  # metrics: quality only
    timings = json.loads(Path("logs/train.json").read_text())
    assert timings["train_seconds"] > 0 and timings["pairs_per_second"] > 0
    metrics = {**quality, **json.loads(Path("stats.json").read_text())}
    assert not set(timings) & set(metrics)
    assert metrics["train_pairs"] == 40 and metrics["train_pairs_available"] == 54
    assert metrics["trained_pairs"] == 40 and metrics["train_episodes"] == 18
    assert metrics["steps"] == 5  # 40 pairs over 18 distinct documents fill batches of 8
    for key in ("inbatch_mrr@5_before", "inbatch_mrr@5_after", "inbatch_map_before", "inbatch_map_after"):
        assert 0.0 <= metrics[key] <= 1.0
    # The Trainer's curves through DVCLive, and no wall time among them (a rerun writes the same bytes)
    loss = pd.read_csv("live/plots/metrics/loss.tsv", sep="\t")
    assert list(loss.columns) == ["step", "loss"] and loss["step"].tolist() == [1, 2, 4]
    live = json.loads(Path("live/metrics.json").read_text())
    assert live["loss"] == pytest.approx(loss["loss"].iloc[-1]) and live["step"] == 5
    assert live["train"]["loss"] == pytest.approx(metrics["final_loss"])  # the Trainer's mean over the run
    assert not list(Path("live").rglob("*runtime*")) and not list(Path("live").rglob("*per_second*"))
    assert not Path("live/params.yaml").exists() and not Path("live/dvc.yaml").exists()

    reloaded = SentenceTransformer("model", device="cpu")
    after = reloaded.encode(["jazz history"])
    assert after.shape == (1, 16) and not np.allclose(before, after)
    assert [type(m).__name__ for m in reloaded] == ["Transformer", "Pooling", "Dense"]

    card = Path("model/README.md").read_text()
    assert '"scale": 20.0' in card and '"similarity_fct": "cos_sim"' in card
    assert '"learning_rate": 0.0003' in card and '"per_device_train_batch_size": 8' in card
    assert '"batch_sampler": "no_duplicates"' in card and '"seed": 7' in card
    assert '"warmup_steps": 0.1' in card and '"warmup_steps_resolved": 1' in card
    assert "MultipleNegativesRankingLoss" in card and "(2): Dense(" in card
    assert "`pseudo-title` (40 pairs)" in card and f"{metrics['inbatch_map_after']:.4f}" in card


def _labelled(episodes: pd.DataFrame, pairs: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The pseudolabel stage's columns for `pairs`: two negatives each, teacher scores that favour the positive."""
    ids = episodes["episode_id"].tolist()
    out = pairs.copy()
    own = [ids.index(e) for e in pairs["episode_id"]]
    out["negative_ids"] = [[ids[(i + 1) % len(ids)], ids[(i + 5) % len(ids)]] for i in own]
    out["teacher_positive"] = rng.uniform(0.6, 0.8, len(out)).astype(np.float32)
    out["teacher_negatives"] = [[float(rng.uniform(0.1, 0.5)), float(rng.uniform(0.1, 0.5))] for _ in own]
    out["teacher_rank"] = np.asarray([1 + i % 3 for i in range(len(out))], dtype=np.int32)
    return out


@pytest.mark.parametrize("loss", ["margin_mse", "kldiv"])
def test_distillation_moves_the_student_towards_the_teacher(tiny_model_dir, tmp_path, loss):
    """MarginMSE fits the student's cosine margins to the teacher's; KL its softmax over the candidates. Either way
    the student's disagreement with the teacher must fall after training on the labels."""
    import torch
    from sentence_transformers import util

    episodes = _episodes(12)
    pairs = _labelled(episodes, attach_documents(_pairs(episodes, per_episode=1), episodes), np.random.default_rng(0))
    data = attach_distillation(pairs, episodes, 2)
    assert data["label"].map(len).eq(3).all() and {"negative_1", "negative_2"} <= set(data.columns)
    config = TrainConfig(base_model=tiny_model_dir, batch_size=4, max_seq_length=32, device="cpu", loss=loss,
                         learning_rate=5e-3, epochs=8, warmup_ratio=0.0, distill_negatives=2, temperature=0.05)
    model = load_model(config)

    def disagreement() -> float:
        def encode(texts):
            return torch.tensor(model.encode(list(texts)))
        q = encode(data["query"])
        student = torch.stack([util.pairwise_cos_sim(q, encode(data[c])) for c in ("document", "negative_1",
                                                                                     "negative_2")], dim=1)
        teacher = torch.tensor(data["label"].tolist())
        if loss == "margin_mse":
            return float(((student[:, :1] - student[:, 1:]) - (teacher[:, :1] - teacher[:, 1:])).pow(2).mean())
        p = torch.softmax(teacher / 0.05, dim=1)
        return float((p * (p.log() - torch.log_softmax(student / 0.05, dim=1))).sum(dim=1).mean())

    before = disagreement()
    result = train_encoder(model, data, config, tmp_path / "ckpt")
    assert type(result.loss).__name__ == {"margin_mse": "MarginMSELoss", "kldiv": "DistillKLDivLoss"}[loss]
    assert result.metrics["steps"] == 24  # 12 pairs in batches of 4, 8 epochs: plain batches, no dedup
    assert disagreement() < 0.5 * before


def test_distillation_inputs_are_checked(tiny_model_dir):
    episodes = _episodes(6)
    pairs = attach_documents(_pairs(episodes, per_episode=1), episodes)
    with pytest.raises(TrainDataError, match="run the pseudolabel stage"):
        attach_distillation(pairs, episodes, 1)
    labelled = _labelled(episodes, pairs, np.random.default_rng(1))
    with pytest.raises(TrainDataError, match="train.distill_negatives: 3"):
        attach_distillation(labelled, episodes, 3)
    with_passage = labelled.assign(passage=["a cut passage"] + [None] * 5)
    assert attach_documents(with_passage, episodes)["document"].iloc[0] == "a cut passage"
    # what distillation trains on: the whole episode, the text the teacher scored
    whole = attach_documents(with_passage, episodes, use_passage=False)["document"]
    assert whole.tolist() == episodes.set_index("episode_id")["text"][pairs["episode_id"]].tolist()
    kept, counts = denoise(labelled, 2)
    assert counts == {"kept": 4, "teacher_rank_too_low": 2} and kept["teacher_rank"].max() == 2
    assert denoise(labelled, None) == (labelled, {})
    with pytest.raises(TrainDataError, match="teacher_rank"):
        denoise(pairs, 5)
    with pytest.raises(TrainDataError, match="train.negatives: 'hard' with train.loss margin_mse"):
        TrainConfig.from_params({"base_model": tiny_model_dir, "loss": "margin_mse", "negatives": "hard"})


@pytest.mark.parametrize("maker", ["distiluse", "bert"])
def test_freeze_layers_trains_only_the_layers_above(tmp_path, maker):
    """train.freeze_layers: the token embeddings and the bottom N layers keep the base's weights bit for bit, the
    layers above them do train; asking for more layers than the model has is a config error."""
    import torch

    from podsearch.training import transformer_layers
    from tests.tiny_models import make_tiny_bert

    words = " ".join(TOPICS + ["episode", "about", "show", "more", "best", "podcast", "on"]).split()
    folder = (make_tiny_distiluse if maker == "distiluse" else make_tiny_bert)(tmp_path / "m", words=words)
    episodes = _episodes(12)
    pairs = _labelled(episodes, attach_documents(_pairs(episodes, per_episode=1), episodes), np.random.default_rng(0))
    config = TrainConfig(base_model=folder, batch_size=4, max_seq_length=32, device="cpu", loss="margin_mse",
                         learning_rate=5e-3, epochs=2, warmup_ratio=0.0, distill_negatives=2, freeze_layers=1)
    model = load_model(config)
    embeddings, layers = transformer_layers(model)
    before = [[p.detach().clone() for p in m.parameters()] for m in (embeddings, layers[0], layers[1])]
    train_encoder(model, attach_distillation(pairs, episodes, 2), config, tmp_path / "ckpt")
    after = [list(m.parameters()) for m in (embeddings, layers[0], layers[1])]
    unchanged = [all(torch.equal(b, a) for b, a in zip(bs, as_)) for bs, as_ in zip(before, after)]
    assert unchanged == [True, True, False]
    with pytest.raises(TrainDataError, match="train.freeze_layers: 3; the model has 2 layers"):
        load_model(TrainConfig(base_model=folder, device="cpu", freeze_layers=3))
