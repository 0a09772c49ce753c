"""Synthetic (query, episode) pairs for fine-tuning: three interchangeable generators behind one interface.

`querygen.method` picks pseudo (title + inverse-cloze sentences, no model), doc2query (seq2seq) or instruct (a chat
LM); all write the same pairs table through the same filter and resumable shard runner.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from podsearch.querygen.base import Candidate, QueryGenerator
from podsearch.querygen.runner import FilterRules, QueryGenError, assemble, check_episodes, collect, run_shards

__all__ = ["Candidate", "QueryGenerator", "QueryGenError", "METHODS", "make_generator", "generate_pairs"]

log = logging.getLogger(__name__)
METHODS = ("pseudo", "doc2query", "instruct")


def make_generator(params: dict[str, Any], device: str = "auto") -> QueryGenerator:
    """The generator `params["method"]` names, configured from its params subsection (nothing loaded yet)."""
    method = params["method"]
    n = params["queries_per_episode"]
    if method == "pseudo":
        from podsearch.querygen.pseudo import PseudoGenerator

        return PseudoGenerator(max_query_words=params["max_query_words"])
    if method == "doc2query":
        from podsearch.querygen.doc2query import Doc2QueryGenerator

        p = params["doc2query"]
        return Doc2QueryGenerator(
            p["model"], num_queries=n, max_input_tokens=p["max_input_tokens"], max_length=p["max_length"],
            top_p=p["top_p"], batch_size=p["batch_size"], device=device,
        )
    if method == "instruct":
        from podsearch.querygen.instruct import InstructGenerator

        p = params["instruct"]
        return InstructGenerator(
            p["model"], num_queries=n, max_input_tokens=p["max_input_tokens"], max_new_tokens=p["max_new_tokens"],
            temperature=p["temperature"], top_p=p["top_p"], batch_size=p["batch_size"],
            gguf_file=p.get("gguf_file"), device=device,
        )
    raise QueryGenError(f"params.yaml querygen.method: '{method}' is not one of {', '.join(METHODS)}")


def method_config(params: dict[str, Any]) -> dict[str, Any]:
    """The params that shape the output: shared keys plus only the selected method's subsection, so tuning an
    unused method does not invalidate finished shards."""
    shared = {k: v for k, v in params.items() if k not in METHODS}
    return {**shared, params["method"]: params.get(params["method"])}


def generate_pairs(
    episodes: pd.DataFrame,
    params: dict[str, Any],
    shard_dir: str | Path,
    *,
    source: str = "episodes",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Pairs for every episode (resuming from `shard_dir`) and the metrics describing them."""
    episodes = check_episodes(episodes, source)
    generator = make_generator(params)
    rules = FilterRules(
        queries_per_episode=params["queries_per_episode"],
        max_query_words=params["max_query_words"],
        copy_min_words=params["copy_min_words"],
    )
    run = run_shards(
        generator, episodes, shard_dir, shard_size=params["shard_size"], seed=params["seed"], rules=rules,
        # Sampling differs between devices, so shards made on a GPU are not resumed on a CPU.
        config={**method_config(params), "device": getattr(generator, "device", "cpu")},
    )
    candidates, seconds = collect(shard_dir, run["shards"])
    pairs, metrics = assemble(candidates, episodes, rules)
    metrics.update(run)
    metrics.update(
        method=params["method"],
        generation_seconds=round(seconds, 3),
        episodes_per_second=round(len(episodes) / seconds, 3) if seconds else None,
        queries_per_second=round(len(pairs) / seconds, 3) if seconds else None,
    )
    return pairs, metrics
