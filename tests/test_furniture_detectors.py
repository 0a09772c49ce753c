"""The judged query samples (podsearch.judging) and the furniture detector study's parts
(podsearch.furniture_detectors): how samples are read and named, and how a detector is fitted and cut."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podsearch.judging import COMMITTED_SAMPLE, QUERY_SAMPLE, judged_samples, load_judged
from podsearch.furniture_detectors import kept_flagged, out_of_sample, show_counts

ROOT = Path(__file__).resolve().parents[1]


def _judged(tmp_path, name, flags):
    path = tmp_path / name
    pd.DataFrame({"query": [f"q{i}" for i in range(len(flags))], "generator": "keyword", "episode_id": "e",
                  "boilerplate": [str(f) for f in flags], "note": ""}).to_csv(path, sep="\t", index=False)
    return str(path)


def test_load_judged_names_samples_and_rejects_unjudged_rows(tmp_path):
    frame = load_judged({"seed3": _judged(tmp_path, "seed3_intermediate.tsv", [0, 1]),
                         "seed7": _judged(tmp_path, "judged_sample.tsv", [1, 0, 1])})
    assert frame.groupby("sample")["flagged"].sum().to_dict() == {"seed3": 1, "seed7": 2}
    with pytest.raises(ValueError, match=r"seed1_x.tsv: row 3 \('q1'\): boilerplate must be 1 or 0, got ''"):
        load_judged({"seed1": _judged(tmp_path, "seed1_x.tsv", [0, ""])})


def test_judged_samples_are_named_by_seed_with_the_committed_one_last(tmp_path, monkeypatch):
    for name in ("seed2_intermediate.tsv", "seed1_intermediate.tsv", "notes.txt"):
        (tmp_path / name).write_text("")
    assert judged_samples(str(tmp_path), "committed.tsv") == {
        "seed1": f"{tmp_path}/seed1_intermediate.tsv", "seed2": f"{tmp_path}/seed2_intermediate.tsv",
        COMMITTED_SAMPLE: "committed.tsv"}
    # The committed files (paths relative to the repository root, as the benches run): every one judged, each named
    # by its seed, the committed run's last.
    monkeypatch.chdir(ROOT)
    committed = judged_samples()
    assert list(committed)[-1] == COMMITTED_SAMPLE and committed[COMMITTED_SAMPLE] == QUERY_SAMPLE
    assert len(committed) > 1 and all(name.startswith("seed") for name in committed)
    assert set(load_judged(committed)["sample"]) == set(committed)


def test_kept_flagged_cuts_each_sample_at_its_own_share():
    # Sample a: flagged rows are the most suspect; sample b: the least. Keeping half of each keeps only b's flagged one.
    frame = pd.DataFrame({"sample": ["a"] * 4 + ["b"] * 4, "flagged": [1, 0, 0, 0, 1, 0, 0, 0]})
    suspicion = np.array([0.9, 0.1, 0.2, 0.3, 0.0, 0.5, 0.6, 0.7])
    assert kept_flagged(suspicion, frame, 1.0) == (2, 8)
    assert kept_flagged(suspicion, frame, 0.5) == (1, 4)
    assert kept_flagged(suspicion, frame, 0.25) == (1, 2)


def test_out_of_sample_never_scores_a_row_with_a_model_that_saw_it():
    # A feature that flags perfectly in samples a, b and d but is inverted in c: fitted on the others, c comes out
    # wrong, which a model that had seen c's labels would not do.
    x = np.array([[1.0], [0.0], [1.0], [0.0], [0.0], [1.0], [1.0], [0.0]])
    frame = pd.DataFrame({"sample": ["a", "a", "b", "b", "c", "c", "d", "d"], "flagged": [1, 0] * 4})
    suspicion = out_of_sample(x, frame)
    assert suspicion[4] < suspicion[5]
    assert suspicion[0] > suspicion[1] and suspicion[2] > suspicion[3] and suspicion[6] > suspicion[7]


def test_show_counts_counts_shows_not_episodes_and_whole_words():
    episodes = pd.DataFrame({"show_id": ["s1", "s1", "s2"],
                             "text": ["Good Morning Mechanicsville", "good morning again", "Goodbye, morning!"]})
    assert show_counts(pd.Series(["good morning", "morning", "bye"]), episodes).tolist() == [1, 2, 0]
