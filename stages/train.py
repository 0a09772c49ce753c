"""DVC stage `train`: fine-tune the episode encoder on the train split's pairs, pseudo-labelled by the teacher.

data/pseudolabels/train.parquet + data/splits/eval.parquet + data/prepared/episodes.parquet (+ data/embeddings/
base.npy for train.negatives) -> models/podcast-encoder/ (with README.md card), metrics/train.json (in-batch MRR@5
before/after), stats/train.json (counts, losses), dvclive/ (the Trainer's curves, through DVCLive); wall times to
logs/train.json (not an output of record).
"""
import argparse
import tempfile
from pathlib import Path

from podsearch.artifacts import read_parquet, writing
from podsearch.data import load_prepared
from podsearch.embeddings import load_embeddings
from podsearch.errors import exit_on_error, require
from podsearch.modelcard import render_model_card
from podsearch.params import load_params, setup_logging, write_json
from podsearch.training import (
    DISTILLATION_LOSSES,
    TrainConfig,
    add_negatives,
    attach_distillation,
    attach_documents,
    denoise,
    load_model,
    make_inbatch_evaluator,
    other_languages,
    round_robin_subsample,
    split_record,
    train_encoder,
    train_record,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", default="data/pseudolabels/train.parquet",
                        help="the train split's pairs with the teacher's pseudo-labels (pseudolabel stage)")
    parser.add_argument("--eval", default="data/splits/eval.parquet")
    parser.add_argument("--episodes", default="data/prepared/episodes.parquet")
    parser.add_argument("--episode-vectors", default="data/embeddings/base.npy",
                        help="embed_base output: hard negatives are mined with it when train.negatives is set")
    parser.add_argument("--out", default="models/podcast-encoder")
    parser.add_argument("--metrics", default="metrics/train.json")
    parser.add_argument("--stats", default="stats/train.json")
    parser.add_argument("--timings", default="logs/train.json")
    parser.add_argument("--live", default="dvclive", help="DVCLive's folder for the training curves")
    args = parser.parse_args(argv)
    log = setup_logging("train")

    with exit_on_error("train"):
        config = TrainConfig.from_params(load_params("train"))
        episodes = load_prepared(args.episodes)
        labelled = attach_documents(read_parquet(require(args.train, "pseudolabel")), episodes, source=args.train,
                                    use_passage=config.loss not in DISTILLATION_LOSSES)
        train_all, denoised = denoise(labelled, config.max_teacher_rank)
        if denoised:
            log.info("teacher rank <= %d: kept %d of %d pairs", config.max_teacher_rank, len(train_all), len(labelled))
        eval_pairs = read_parquet(require(args.eval, "split"))
        language, other = other_languages(train_all, episodes)
        train_pairs = round_robin_subsample(train_all.assign(language=language), config.max_train_pairs,
                                            config.seed, first=other if config.other_languages_first else None)
        negative_counts = {}
        if config.loss in DISTILLATION_LOSSES:
            train_pairs = attach_distillation(train_pairs, episodes, config.distill_negatives, source=args.train)
            negative_counts = {"teacher_mined_per_pair": config.distill_negatives}
        evaluator = make_inbatch_evaluator(eval_pairs, episodes)
        log.info("training on %d of %d train pairs (%d episodes); in-batch eval: %d queries over %d episodes",
                 len(train_pairs), len(train_all), train_pairs["episode_id"].nunique(), len(eval_pairs),
                 eval_pairs["episode_id"].nunique())
        model = load_model(config)
        if config.negatives != "none":
            ids, matrix = load_embeddings(args.episode_vectors, expected_ids=episodes["episode_id"].tolist())
            # `model` is still the base model here: the same encoder as the episode vectors.
            queries = model.encode(train_pairs["query"].tolist(), batch_size=128, normalize_embeddings=True,
                                   show_progress_bar=False)
            train_pairs, negative_counts = add_negatives(train_pairs, episodes, config.negatives, queries,
                                                         dict(zip(ids, matrix)), config.negative_depth)
            log.info("negatives (%s): %s", config.negatives, negative_counts)
        # DVCLive writes as training goes, into writing()'s temporary: moved into place once training has finished
        with tempfile.TemporaryDirectory(prefix="podsearch-train-") as scratch, \
                writing(args.live, folder=True) as live:
            result = train_encoder(model, train_pairs, config, Path(scratch) / "checkpoints", evaluator=evaluator,
                                   live_dir=live)
        record, data_card = train_record(result, model, config, train_all, train_pairs, eval_pairs, negative_counts)
        record["denoised"] = denoised
        log.info("in-batch MRR@5 %.4f -> %.4f, MAP %.4f -> %.4f; %d pairs in %d steps, %.2f pairs/s",
                 record["inbatch_mrr@5_before"], record["inbatch_mrr@5_after"], record["inbatch_map_before"],
                 record["inbatch_map_after"], record["trained_pairs"], record["steps"], record["pairs_per_second"])

        out = Path(args.out)
        with writing(out, folder=True) as tmp:  # the whole model folder or none: no stale file beside new weights
            model.save(str(tmp), create_model_card=False)
            card = render_model_card(model=model, model_name=out.name, base_model=config.base_model,
                                     args=result.args, loss=result.loss, metrics=record, data=data_card)
            (tmp / "README.md").write_text(card)
        log.info("model + card -> %s", out)
        quality, stats, timings = split_record(record)
        write_json(quality, args.metrics)
        write_json(stats, args.stats)
        write_json(timings, args.timings)
    log.info("metrics -> %s, counts -> %s, training curves -> %s", args.metrics, args.stats, args.live)


if __name__ == "__main__":
    main()
