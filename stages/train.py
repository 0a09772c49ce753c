"""DVC stage `train`: fine-tune the episode encoder on the train split.

data/splits/{train,eval}.parquet + data/prepared/episodes.parquet (+ data/embeddings/base.npy for mined negatives)
-> models/podcast-encoder/ (with README.md card), metrics/train.json (in-batch MRR@5 before/after), stats/train.json
(counts, losses), plots/train_loss.csv; wall times to logs/train.json (not an output of record).
"""
import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from podsearch.data import DataError, load_prepared  # noqa: E402
from podsearch.embeddings import EmbeddingError, load_embeddings  # noqa: E402
from podsearch.modelcard import render_model_card  # noqa: E402
from podsearch.params import load_params, setup_logging, write_json  # noqa: E402
from podsearch.training import (  # noqa: E402
    TrainConfig,
    TrainDataError,
    add_negatives,
    attach_documents,
    load_model,
    make_inbatch_evaluator,
    round_robin_subsample,
    split_record,
    train_encoder,
    write_loss_curve,
)


def _read(path: str, what: str) -> pd.DataFrame:
    if not Path(path).exists():
        raise SystemExit(f"{path}: not found; run the {what} stage first")
    return pd.read_parquet(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", default="data/splits/train.parquet")
    parser.add_argument("--eval", default="data/splits/eval.parquet")
    parser.add_argument("--episodes", default="data/prepared/episodes.parquet")
    parser.add_argument("--episode-vectors", default="data/embeddings/base.npy",
                        help="embed_base output: hard negatives are mined with it when train.negatives is set")
    parser.add_argument("--out", default="models/podcast-encoder")
    parser.add_argument("--metrics", default="metrics/train.json")
    parser.add_argument("--stats", default="stats/train.json")
    parser.add_argument("--timings", default="logs/train.json")
    parser.add_argument("--loss-plot", default="plots/train_loss.csv")
    args = parser.parse_args(argv)
    log = setup_logging("train")

    try:
        config = TrainConfig.from_params(load_params("train"))
        episodes = load_prepared(args.episodes)
        train_all = attach_documents(_read(args.train, "split"), episodes, source=args.train)
        eval_pairs = _read(args.eval, "split")
        train_pairs = round_robin_subsample(train_all, config.max_train_pairs, config.seed)
        evaluator = make_inbatch_evaluator(eval_pairs, episodes)
    except (TrainDataError, DataError) as error:
        raise SystemExit(str(error)) from None
    log.info("training on %d of %d train pairs (%d episodes); in-batch eval: %d queries over %d episodes",
             len(train_pairs), len(train_all), train_pairs["episode_id"].nunique(), len(eval_pairs),
             eval_pairs["episode_id"].nunique())

    model = load_model(config)
    negative_counts = {}
    if config.negatives != "none":
        try:
            ids, matrix = load_embeddings(args.episode_vectors, expected_ids=episodes["episode_id"].tolist())
            # `model` is still the base model here: the same encoder as the episode vectors.
            queries = model.encode(train_pairs["query"].tolist(), batch_size=128, normalize_embeddings=True,
                                   show_progress_bar=False)
            train_pairs, negative_counts = add_negatives(train_pairs, episodes, config.negatives, queries,
                                                         dict(zip(ids, matrix)), config.negative_depth)
        except (EmbeddingError, TrainDataError) as error:
            raise SystemExit(str(error)) from None
        log.info("negatives (%s): %s", config.negatives, negative_counts)
    with tempfile.TemporaryDirectory(prefix="podsearch-train-") as checkpoints:
        result = train_encoder(model, train_pairs, config, checkpoints, evaluator=evaluator)

    metrics = dict(result.metrics)
    metrics.update(
        base_model=config.base_model,
        device=str(model.device),
        train_pairs_available=len(train_all),
        train_episodes=int(train_pairs["episode_id"].nunique()),
        eval_queries=len(eval_pairs),
        eval_episodes=int(eval_pairs["episode_id"].nunique()),
        passage_pairs=int((train_all.get("passage", pd.Series(dtype=str)).fillna("").str.strip() != "").sum()),
        negatives=negative_counts,
    )
    log.info("in-batch MRR@5 %.4f -> %.4f, MAP %.4f -> %.4f; %d pairs in %d steps, %.2f pairs/s",
             metrics["inbatch_mrr@5_before"], metrics["inbatch_mrr@5_after"], metrics["inbatch_map_before"],
             metrics["inbatch_map_after"], metrics["trained_pairs"], metrics["steps"], metrics["pairs_per_second"])

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)  # a stale file from an older model must not survive next to the new weights
    model.save(str(out), create_model_card=False)
    data_info = {
        "generators": train_pairs["generator"].value_counts().to_dict() if "generator" in train_pairs else {},
        "train_episodes": int(train_all["episode_id"].nunique()),
        "train_pairs_available": len(train_all),
        "eval_episodes": metrics["eval_episodes"],
        "eval_pairs": len(eval_pairs),
    }
    card = render_model_card(model=model, model_name=out.name, base_model=config.base_model, args=result.args,
                             loss=result.loss, metrics=metrics, data=data_info)
    (out / "README.md").write_text(card)
    log.info("model + card -> %s", out)
    quality, stats, timings = split_record(metrics)
    write_json(quality, args.metrics)
    write_json(stats, args.stats)
    write_json(timings, args.timings)
    write_loss_curve(result.loss_curve, args.loss_plot)
    log.info("metrics -> %s, counts -> %s, loss curve -> %s", args.metrics, args.stats, args.loss_plot)


if __name__ == "__main__":
    main()
