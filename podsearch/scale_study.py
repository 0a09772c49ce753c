"""The scale study's sizes and steps (docs/scale.md): what bench/bench_scale.py runs and records, and what
podsearch.scale_report tabulates from the record, in its order.

Nothing heavy is imported here: each step runs in a process of its own that imports this module before the step's
clock starts, so an import here would be paid outside every measurement.
"""

SAMPLE_EPISODES = 5_633  # the sample the pipeline runs on (data/sample/)
FULL_EPISODES = 873_820  # the Kaggle dataset (listennotes/all-podcast-episodes-published-in-december-2017)
# The measured steps, each the library code a stage calls (bench/bench_scale.py's docstring says which).
STEPS = ("prepare", "querygen", "split", "bm25", "exact", "hnsw", "hnsw_fast", "evaluate")
# The benchmark's own set-up (the scaled CSVs, the corpus vectors): timed, but apart from the steps.
SETUP_STEPS = ("inputs", "vectors")
