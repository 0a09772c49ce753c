"""DVC stage `train`: fine-tune the episode encoder on the train split's pairs, pseudo-labelled by the teacher.

data/pseudolabels/train.parquet + data/splits/eval.parquet + data/prepared/episodes.parquet -> models/podcast-encoder/
(with README.md card), metrics/train.json (in-batch MRR@5 before/after), stats/train.json (counts, losses), dvclive/
(the Trainer's curves and arguments, through DVCLive); wall times to logs/train.json (not an output of record).
"""
import argparse
from pathlib import Path

from podsearch.artifacts import read_parquet, write_json, writing
from podsearch.data import load_prepared
from podsearch.errors import exit_on_error, require
from podsearch.modelcard import render_model_card
from podsearch.params import load_params, setup_logging
from podsearch.training import (
    DISTILLATION_LOSSES,
    TrainConfig,
    attach_distillation,
    attach_documents,
    data_stats,
    denoise,
    load_model,
    make_inbatch_evaluator,
    round_robin_subsample,
    train_encoder,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", default="data/pseudolabels/train.parquet",
                        help="the train split's pairs with the teacher's pseudo-labels (pseudolabel stage)")
    parser.add_argument("--eval", default="data/splits/eval.parquet")
    parser.add_argument("--episodes", default="data/prepared/episodes.parquet")
    parser.add_argument("--out", default="models/podcast-encoder")
    parser.add_argument("--metrics", default="metrics/train.json")
    parser.add_argument("--stats", default="stats/train.json")
    parser.add_argument("--timings", default="logs/train.json")
    parser.add_argument("--live", default="dvclive", help="DVCLive's folder: the training curves and arguments")
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
        train_pairs = round_robin_subsample(train_all, config.max_train_pairs, config.seed)
        if config.loss in DISTILLATION_LOSSES:
            train_pairs = attach_distillation(train_pairs, episodes, config.distill_negatives, source=args.train)
        evaluator = make_inbatch_evaluator(eval_pairs, episodes)
        log.info("training on %d of %d train pairs (%d episodes); in-batch eval: %d queries over %d episodes",
                 len(train_pairs), len(train_all), train_pairs["episode_id"].nunique(), len(eval_pairs),
                 eval_pairs["episode_id"].nunique())
        model = load_model(config)
        out = Path(args.out)
        # DVCLive writes as training goes, into writing()'s temporary: moved into place once training has finished.
        # The Trainer's output_dir is the model folder, where it saves nothing (DVCLive's params.yaml records it).
        with writing(args.live, folder=True) as live:
            run = train_encoder(model, train_pairs, config, out, evaluator=evaluator, live_dir=live)
        stats = {**data_stats(train_all, train_pairs, eval_pairs, episodes), "denoised": denoised, **run.stats}
        log.info("in-batch MRR@5 %.4f -> %.4f, MAP %.4f -> %.4f; %d pairs in %d steps, %.2f pairs/s",
                 run.metrics["inbatch_mrr@5_before"], run.metrics["inbatch_mrr@5_after"], stats["inbatch_map_before"],
                 stats["inbatch_map_after"], stats["trained_pairs"], stats["steps"], run.timings["pairs_per_second"])

        with writing(out, folder=True) as tmp:  # the whole model folder or none: no stale file beside new weights
            model.save(str(tmp), create_model_card=False)
            generators = train_pairs["generator"].value_counts().to_dict() if "generator" in train_pairs else {}
            card = render_model_card(model=model, model_name=out.name, run=run, stats=stats, generators=generators,
                                     split_episodes=int(train_all["episode_id"].nunique()))
            (tmp / "README.md").write_text(card)
        log.info("model + card -> %s", out)
        write_json(run.metrics, args.metrics)
        write_json(stats, args.stats)
        write_json(run.timings, args.timings)
    log.info("metrics -> %s, counts -> %s, training curves -> %s", args.metrics, args.stats, args.live)


if __name__ == "__main__":
    main()
