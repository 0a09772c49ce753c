"""DVC stage `pseudolabel`: the zero-shot teacher's scores for every train pair and for negatives mined from its top.

data/splits/train.parquet + data/prepared/episodes.parquet + data/embeddings/{base,use,e5}.npy
-> data/pseudolabels/train.parquet (query, episode_id, generator, teacher_rank, teacher_positive, negative_ids,
   teacher_negatives), stats/pseudolabel.json (counts, the teacher's rank of the positives).

Its own stage so that a train-only change (loss, learning rate, seed, pairs) never redoes it. Params read:
pseudolabel.*, the teacher's fusion entry (fusion.teacher, fusion.rrf_k, fusion.depth), train.base_model and
e5.model (the parts' query encoders).
"""
import argparse

from podsearch.artifacts import read_parquet, write_json, write_parquet
from podsearch.data import load_prepared
from podsearch.errors import exit_on_error, require
from podsearch.evaluation import Corpus
from podsearch.params import load_params, setup_logging
from podsearch.pseudolabel import TEACHER, PseudoLabelConfig, label_pairs, load_teacher, raw_scorer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", default="data/splits/train.parquet", help="the pairs to label (split stage)")
    parser.add_argument("--episodes", default="data/prepared/episodes.parquet")
    parser.add_argument("--embeddings", default="data/embeddings",
                        help="the embed stages' folder: base.npy and the teacher's dense parts score the corpus")
    parser.add_argument("--out", default="data/pseudolabels/train.parquet")
    parser.add_argument("--stats", default="stats/pseudolabel.json")
    args = parser.parse_args(argv)
    log = setup_logging("pseudolabel")

    with exit_on_error("pseudolabel"):
        config = PseudoLabelConfig.from_params(load_params("pseudolabel"))
        teacher = load_teacher(load_params("fusion"))
        episodes = load_prepared(args.episodes)
        pairs = read_parquet(require(args.train, "split"))
        text_of = dict(zip(episodes["episode_id"], episodes["text"]))
        corpus_ids = sorted(set(pairs["episode_id"]) & set(text_of))
        corpus = Corpus(corpus_ids, [text_of[e] for e in corpus_ids])
        log.info("teacher %s: %s over %d train episodes, %d queries", TEACHER, teacher.to_dict(),
                 len(corpus.ids), len(pairs))

        score = raw_scorer(corpus, teacher, args.embeddings, load_params("train")["base_model"],
                           load_params("e5")["model"])
        labels, stats = label_pairs(pairs, corpus, teacher, config, score)
        stats["teacher"] = {"name": TEACHER, **teacher.to_dict()}
        path = write_parquet(labels, args.out)
        write_json(stats, args.stats)
    log.info("positive's teacher rank: %s; %d pairs -> %s, counts -> %s", stats["positive_rank"], len(labels),
             path, args.stats)


if __name__ == "__main__":
    main()
