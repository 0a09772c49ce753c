"""Training stage: tiny recipe-shaped model end to end, every loss, dense-duplicate batching, subsampling, denoising,
in-batch eval."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from podsearch.data import PREPARED_COLUMNS
from podsearch.tiny_models import make_tiny_distiluse
from podsearch.training import (
    TrainConfig,
    TrainDataError,
    attach_distillation,
    attach_documents,
    denoise,
    load_model,
    make_inbatch_evaluator,
    round_robin_subsample,
    run_inbatch_eval,
    train_encoder,
)

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
        run = train_encoder(load_model(config), pairs, config, tmp_path / "ckpt")
    stats = run.stats
    assert stats["trained_pairs"] == 15
    assert stats["trained_distinct_pairs"] == 15
    assert stats["steps"] == 3 == stats["batches_per_epoch"]  # 3 batches of the 5 distinct documents
    assert stats["smallest_batch"] == 5
    assert run.timings["pairs_per_second"] > 0 and run.metrics == {}  # no evaluator given
    assert not list((tmp_path / "ckpt").iterdir())  # the Trainer saves nothing in its output_dir


@pytest.mark.parametrize("loss", ["mnrl", "cached_mnrl"])
def test_in_batch_negative_losses_train_on_pairs(tiny_model_dir, tmp_path, loss):
    episodes = _episodes(12)
    pairs = attach_documents(_pairs(episodes, per_episode=1), episodes)
    config = TrainConfig(base_model=tiny_model_dir, batch_size=6, max_seq_length=32, device="cpu", loss=loss,
                         mini_batch_size=2)
    run = train_encoder(load_model(config), pairs, config, tmp_path / loss)
    assert run.stats["trained_pairs"] == 12 and run.stats["steps"] == 2 and run.stats["negatives"] == {}
    assert type(run.loss).__name__ == {"mnrl": "MultipleNegativesRankingLoss",
                                       "cached_mnrl": "CachedMultipleNegativesRankingLoss"}[loss]
    if loss == "cached_mnrl":
        assert run.loss.mini_batch_size == 2


def test_unknown_loss_is_named(tiny_model_dir, tmp_path):
    episodes = _episodes(4)
    pairs = attach_documents(_pairs(episodes, per_episode=1), episodes)
    config = TrainConfig(base_model=tiny_model_dir, device="cpu", loss="triplet")
    with pytest.raises(TrainDataError, match="train.loss: 'triplet'"):
        train_encoder(load_model(config), pairs, config, tmp_path)


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


def test_attach_documents_prefers_passage_and_rejects_unknown_episodes():
    episodes = _episodes(3)
    pairs = _pairs(episodes, per_episode=1)
    pairs["passage"] = ["chunk one", None, ""]
    docs = attach_documents(pairs, episodes)["document"].tolist()
    assert docs == ["chunk one", episodes["text"][1], episodes["text"][2]]
    bad = pd.concat([pairs, pd.DataFrame([{"query": "q", "episode_id": "f" * 32, "generator": "x"}])])
    with pytest.raises(TrainDataError, match=r"row 3, column 'episode_id'"):
        attach_documents(bad, episodes)


def test_inbatch_evaluator_matches_an_independent_ranking_and_encodes_each_text_once(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    episodes = _episodes(6)
    eval_pairs = _pairs(episodes)
    model = SentenceTransformer(tiny_model_dir, device="cpu")
    evaluator = make_inbatch_evaluator(eval_pairs, episodes)

    encoded = []
    original = model.encode_document

    def counting(inputs, **kwargs):
        encoded.extend(inputs)
        return original(inputs, **kwargs)

    model.encode_document = counting
    scores = run_inbatch_eval(evaluator, model)
    assert len(encoded) == 6  # each eval episode once, not 18 queries x 6 candidates
    model.encode_document = original

    # Each query's cosine with every eval episode, and the rank of its own episode among them
    ids = sorted(eval_pairs["episode_id"].unique())
    queries = model.encode(eval_pairs["query"].tolist())
    documents = model.encode(episodes.set_index("episode_id")["text"][ids].tolist())
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    documents /= np.linalg.norm(documents, axis=1, keepdims=True)
    similarity = queries @ documents.T
    own = similarity[np.arange(len(queries)), [ids.index(e) for e in eval_pairs["episode_id"]]]
    rank = 1 + (similarity > own[:, None]).sum(axis=1)
    assert len(set(rank)) > 1  # the check means something: not every query finds its episode first
    expected = {"mrr@5": np.mean(np.where(rank <= 5, 1 / rank, 0.0)), "map": np.mean(1 / rank),
                "ndcg@5": np.mean(np.where(rank <= 5, 1 / np.log2(rank + 1), 0.0))}
    assert scores == pytest.approx(expected, abs=1e-6)


STAGE_ARGS = ["--train", "splits/train.parquet", "--eval", "splits/eval.parquet", "--episodes", "episodes.parquet",
              "--out", "model", "--metrics", "train.json", "--stats", "stats.json", "--timings", "logs/train.json",
              "--live", "live"]


def _stage_inputs(folder: Path, base_model: str, labelled: bool = False, **train) -> pd.DataFrame:
    """STAGE_ARGS' inputs in `folder`: 24 episodes (the last 6 German), 3 pairs each, the first 6 episodes' pairs for
    eval, params.yaml's train section. Returns the episodes."""
    episodes = _episodes(24).assign(language=["English"] * 18 + ["German"] * 6)
    pairs = _pairs(episodes)
    if labelled:
        pairs = _labelled(episodes, pairs, np.random.default_rng(0))
    (folder / "splits").mkdir(parents=True)
    is_eval = pairs["episode_id"].isin(set(episodes["episode_id"][:6]))
    pairs[~is_eval].to_parquet(folder / "splits/train.parquet")
    pairs[is_eval].to_parquet(folder / "splits/eval.parquet")
    episodes.to_parquet(folder / "episodes.parquet")
    params = {
        "base_model": base_model, "batch_size": 8, "epochs": 1, "warmup_ratio": 0.1, "learning_rate": 3.0e-4,
        "weight_decay": 0.01, "max_grad_norm": 1.0, "scale": 20.0, "max_seq_length": 32, "max_train_pairs": 40,
        "seed": 7, "logging_steps": 2, "device": "auto", **train,
    }
    (folder / "params.yaml").write_text(yaml.safe_dump({"train": params}))
    return episodes


