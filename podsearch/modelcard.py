"""The README.md model card of the fine-tuned encoder, in the layout of the recipe's pinecone/distiluse-podcast-nq
card. Every parameter shown is read from the objects of the real run (training arguments, loss, sampler, metrics),
so the card cannot drift from what was trained.
"""
from __future__ import annotations

import json
from typing import Any

# Training arguments worth showing; the rest are transformers defaults nobody tuned.
SHOWN_ARGS = (
    "num_train_epochs", "per_device_train_batch_size", "learning_rate", "warmup_steps", "lr_scheduler_type",
    "weight_decay", "max_grad_norm", "seed", "data_seed", "batch_sampler", "dataloader_drop_last", "bf16", "fp16",
    "optim", "logging_steps",
)


def _plain(value: Any) -> Any:
    """JSON-friendly view of enum / class values (e.g. BatchSamplers.NO_DUPLICATES -> 'no_duplicates')."""
    if hasattr(value, "value"):
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def training_parameters(args, total_steps: int) -> dict[str, Any]:
    shown = {name: _plain(getattr(args, name)) for name in SHOWN_ARGS if hasattr(args, name)}
    shown["warmup_steps_resolved"] = int(args.get_warmup_steps(total_steps)) if total_steps else 0
    shown["total_steps"] = int(total_steps)
    return shown


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = []
    for name in ("mrr@5", "map", "ndcg@5"):
        before, after = metrics.get(f"inbatch_{name}_before"), metrics.get(f"inbatch_{name}_after")
        if before is None and after is None:
            continue
        fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
        rows.append(f"| {name.upper() if name == 'map' else name.replace('mrr', 'MRR').replace('ndcg', 'NDCG')} "
                    f"| {fmt(before)} | {fmt(after)} |")
    if not rows:
        return "_No evaluation was run._"
    return "| metric | base model | fine-tuned |\n|---|---|---|\n" + "\n".join(rows)


def _sampler_line(args, metrics: dict[str, Any]) -> str:
    sampler = _plain(args.batch_sampler)
    if sampler == "no_duplicates":
        return ("`BatchSamplers.NO_DUPLICATES` (no text twice in a batch, so in-batch negatives are real negatives), "
                f"batch size {args.per_device_train_batch_size}, {metrics.get('batches_per_epoch', 'n/a')} batches "
                "per epoch.")
    return (f"`{sampler}`, batch size {args.per_device_train_batch_size}: each query is compared with its own "
            "positive and mined negatives only (distillation from the teacher's scores), so rows may share a text.")


def render_model_card(*, model, model_name: str, run, stats: dict[str, Any], generators: dict[str, int],
                      split_episodes: int) -> str:
    """Markdown card. `run` is train_encoder's TrainRun (training arguments, loss, in-batch MRR@5); `stats` what
    stats/train.json records (base model, counts, the other in-batch scores); `generators` the selected pairs per
    query generator; `split_episodes` the train split's episodes."""
    metrics = {**stats, **run.metrics}
    base_model = stats["base_model"]
    args = run.args
    dimension = model.get_embedding_dimension()
    loss_name = f"{type(run.loss).__module__}.{type(run.loss).__name__}"
    loss_params = {k: _plain(v) for k, v in run.loss.get_config_dict().items()}
    steps = int(metrics.get("steps", 0))
    params = training_parameters(args, steps)
    generators_line = ", ".join(f"`{name}` ({count} pairs)" for name, count in sorted(generators.items()))
    return f"""---
library_name: sentence-transformers
pipeline_tag: sentence-similarity
tags:
- sentence-transformers
- feature-extraction
- sentence-similarity
- podcast-search
base_model: {base_model}
---

# {model_name}

This is a [sentence-transformers](https://www.SBERT.net) model fine-tuned from `{base_model}` for natural-language
podcast episode search: it maps queries and episode texts (episode title, description, show title, show
description) to a {dimension} dimensional dense vector space, where a query lands near the episodes that answer it.

## Usage (Sentence-Transformers)

```
pip install -U sentence-transformers
```

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("models/podcast-encoder")
queries = ["podcast about the history of jazz"]
episodes = ["Episode 12: Miles Davis and the birth of cool. A look at jazz in the 1950s."]
query_embeddings = model.encode_query(queries)
episode_embeddings = model.encode_document(episodes)
print(model.similarity(query_embeddings, episode_embeddings))
```

## Training data

Synthetic (query, episode) pairs made by the `generate_queries` stage; generators: {generators_line or "n/a"}.
Split by episode (no episode in two splits): {split_episodes} train episodes
({metrics.get("train_pairs_available", "n/a")} pairs, {metrics.get("train_pairs", "n/a")} selected by
`max_train_pairs`), {metrics.get("eval_episodes", "n/a")} eval episodes ({metrics.get("eval_queries", "n/a")} queries).
The sampler yielded {metrics.get("trained_pairs", "n/a")} pairs in {steps} steps
({metrics.get("batches_per_epoch", "n/a")} batches per epoch, smallest batch {metrics.get("smallest_batch", "n/a")}).

## Evaluation

In-batch ranking on the eval split: every eval query ranks its own episode among all eval episodes
(sentence-transformers `InformationRetrievalEvaluator`, cosine similarity; MAP over all eval episodes).

{_metrics_table(metrics)}

## Training

The model was trained with the parameters:

**Batch sampler**: {_sampler_line(args, metrics)}

**Loss**:

`{loss_name}` with parameters:
```
{json.dumps(loss_params, indent=2, sort_keys=True)}
```

Parameters of the `SentenceTransformerTrainer` run:
```
{json.dumps(params, indent=2, sort_keys=True)}
```

Trained on {metrics.get("device", "n/a")}, max_seq_length {model.max_seq_length}; extra negatives per pair:
{metrics.get("negatives") or "none (in-batch negatives only)"}. Wall time and throughput are in the pipeline's
logs/train.json, kept out of this card so that identical training gives an identical model folder.

## Full Model Architecture

```
{model}
```
"""
