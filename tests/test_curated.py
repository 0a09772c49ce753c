"""The curated test collection: validation of queries.yaml and judgments.tsv, the seeded dev/test split, and the
judging helper (pool, sheet, merge) on small files; plus the repository's own collection against the sample."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from podsearch import judging
from podsearch.curated import (
    CuratedError,
    CuratedQuery,
    assign_splits,
    load_judgments,
    load_queries,
    relevant_sets,
    save_judgments,
)

ROOT = Path(__file__).resolve().parents[1]


def ep(i: int) -> str:
    return f"{i:032x}"


def write_queries(path: Path, entries: list[dict]) -> Path:
    path.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True))
    return path


def entry(n: int, **overrides) -> dict:
    base = {"id": f"q{n:03d}", "query": f"query number {n}", "style": "keyword", "language": "en", "split": "dev"}
    return {**base, **overrides}


@pytest.mark.parametrize("bad,message", [
    ({"style": "haiku"}, r"entry 1 \(q001\), field 'style': 'haiku'"),
    ({"language": "English"}, r"field 'language': 'English'; expected an ISO 639-1 code"),
    ({"split": "train"}, r"field 'split': 'train'; expected one of dev, test"),
    ({"query": "  "}, r"entry 1, field 'query': expected a non-empty string"),
    ({"source": 12345}, r"field 'source': 12345 is not a string; quote ids"),
    ({"colour": "red"}, r"entry 1: unknown key 'colour'"),
])
def test_query_validation_names_entry_and_field(tmp_path, bad, message):
    path = write_queries(tmp_path / "q.yaml", [entry(1, **bad)])
    with pytest.raises(CuratedError, match=message):
        load_queries(path)


def test_duplicates_unknown_sources_and_missing_split(tmp_path):
    path = write_queries(tmp_path / "q.yaml", [entry(1), entry(2, query="Query number 1")])
    with pytest.raises(CuratedError, match=r"entry 2 \(q002\), field 'query': duplicate query"):
        load_queries(path)
    write_queries(path, [entry(1), entry(1, query="other")])
    with pytest.raises(CuratedError, match="field 'id': duplicate id"):
        load_queries(path)
    write_queries(path, [entry(1, source=ep(9))])
    with pytest.raises(CuratedError, match=f"episode {ep(9)} is not in the prepared episodes"):
        load_queries(path, known_ids={ep(1)})
    write_queries(path, [entry(1, split=None)])
    with pytest.raises(CuratedError, match="field 'split': missing; `python -m podsearch.judging split`"):
        load_queries(path)
    assert load_queries(path, require_split=False)[0].split is None


def test_judgments_validation_names_row_and_column(tmp_path):
    path = tmp_path / "j.tsv"
    path.write_text(f"query_id\tepisode_id\trelevant\tjudge\nq001\t{ep(1)}\t1\tme\nq001\t{ep(2)}\tyes\tme\n")
    with pytest.raises(CuratedError, match="row 3, column 'relevant': 'yes'; expected 1 or 0"):
        load_judgments(path)
    path.write_text(f"query_id\tepisode_id\trelevant\tjudge\nq009\t{ep(1)}\t1\tme\n")
    with pytest.raises(CuratedError, match="row 2, column 'query_id': 'q009' is not in queries.yaml"):
        load_judgments(path, query_ids={"q001"})
    path.write_text(f"query_id\tepisode_id\trelevant\tjudge\nq001\t{ep(1)}\t1\tme\nq001\t{ep(1)}\t0\tyou\n")
    with pytest.raises(CuratedError, match="row 3: .* is judged twice"):
        load_judgments(path)
    path.write_text(f"query_id\tepisode_id\trelevant\tjudge\nq001\t{'0' * 31}1\t1\tme\nq001\t{ep(3)}\t0\tme\n")
    frame = load_judgments(path, {"q001"}, {ep(1), ep(3)})
    assert frame["episode_id"].tolist() == [ep(1), ep(3)]  # an all-digit id stays a string
    queries = [CuratedQuery("q001", "a", "keyword", "en", "dev"), CuratedQuery("q002", "b", "keyword", "en", "dev")]
    assert relevant_sets(queries, frame) == {"q001": {ep(1)}, "q002": set()}


def test_split_is_seeded_stratified_and_never_moves_existing_queries():
    queries = [CuratedQuery(f"q{i:03d}", f"query {i}", style, lang)
               for i, (style, lang) in enumerate([(s, l) for s in ("keyword", "question", "descriptive")
                                                  for l in ("en", "de") for _ in range(10)])]
    first = assign_splits(queries, seed=1, test_fraction=0.6)
    assert first == assign_splits(queries, seed=1, test_fraction=0.6)
    assert first != assign_splits(queries, seed=2, test_fraction=0.6)
    for style in ("keyword", "question", "descriptive"):
        for english in (True, False):
            stratum = [q for q in first if q.style == style and q.english == english]
            assert sum(q.split == "test" for q in stratum) == 6  # 60% of each stratum of 10
    # New queries are added later: the old ones keep their split.
    more = first + [CuratedQuery(f"q{i:03d}", f"new {i}", "keyword", "en") for i in range(100, 105)]
    again = assign_splits(more, seed=99, test_fraction=0.6)
    assert [q.split for q in again[: len(first)]] == [q.split for q in first]
    assert all(q.split in ("dev", "test") for q in again)


def test_pool_sheet_and_merge(tmp_path):
    runs = pd.DataFrame({
        "system": ["a"] * 3 + ["b"] * 3,
        "query_id": ["q001"] * 6,
        "episode_id": [ep(1), ep(2), ep(3), ep(3), ep(4), ep(1)],
        "rank": [1, 2, 3, 1, 2, 3],
        "score": [0.9, 0.8, 0.7, 0.9, 0.8, 0.7],
    })
    pool = judging.build_pool(runs, ["q001"], depth=2)
    assert list(zip(pool["episode_id"], pool["systems"], pool["best_rank"])) == [
        (ep(1), "a", 1), (ep(2), "a", 2), (ep(3), "b", 1), (ep(4), "b", 2)]
    judged = pd.DataFrame({"query_id": ["q001"], "episode_id": [ep(2)], "relevant": [1], "judge": ["x"]})
    left = judging.blind_order(judging.unjudged(pool, judged))
    assert sorted(left["episode_id"]) == [ep(1), ep(3), ep(4)]
    assert left["episode_id"].tolist() == judging.blind_order(judging.unjudged(pool, judged))["episode_id"].tolist()

    episodes = pd.DataFrame({"episode_id": [ep(i) for i in range(1, 5)], "show_title": "Show",
                             "title": [f"Title {i}" for i in range(1, 5)], "description": "A description."})
    queries = {"q001": CuratedQuery("q001", "some query", "keyword", "en", "dev")}
    sheet = judging.judging_sheet(left, queries, episodes)
    assert list(sheet.columns) == ["query_id", "query", "episode_id", "show", "title", "description", "relevant"]
    sheet.loc[0, "relevant"], sheet.loc[1, "relevant"] = "1", "0"  # the third row is left for later
    merged = judging.merge_sheet(sheet, judged, judge="me")
    assert len(merged) == 3 and set(merged[merged["judge"] == "me"]["relevant"]) == {0, 1}
    sheet.loc[2, "relevant"] = "maybe"
    with pytest.raises(CuratedError, match="row 4, column 'relevant': 'maybe'"):
        judging.merge_sheet(sheet, judged, judge="me")


def test_judging_cli_split_and_status(tmp_path, capsys):
    queries = write_queries(tmp_path / "q.yaml", [entry(1), entry(2, split=None), entry(3, split=None)])
    judgments = tmp_path / "j.tsv"
    save_judgments(pd.DataFrame({"query_id": ["q001"], "episode_id": [ep(1)], "relevant": [1], "judge": ["x"]}),
                   judgments)
    args = ["--queries", str(queries), "--judgments", str(judgments), "--pool", str(tmp_path / "pool.tsv")]
    assert judging.main(args + ["split", "--seed", "3"]) == 0
    assert "2 new queries assigned a split" in capsys.readouterr().out
    assert all(q.split for q in load_queries(queries))
    assert queries.read_text().startswith("# Curated evaluation queries")
    assert judging.main(args + ["status"]) == 0
    out = capsys.readouterr().out
    assert "3 queries" in out and "queries with no relevant episode: 2" in out
    assert judging.main(args + ["pool", "--runs", str(tmp_path / "missing.parquet")]) == 1
    assert "run `dvc repro evaluate` first" in capsys.readouterr().err


def test_pooling_again_widens_the_pool_it_does_not_replace_it(tmp_path, capsys):
    queries = write_queries(tmp_path / "q.yaml", [entry(1), entry(2)])
    judgments = tmp_path / "j.tsv"
    save_judgments(pd.DataFrame({"query_id": ["q001"], "episode_id": [ep(1)], "relevant": [1], "judge": ["x"]}),
                   judgments)
    pool = tmp_path / "pool.tsv.gz"
    args = ["--queries", str(queries), "--judgments", str(judgments), "--pool", str(pool)]

    def run_file(name, rows):
        path = tmp_path / f"{name}.parquet"
        pd.DataFrame(rows, columns=["system", "query_id", "episode_id", "rank", "score"]).to_parquet(path)
        return str(path)

    first = run_file("first", [("base", "q001", ep(1), 1, 1.0), ("base", "q001", ep(2), 2, 0.5)])
    second = run_file("second", [("bm25", "q001", ep(2), 1, 9.0), ("bm25", "q002", ep(3), 4, 2.0)])
    assert judging.main(args + ["pool", "--runs", first]) == 0
    written = pool.read_bytes()
    assert judging.main(args + ["pool", "--runs", first]) == 0
    assert pool.read_bytes() == written  # the same pool, the same bytes (no gzip timestamp)
    assert judging.main(args + ["pool", "--runs", second]) == 0
    merged = pd.read_csv(pool, sep="\t", dtype=str).set_index(["query_id", "episode_id"])
    assert merged.loc[("q001", ep(2)), "systems"] == "base,bm25" and merged.loc[("q001", ep(2)), "best_rank"] == "1"
    assert merged.loc[("q001", ep(1)), "systems"] == "base"  # kept though the second pooling did not find it
    assert len(merged) == 3
    assert "2 not judged yet" in capsys.readouterr().out


def _sample_episode_ids() -> set[str]:
    """Ids of the prepared sample: from the pipeline's output, else prepared here from the pulled raw sample."""
    prepared = ROOT / "data/prepared/episodes.parquet"
    if prepared.exists():
        return set(pd.read_parquet(prepared, columns=["episode_id"])["episode_id"])
    sample = ROOT / "data/sample/listennotes-dec2017"
    if not (sample / "episodes.csv").exists():
        pytest.skip("embedded sample absent: `dvc pull data/sample/listennotes-dec2017.dvc` (.ci/run does)")
    from podsearch.data import load_raw, prepare_episodes

    frame, _ = prepare_episodes(*load_raw(sample / "podcasts.csv", sample / "episodes.csv"), seed=0)
    return set(frame["episode_id"])


def test_repository_collection_is_valid_and_big_enough():
    known = _sample_episode_ids()
    queries = load_queries(ROOT / "data/curated/queries.yaml", known)
    judgments = load_judgments(ROOT / "data/curated/judgments.tsv", {q.id for q in queries}, known)
    assert len(queries) >= 150
    assert sum(not q.english for q in queries) >= 0.2 * len(queries)
    for split in ("dev", "test"):
        styles = {q.style for q in queries if q.split == split}
        assert styles == {"keyword", "question", "descriptive"}, split
    relevant = relevant_sets(queries, judgments)
    assert all(relevant[q.id] for q in queries), "every query has at least one relevant episode"
    # Pooled, not only the episode each query was written from: most judgments are of other episodes.
    assert len(judgments) > 10 * len(queries)