def test_train_stage_end_to_end_saves_reloadable_model_and_card(tiny_model_dir, tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    import stages.train as stage

    episodes = _stage_inputs(tmp_path, tiny_model_dir)
    monkeypatch.chdir(tmp_path)
    before = SentenceTransformer(tiny_model_dir, device="cpu").encode(["jazz history"])

    with _Alarm(60):
        stage.main(STAGE_ARGS)

    quality = json.loads(Path("train.json").read_text())
    assert set(quality) == {"inbatch_mrr@5_before", "inbatch_mrr@5_after"}  # metrics: quality only
    timings = json.loads(Path("logs/train.json").read_text())
    assert timings["train_seconds"] > 0 and timings["pairs_per_second"] > 0
    metrics = {**quality, **json.loads(Path("stats.json").read_text())}
    assert not set(timings) & set(metrics)
    assert metrics["train_pairs"] == 40 and metrics["train_pairs_available"] == 54
    assert metrics["trained_pairs"] == 40 and metrics["train_episodes"] == 18
    picked = round_robin_subsample(pd.read_parquet("splits/train.parquet"), 40, seed=7)
    language = picked["episode_id"].map(episodes.set_index("episode_id")["language"])
    assert metrics["trained_pairs_by_language"] == language.value_counts().to_dict()
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
    assert yaml.safe_load(Path("live/params.yaml").read_text())["output_dir"] == "model"  # the Trainer's arguments
    assert not Path("live/dvc.yaml").exists()

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
    run = train_encoder(model, data, config, tmp_path / "ckpt")
    assert type(run.loss).__name__ == {"margin_mse": "MarginMSELoss", "kldiv": "DistillKLDivLoss"}[loss]
    assert run.stats["steps"] == 24  # 12 pairs in batches of 4, 8 epochs: plain batches, no dedup
    assert run.stats["negatives"] == {"teacher_mined_per_pair": 2} and run.stats["batches_per_epoch"] == 0
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


def test_train_stage_with_the_default_loss_writes_the_same_bytes_twice(tiny_model_dir, tmp_path, monkeypatch):
    """margin_mse (params.yaml's loss) with GPL denoising, run twice: the model folder, metrics, stats and DVCLive's
    files are the same bytes (only logs/train.json, the wall times, may differ)."""
    import stages.train as stage

    outputs = []
    for name in ("first", "second"):
        folder = tmp_path / name
        _stage_inputs(folder, tiny_model_dir, labelled=True, loss="margin_mse", distill_negatives=2,
                      max_teacher_rank=2)
        monkeypatch.chdir(folder)
        with _Alarm(60):
            stage.main(STAGE_ARGS)
        written = [p for p in folder.rglob("*") if p.is_file() and p.parts[len(folder.parts)] in
                   ("model", "live", "train.json", "stats.json")]
        outputs.append({str(p.relative_to(folder)): p.read_bytes() for p in sorted(written)})
    assert outputs[0] == outputs[1]
    assert {"model/model.safetensors", "live/metrics.json", "live/params.yaml", "live/plots/metrics/loss.tsv"} <= set(
        outputs[0])
    stats = json.loads(outputs[0]["stats.json"])
    assert stats["denoised"] == {"kept": 36, "teacher_rank_too_low": 18} and stats["train_pairs"] == 36
    assert stats["negatives"] == {"teacher_mined_per_pair": 2} and stats["batches_per_epoch"] == 0
    card = outputs[0]["model/README.md"].decode()
    assert "MarginMSELoss" in card and "distillation from the teacher's scores" in card
