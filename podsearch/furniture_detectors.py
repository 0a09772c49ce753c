"""Scoring a furniture detector on the judged query samples: a feature it can use, leave-one-sample-out fitting, and
the flagged queries left when the most suspect ones are cut.

The filters (podsearch/querygen/filters.py) remove the feed furniture they can name; what gets through is measured on judged samples
(podsearch.judging.load_judged). bench/querygen_furniture_detectors.py asks whether a score could rank the rest below
topical queries; these are the parts of that study the tests check.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from podsearch.querygen.filters import words


def show_counts(queries: pd.Series, episodes: pd.DataFrame) -> np.ndarray:
    """How many shows hold each query as a phrase (whole words, as the generator normalises them) in any episode."""
    shows = [f" {' '.join(words(' '.join(texts)))} " for _, texts in episodes.groupby("show_id")["text"]]
    return np.array([sum(f" {q} " in s for s in shows) for q in tqdm(queries, desc="show counts", leave=False)])


def out_of_sample(features: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
    """Suspicion from a logistic regression fitted on the other samples, for each sample in turn."""
    suspicion = np.empty(len(frame))
    for sample in frame["sample"].unique():
        test = (frame["sample"] == sample).to_numpy()
        scaler = StandardScaler().fit(features[~test])
        model = LogisticRegression(class_weight="balanced", max_iter=2000)
        model.fit(scaler.transform(features[~test]), frame["flagged"][~test])
        suspicion[test] = model.predict_proba(scaler.transform(features[test]))[:, 1]
    return suspicion


def kept_flagged(suspicion: np.ndarray, frame: pd.DataFrame, keep: float) -> tuple[int, int]:
    """Flagged and total among the least suspect `keep` of each sample (a cut-off each sample sets alone, as the
    pipeline would set one on its own pairs); ties go by the lower row, so the count is deterministic."""
    flagged = total = 0
    for rows in frame.groupby("sample").indices.values():
        order = rows[np.lexsort((rows, suspicion[rows]))][: round(keep * len(rows))]
        flagged += int(frame["flagged"].to_numpy()[order].sum())
        total += len(order)
    return flagged, total
