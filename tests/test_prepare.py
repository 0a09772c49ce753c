import hashlib
import subprocess
import sys

import pandas as pd
import pytest

from podsearch.cleaning import html_to_text, join_sentences
from podsearch.data import DataError, load_raw, prepare_episodes, save_prepared

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


# HTML taken from the sample's real descriptions.
@pytest.mark.parametrize(
    "raw, expected",
    [
        (
            '<img src="http://assets.podomatic.net/ts/ee/8d/9e/jeff62500/1400x1400_12508930.jpg" alt="itunes pic" />'
            "<br />The best way to find authenticity in characters outside of your wheelhouse. Powerful stuff.",
            "The best way to find authenticity in characters outside of your wheelhouse. Powerful stuff.",
        ),
        (
            "<p>The crew of the Tin Sparrow gather for the opening of Willi-Ro&#39;s newly renovated casino</p>",
            "The crew of the Tin Sparrow gather for the opening of Willi-Ro's newly renovated casino",
        ),
        (
            "<br />\nOn the fourth ever episode of Young &amp; Terrified,\xa0Clayton\xa0guests<br />\n",
            "On the fourth ever episode of Young & Terrified, Clayton guests",
        ),
        ("<ul><li>Bitcoin</li><li>Ethereum</li></ul>Show notes", "Bitcoin Ethereum Show notes"),
        ("line one<br>line two<br/>line three", "line one line two line three"),
        ("&lt;p&gt;Escaped twice &amp;amp; still readable&lt;/p&gt;", "Escaped twice & still readable"),
        ("<script>track()</script><style>p{}</style>Real text", "Real text"),
        ("Rock & roll, 5 < 6, no markup", "Rock & roll, 5 < 6, no markup"),
        ("   lots \n\t of   space  ", "lots of space"),
        ("", ""),
        (None, ""),
    ],
)
def test_html_to_text(raw, expected):
    assert html_to_text(raw) == expected


def test_join_sentences_builds_recipe_text_without_double_stops():
    assert join_sentences(["Ep 1", "About things.", "", "Show!", "Desc"]) == "Ep 1. About things. Show! Desc."


def test_prepare_on_real_slice(sample_raw_dir):
    podcasts, episodes = load_raw(sample_raw_dir / "podcasts.csv", sample_raw_dir / "episodes.csv")
    frame, report = prepare_episodes(podcasts, episodes, seed=0)
    metrics = report.as_stats()
    assert metrics["episodes_in"] == len(episodes) == 41
    # every row is accounted for: kept or dropped for a named reason
    assert metrics["episodes_out"] + metrics["episodes_dropped"] == metrics["episodes_in"]
    assert metrics["dropped_by_reason"]["empty_description"] == (episodes["description"].map(html_to_text) == "").sum()
    assert metrics["dropped_by_reason"]["duplicate_text"] >= 1
    assert not frame["text"].duplicated().any()
    assert (frame["description"] != "").all() and (frame["title"] != "").all()
    assert not frame["text"].str.contains(r"<[a-zA-Z/]", regex=True).any()
    assert frame["episode_id"].map(type).eq(str).all()
    row = frame.iloc[0]
    assert row["text"].startswith(row["title"]) and row["show_title"] in row["text"]


def test_prepare_language_filter_and_cap_are_counted(sample_raw_dir):
    podcasts, episodes = load_raw(sample_raw_dir / "podcasts.csv", sample_raw_dir / "episodes.csv")
    frame, report = prepare_episodes(podcasts, episodes, seed=0, languages=["English"], max_episodes=5)
    assert set(frame["language"]) == {"English"} and len(frame) == 5
    assert report.dropped["language_not_selected"] > 0 and report.dropped["over_max_episodes"] > 0
    assert report.episodes_out + sum(report.dropped.values()) == report.episodes_in


def test_seeded_shuffle_is_deterministic_and_seed_sensitive(sample_raw_dir, tmp_path):
    podcasts, episodes = load_raw(sample_raw_dir / "podcasts.csv", sample_raw_dir / "episodes.csv")
    digests = []
    for i, seed in enumerate([7, 7, 8]):
        frame, _ = prepare_episodes(podcasts, episodes, seed=seed)
        path = save_prepared(frame, tmp_path / f"p{i}.parquet")
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1] != digests[2]
    # input order must not matter either
    shuffled, _ = prepare_episodes(podcasts, episodes.sample(frac=1, random_state=1), seed=7)
    first, _ = prepare_episodes(podcasts, episodes, seed=7)
    assert shuffled["episode_id"].tolist() == first["episode_id"].tolist()


