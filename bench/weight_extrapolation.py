"""Is the distilled fine-tune under-trained along its own direction? Weights base + alpha * (fine-tune - base), scored
on the curated dev queries.

    python -m bench.weight_extrapolation --alphas 0.5 1.5 2.0     # -> bench/results/distill_extrapolation_dev.md

alpha 1 is the committed fine-tune (models/podcast-encoder), 0 the base model; alpha < 1 interpolates towards base
(WiSE-FT, Wortsman et al. 2022), alpha > 1 goes further than training did, at no training cost. Each alpha encodes
every prepared episode and searches the curated queries as bench/distill_sweep.py does; its run file goes to
bench/results/distill/extrapolate-a<alpha>.parquet. p: paired randomization test against alpha 1 (the committed run's
`finetuned` in data/eval/runs/curated.parquet). Dev only: a probe, not a choice read on test.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.compare_runs import curated_split, mean_per_query, side
from bench.distill_sweep import CURATED, OUT, ROOT, _params, _write_run, gap_closed, search_curated
from podsearch.stats import paired_randomization_test


def extrapolate(alphas: list[float]) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    from podsearch.training import TrainConfig, load_model

    base = load_model(TrainConfig(base_model=_params()["train"]["base_model"], device="cpu")).state_dict()
    model = SentenceTransformer(str(ROOT / "models/podcast-encoder"), device="cpu")
    tuned = {k: v.clone() for k, v in model.state_dict().items()}
    if set(base) != set(tuned):
        raise SystemExit("models/podcast-encoder and train.base_model do not have the same weights to interpolate")
    for alpha in alphas:
        with torch.no_grad():
            model.load_state_dict({k: base[k] + alpha * (v - base[k]) if v.is_floating_point() else v
                                   for k, v in tuned.items()})
        query_ids, run, _ = search_curated(model, f"alpha {alpha}")
        _write_run(OUT / f"extrapolate-a{alpha}.parquet", "finetuned", query_ids, run)


def table(alphas: list[float]) -> str:
    chosen, rel = curated_split("dev", CURATED / "queries.yaml", CURATED / "judgments.tsv")
    ids, keep = [q.id for q in chosen], [True] * len(chosen)
    one = side(f"{ROOT / 'data/eval/runs/curated.parquet'}:finetuned", ids)
    refs = {name: side(f"{OUT / name}.parquet:{name}", ids) for name in ("base", "teacher")}
    lines = [
        "# The distilled fine-tune extrapolated along its own direction, curated dev queries",
        "",
        f"Written by `python -m bench.weight_extrapolation --alphas {' '.join(map(str, alphas))}`: weights base + "
        f"alpha x (fine-tune - base), alpha 1 being the committed run (seed 42 of the default). {len(chosen)} dev "
        "queries; p: paired randomization test against alpha 1 (10,000 resamples); gap closed on MRR@30 as in "
        "distillation_dev.md.",
        "",
        "| alpha | Recall@10 (p) | MRR@30 (p) | gap closed |",
        "|---:|---:|---:|---:|",
    ]
    for alpha in sorted({0.0, 1.0, *alphas}):
        runs = (refs["base"] if alpha == 0 else one if alpha == 1
                else side(f"{OUT}/extrapolate-a{alpha}.parquet:finetuned", ids))
        cells = []
        for metric in ("recall@10", "mrr@30"):
            mine, theirs = (mean_per_query(r, keep, rel, metric) for r in (runs, one))
            p = "" if alpha == 1 else f" ({paired_randomization_test(mine, theirs, seed=0):.3f})"
            cells.append(f"{mine.mean():.3f}{p}")
        cells.append(f"{gap_closed(refs['base'], runs, refs['teacher'], rel, keep):.0%}")
        lines.append(f"| {alpha:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.5, 1.5, 2.0])
    parser.add_argument("--out", default=str(ROOT / "bench/results/distill_extrapolation_dev.md"))
    args = parser.parse_args(argv)
    extrapolate([a for a in args.alphas if a not in (0.0, 1.0)])
    text = table(args.alphas)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
