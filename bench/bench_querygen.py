"""Query generation throughput: the optimised path (length-sorted batches, inference_mode) against the recipe's plain
loop (batches in input order, autograd left on), same model, same episodes, same process; prints the ratio.

    python -m bench.bench_querygen                       # small random T5 (doc2query path), no download
    python -m bench.bench_querygen --model smollm2 -n 32  # the real SmolLM2 GGUF (instruct path), slow
    python -m bench.bench_querygen --episodes data/prepared/episodes.parquet   # real texts instead of fake ones
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from podsearch import tiny_models as tiny
from podsearch.params import load_params
from podsearch.querygen import GenerationContext, make_generator

ROOT = Path(__file__).resolve().parents[1]


def plain_loop(generator, episodes: pd.DataFrame) -> int:
    """The recipe's loop: consecutive batches of the input order, no inference_mode. Returns outputs decoded."""
    tok, model, size = generator.tokenizer, generator.model, generator.batch_size
    decoded = 0
    for start in range(0, len(episodes), size):
        chunk = episodes.iloc[start:start + size]
        if generator.name == "doc2query":
            batch = tok(chunk["text"].tolist(), padding=True, truncation=True,
                        max_length=generator.max_input_tokens, return_tensors="pt")
            out = model.generate(**batch, max_length=generator.max_length, do_sample=True, top_p=generator.top_p,
                                 num_return_sequences=generator.num_queries)
        else:
            prompts = [generator.prompt(t, d) for t, d in zip(chunk["title"], chunk["description"])]
            batch = tok(prompts, padding=True, add_special_tokens=False, return_tensors="pt")
            out = model.generate(**batch, max_new_tokens=generator.max_new_tokens, do_sample=True,
                                 temperature=generator.temperature, top_p=generator.top_p,
                                 pad_token_id=tok.pad_token_id)
        decoded += len(tok.batch_decode(out, skip_special_tokens=True))
    return decoded


def best_of(repeats: int, fast, plain) -> tuple[float, float]:
    """Fastest time of each, runs interleaved: the CPU is shared, so load changes hit both paths alike."""
    times: dict[str, list[float]] = {"fast": [], "plain": []}
    for _ in range(repeats):
        for name, fn in (("fast", fast), ("plain", plain)):
            torch.manual_seed(0)
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return min(times["fast"]), min(times["plain"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("tiny-t5", "smollm2"), default="tiny-t5")
    parser.add_argument("-n", "--episodes-count", type=int, default=256)
    parser.add_argument("--episodes", help="a prepared episodes parquet; default: fake episodes")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="smaller than -n, so there are several batches for length sorting to shape")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    n = args.episodes_count
    episodes = pd.read_parquet(args.episodes).iloc[:n] if args.episodes else tiny.episodes(n)
    params = load_params("querygen", ROOT / "params.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        method = "doc2query" if args.model == "tiny-t5" else "instruct"
        if method == "doc2query":
            params["doc2query"]["model"] = str(tiny.make_t5(Path(tmp), d_model=128, layers=2))
        sub = params[method]
        sub["batch_size"] = args.batch_size
        # doc2query and instruct need neither the episode vectors nor the corpus statistics (keyword does)
        generator = make_generator(method, 3, params, GenerationContext(), None, device="cpu")
        generator.load()
        # Warm-up so the first timed run does not pay one-off allocation costs.
        generator.generate(episodes.iloc[:2], seed=0, progress=lambda k: None)
        fast, plain = best_of(
            args.repeats,
            lambda: generator.generate(episodes, seed=0, progress=lambda k: None),
            lambda: plain_loop(generator, episodes),
        )
    print(f"model={args.model} episodes={len(episodes)} batch_size={sub['batch_size']} threads={args.threads}")
    print(f"plain loop (input order, autograd on): {plain:8.2f} s  {len(episodes) / plain:8.2f} episodes/s")
    print(f"optimised (length-sorted, inference):  {fast:8.2f} s  {len(episodes) / fast:8.2f} episodes/s")
    print(f"speed-up: {plain / fast:.2f}x")


if __name__ == "__main__":
    main()