def _write(tmp_path, podcasts, episodes):
    podcasts.to_csv(tmp_path / "podcasts.csv", index=False)
    episodes.to_csv(tmp_path / "episodes.csv", index=False)
    return tmp_path / "podcasts.csv", tmp_path / "episodes.csv"


@pytest.fixture
def raw_frames(sample_raw_dir):
    read = lambda name: pd.read_csv(sample_raw_dir / name, dtype=str, keep_default_na=False)  # noqa: E731
    return read("podcasts.csv"), read("episodes.csv")


def test_missing_column_names_file_and_column(tmp_path, raw_frames):
    podcasts, episodes = raw_frames
    p, e = _write(tmp_path, podcasts, episodes.drop(columns=["podcast_uuid"]))
    with pytest.raises(DataError, match=r"episodes\.csv: missing required column\(s\) podcast_uuid"):
        load_raw(p, e)


def test_duplicate_id_names_row(tmp_path, raw_frames):
    podcasts, episodes = raw_frames
    episodes.loc[5, "uuid"] = episodes.loc[2, "uuid"]
    p, e = _write(tmp_path, podcasts, episodes)
    with pytest.raises(DataError, match=r"episodes\.csv: row 6, column 'uuid': .* repeats row 3"):
        load_raw(p, e)


def test_unjoinable_episode_names_row(tmp_path, raw_frames):
    podcasts, episodes = raw_frames
    episodes.loc[9, "podcast_uuid"] = "0" * 32
    p, e = _write(tmp_path, podcasts, episodes)
    with pytest.raises(DataError, match=r"episodes\.csv: row 10, column 'podcast_uuid': '0{32}' is not a uuid"):
        load_raw(p, e)


def test_empty_show_id_is_an_error(tmp_path, raw_frames):
    podcasts, episodes = raw_frames
    podcasts.loc[0, "uuid"] = ""
    p, e = _write(tmp_path, podcasts, episodes)
    with pytest.raises(DataError, match=r"podcasts\.csv: row 1, column 'uuid': empty id"):
        load_raw(p, e)


def test_prepare_stage_reports_bad_input_in_one_line(tmp_path, raw_frames):
    podcasts, episodes = raw_frames
    raw = tmp_path / "bad_raw"
    raw.mkdir()
    _write(raw, podcasts.drop(columns=["title"]), episodes)
    (tmp_path / "params.yaml").write_text("prepare: {seed: 1, max_episodes: null, languages: []}\n")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "stages/prepare.py"), "--raw", str(raw), "--out", str(tmp_path / "o.parquet"),
         "--stats", str(tmp_path / "s.json")],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "podcasts.csv: missing required column(s) title" in proc.stderr


def test_empty_input_or_output_fails_naming_file_and_cause(tmp_path, raw_frames):
    podcasts, episodes = raw_frames
    p, e = _write(tmp_path, podcasts, episodes.iloc[:0])  # a header-only episodes.csv
    with pytest.raises(DataError, match=r"episodes\.csv: no episodes \(the file has a header and no rows\)"):
        load_raw(p, e)
    p, e = _write(tmp_path, podcasts.iloc[:0], episodes.iloc[:0])
    with pytest.raises(DataError, match=r"podcasts\.csv: no shows"):
        load_raw(p, e)
    # Rows that all get dropped: prepare stops instead of writing an empty table for later stages to trip over.
    p, e = _write(tmp_path, podcasts, episodes.assign(description=""))
    with pytest.raises(DataError, match=r"no episode is left after cleaning: all \d+ were dropped \(\d+ empty_description\)"):
        prepare_episodes(*load_raw(p, e), seed=0)
    raw = tmp_path / "header_only"
    raw.mkdir()
    _write(raw, podcasts, episodes.iloc[:0])
    (tmp_path / "params.yaml").write_text("prepare: {seed: 1, max_episodes: null, languages: []}\n")
    proc = subprocess.run([sys.executable, str(ROOT / "stages/prepare.py"), "--raw", str(raw), "--out",
                           str(tmp_path / "o.parquet"), "--stats", str(tmp_path / "s.json")],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "episodes.csv: no episodes" in proc.stderr and not (tmp_path / "o.parquet").exists()
