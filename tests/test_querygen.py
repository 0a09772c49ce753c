"""generate_queries: the filter and its rules, the four generators on their real code paths (tiny local models), the
mix, exact episode counts, seeded reproducibility, resuming after an interruption, and the stage script."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from podsearch import tiny_models as tiny
from podsearch.embeddings import length_sorted_batches
from podsearch.querygen import GenerationContext, QueryGenError, generate_pairs, make_generator, runner
from podsearch.querygen.base import Candidate, judge
from podsearch.querygen.filters import DocumentFrequencies, program_label, reject_reason, tidy, without_furniture
from podsearch.querygen.instruct import parse_queries
from podsearch.querygen.pseudo import ICT, SHOW_TITLE, TITLE, split_sentences

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory) -> Path:
    return tiny.make_t5(tmp_path_factory.mktemp("t5"))


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    return tiny.make_llama(tmp_path_factory.mktemp("llama"))


def make_params(mix: dict[str, int], model_dir: Path | None = None, **overrides) -> dict:
    params = {
        "mix": mix, "seed": 7, "shard_size": 5, "max_query_words": 16, "copy_min_words": 4, "min_content": 0.0,
        "keyword": {"max_words": 3, "candidates": 8, "diversity": 0.3, "batch_size": 16},
        "doc2query": {"model": str(model_dir), "max_input_tokens": 32, "max_length": 10, "top_p": 0.95,
                      "batch_size": 4},
        "instruct": {"model": str(model_dir), "gguf_file": None, "max_input_tokens": 24, "max_new_tokens": 10,
                     "temperature": 0.8, "top_p": 0.95, "batch_size": 4},
    }
    params.update(overrides)
    return params


def candidates_of(shard_dir: Path) -> pd.DataFrame:
    """Every candidate of one generator's shard folder."""
    return pd.concat([pd.read_parquet(p) for p in sorted(shard_dir.glob("shard-*.parquet"))], ignore_index=True)


def test_judge_counts_each_degenerate_kind():
    description = "We talk about the history of the bitcoin price crash in december"
    cands = [Candidate(q, "x") for q in [
        " ", "one two three four five six seven eight", "history of the Bitcoin price", "bitcoin crash",
        "Bitcoin  CRASH!", "price history", "why bitcoin fell", "crypto news",
    ]]
    statuses = judge(cands, description, max_words=6, copy_min_words=4, limit=3)
    assert statuses == [
        "empty", "too_long", "copies_description", "kept", "duplicate", "kept", "kept", "surplus",
    ]


def test_judge_checks_copies_against_the_passage_when_given():
    # An ICT sentence is in the description by construction; what matters is whether its passage still holds it.
    sentence = "Anna shares her starter recipe today"
    description = f"{sentence}. More bread talk."
    assert judge([Candidate(sentence, ICT, "More bread talk.")], description,
                 max_words=16, copy_min_words=4, limit=3) == ["kept"]
    assert judge([Candidate(sentence, ICT, f"Intro. {sentence}.")], description,
                 max_words=16, copy_min_words=4, limit=3) == ["copies_description"]


def test_length_sorted_batches_cover_every_row_once():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 0, 11, 10, 12]
    batches = length_sorted_batches(lengths, 4)
    assert [len(b) for b in batches] == [4, 4, 4, 1]
    assert sorted(i for b in batches for i in b) == list(range(13))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True)


def test_parse_queries_strips_decoration_and_cut_lines():
    text = "Here are three queries:\n1. \"bitcoin crash\"\n- sourdough recipe\n\n3) space rocket launch\nhalf writ"
    assert parse_queries(text, finished=True) == ["bitcoin crash", "sourdough recipe", "space rocket launch", "half writ"]
    assert parse_queries(text, finished=False) == ["bitcoin crash", "sourdough recipe", "space rocket launch"]
    assert parse_queries("a query\n", finished=False) == ["a query"]


@pytest.mark.parametrize("title,expected", [
    ("Ep 17 - Bricks & Burglaries", "Bricks & Burglaries"),
    ("478: Early Retirement Myths Busted", "Early Retirement Myths Busted"),
    ("Angry Gallo Season 2, Episode 11: Minced Beef Thick Soup", "Minced Beef Thick Soup"),
    ("Young & Terrified YT#05: Lazy People Work Double", "Lazy People Work Double"),
    ("December 25 2017 - The Book of Genesis", "The Book of Genesis"),
    ("Sermon on the Mount (Part 2)", "Sermon on the Mount"),
    ("1 Kings 18:25-40", "1 Kings 18:25-40"),  # a book of the Bible, not a number
    ("3 ways to save money", "3 ways to save money"),
])
def test_tidy_strips_numbering_and_dates_around_the_topic(title, expected):
    assert tidy(title) == expected


def test_tidy_shortcut_matches_the_full_rules(prepared_df):
    """Without a digit tidy skips its patterns; the result must be what applying them gives (titles and sentences
    of the real sample slice, plus edge cases)."""
    from podsearch.querygen import filters

    def full_rules(query):
        previous = None
        while previous != query:
            previous = query
            query = filters._EDGE_DATE.sub("", filters._UP_TO_NUMBERING.sub("", query))
            query = filters._TRAILING.sub("", filters._LEADING.sub("", query)).strip(" -–—:|,.")
        return query

    texts = [*prepared_df["title"], *[s for d in prepared_df["description"] for s in split_sentences(d)],
             " - Episode: the end -", "Part: one |", "#hashtag ep", "Folge: Zwei", "٣ Arabic-Indic digit: three"]
    assert [tidy(t) for t in texts] == [full_rules(t) for t in texts]


@pytest.mark.parametrize("query,reason", [
    ("(emails sent to this address will get no direct response)", "boilerplate"),
    ("Subscribe on iTunes and leave a review", "boilerplate"),
    ("more at https://example.com/show", "boilerplate"),
    ("CBS2 News Los Angeles 5P FRI ON THE GO 12_22_17", "date"),
    ("The CL Bryant Show - December 13 2017", "date"),
    ("Der Tag in Hessen 18.12.2017", "date"),
    ("Roy Green Show Hour 3, Segment 2 - Ross McLean", "episode_number"),
    ("Dios de Pactos Parte 2", "episode_number"),
    ("Moose Podcast", "show_name"),
    ("keto diet for beginners", None),
    # judged boilerplate in the first 200-query sample (data/querygen/judged_sample.tsv's history)
    ("parte", "episode_number"),
    ("linkedin", "boilerplate"),
    ("available for free", "boilerplate"),
    ("icantfindmarta and listen @icantfindmarta", "boilerplate"),
    ("questions for december", "date"),
    ("thursdays", "date"),
    ("moose diet", "show_name"),  # short, and one word is the show's
    ("themoosepodcast", "show_name"),  # the title run together, as handles write it
    ("tmp", "show_name"),  # its initials
    ("moose diet keto plans for beginners", None),  # longer: the show word is one of many
    # ... and in the second (seed 1) sample
    ("brown broadcaster", "boilerplate"),  # SermonAudio's template: "Speaker: Scott T. Brown Broadcaster: ..."
    ("tramo", "boilerplate"),  # "Tramo de 08.50 h a 09.00 h"
    ("episode ken", "episode_number"),  # "On this episode Ken and Bran reflect ..."
    ("the thinkery episodes", "episode_number"),  # a feed label with a name
    # ... and in the third (seed 2) sample
    ("weekly fan", "episode_number"),  # "take your calls on their weekly Fan Tuesday"
    ("flickr", "boilerplate"),  # "Image credit: 401(K) 2012/Flickr"
    ("muscle appeared first on", "boilerplate"),  # WordPress: "The post <title> appeared first on <site>"
    # abbreviated days and months, kept before the seed-4 sample was read
    ("fri", "date"),  # "5P FRI ON THE GO 12_22_17"
    ("schroer on dec", "date"),
    ("switch in feb", "date"),
    ("sun of righteousness", None),  # not "sun", "may", "mar", "jan": words and names as often
    ("jan wolfgarten", None),
    # format labels and a show's two-letter initials with a plural s, kept before the seed-5 sample was read
    ("questions and answers", "episode_number"),
    ("introduction", "episode_number"),
    ("introduction to galatians", None),  # a label word in a topic
    ("tmps", "show_name"),
    # ... and before the seed-6 sample was read
    ("thanks for listening", "boilerplate"),
    ("happy holidays", "boilerplate"),
])
def test_reject_reason_names_the_rule(query, reason):
    assert reject_reason(query, "The Moose Podcast", None, 0.0) == reason


def test_words_a_show_repeats_in_its_episodes_name_the_show_not_the_episode(prepared_df):
    # Every description of "Greg & The Morning Buzz" ends "... Listen weekdays 5:30am to 10am at morningbuzz.com";
    # one episode's topic ("football picks") is in that episode only.
    frequencies = DocumentFrequencies(prepared_df["text"], prepared_df["show_id"])
    buzz = prepared_df[prepared_df["show_title"] == "Greg & The Morning Buzz"]
    show = buzz["show_id"].iloc[0]
    assert {"listen", "morningbuzz"} <= frequencies.recurring(show) and "football" not in frequencies.recurring(show)
    recurring = frequencies.recurring(show)
    assert reject_reason("listen morningbuzz", "Greg & The Morning Buzz", frequencies, 0.0, recurring) == "show_name"
    assert reject_reason("listen morningbuzz", "Another Show", frequencies, 0.0,
                         frequencies.recurring("another-show")) is None
    assert reject_reason("football picks", "Greg & The Morning Buzz", frequencies, 0.0, recurring) is None
    # a show of fewer than three episodes repeats nothing; in three, a word must be in two
    assert DocumentFrequencies(["keto diet", "keto bread"], ["s", "s"]).recurring("s") == frozenset()
    assert DocumentFrequencies(["keto diet", "keto bread", "pasta"], ["s", "s", "s"]).recurring("s") == {"keto"}


@pytest.mark.parametrize("title,label", [
    ("Nips: December 4, 2017", "nips"),
    ("Hoy por Hoy Granada (02/12/2017 - 13:05 a 14:00)", "hoy por hoy granada a"),
    ("CBS2 News Los Angeles 5P FRI ON THE GO 12_22_17", "cbs2 news los angeles 5p on the go"),
    ("Onde Road di dom 03/12", "onde road di dom"),
    ("Yankees trade rumours part 1", None),  # no date: the title may be a topic
    ("December 4, 2017", None),  # nothing but a date
])
def test_program_label_is_a_dated_title_without_its_dates(title, label):
    assert program_label(title) == label


def test_a_program_of_dated_broadcasts_repeats_its_furniture(prepared_df):
    # The sample's "Pulp & Paper Radio International" has two episodes, both "Nips: <date>": too few for the show's
    # recurring words, but one program ("nips" was kept as a query in the seed-4 sample). Two undated episodes of a
    # show sharing a topic are not one.
    titles = ["Nips: December 4, 2017", "Nips: December 11, 2017", "Yankees trade rumours part 1",
              "Yankees trade rumours part 2"]
    texts = [f"{titles[0]}. The pulp and paper world, with updates from Sonoco.",
             f"{titles[1]}. The pulp and paper world, with updates from Bemis.",
             f"{titles[2]}. Stanton to the Yankees?", f"{titles[3]}. Stanton to the Yankees!"]
    frequencies = DocumentFrequencies(texts, ["pulp", "pulp", "pinstripe", "pinstripe"], titles)
    assert {"nips", "pulp", "paper"} <= frequencies.recurring("pulp", titles[0])
    assert "sonoco" not in frequencies.recurring("pulp", titles[0])
    assert frequencies.recurring("pulp") == frozenset()  # the show itself is too small
    # judge looks the episode's show and program up once, for all its candidates
    statuses = judge([Candidate("nips", "keyword"), Candidate("sonoco", "keyword")], texts[1], max_words=6,
                     copy_min_words=4, limit=3, show_title="Pulp & Paper Radio International", show_id="pulp",
                     title=titles[1], frequencies=frequencies)
    assert statuses == ["show_name", "kept"]
    assert frequencies.recurring("pinstripe", titles[2]) == frozenset()
    # On the real slice: Radio Popolare's two "Onde Road di dom <dd/mm>" broadcasts are one program
    onde = prepared_df[prepared_df["show_title"] == "Onde Road - Radio Popolare"]
    real = DocumentFrequencies(prepared_df["text"], prepared_df["show_id"], prepared_df["title"])
    assert "dom" in real.recurring(onde["show_id"].iloc[0], onde["title"].iloc[0])
    assert real.recurring(onde["show_id"].iloc[0]) == frozenset()


@pytest.mark.parametrize("title,description,kept,cut", [
    # from the seed-2 judged sample: each cut name came back as a query
    ("Eric Frede-Brought To You By UNH Athletics.", "The best of Greg & The Morning Buzz.", "eric frede", "athletics"),
    ("Training For Stength vs Building Muscle", "... Read More The post Training For Stength vs Building Muscle "
     "appeared first on Red Delta Project .", "building muscle", "appeared"),
    ("Are YOU An 'Emotional Spender'?", "How to avoid becoming one. Image credit: 401(K) 2012/Flickr",
     "emotional spender", "flickr"),
    ("Advent Podcast", "Advent Podcast by Roland Rotherham", "advent", "rotherham"),
    ("Hour 2, Segment 2 - Callers", "Was it a mistake not to re-elect Stephen Harper in 2015? (Photo: Ryan "
     "Remiorz/The Canadian Press) Call us.", "stephen harper", "remiorz"),
    ("What Star Are You Following?", "Which Star are you following this Christmas? Watch and share this new video "
     "from the staff of Chuck Knows Church.", "star", "video"),
    ("Matt Bernier Recap", "The best performances on DRFTV. This podcast is powered by Zencast Media", "drftv",
     "zencast"),
    # from the seed-4 sample ("beresford zion umc") and SermonAudio's template fields ("defense speaker")
    ("Nothing Is Impossible: #morepeace", "2nd sermon in our Advent series: Angels Among Us. Preached by Pastor "
     "Katie Ricke at Beresford Zion UMC.", "advent series", "beresford"),
    ("California Fires", "A new MP3 sermon from Generations Radio: Title: California Fires Subtitle: The World View "
     "Speaker: Adam McManus Broadcaster: Generations Radio", "world view", "speaker"),
    ("Episode 105", "Pod people review Camp Jackin It. Advertisements Filed under: Mexican, Mustache & Madam",
     "pod people", "mustache"),
])
def test_key_phrases_leave_out_sponsor_image_and_author_credits(title, description, kept, cut):
    from podsearch.querygen.keyword import candidate_phrases

    phrases = candidate_phrases(without_furniture(title, description), 3)
    assert kept in phrases and not any(cut in p.split() for p in phrases)
    # an author credit is cut only when it is the whole description after the title
    assert "rotherham" in candidate_phrases(without_furniture("Advent", "A talk by Roland Rotherham. On hope"), 3)


def test_low_content_uses_corpus_idf():
    frequencies = DocumentFrequencies(["the christmas sermon", "christmas joy", "christmas carols", "keto diet"])
    assert frequencies.content_score("christmas") < frequencies.content_score("keto")
    assert reject_reason("christmas joy", "", frequencies, 1.5) == "low_content"
    assert reject_reason("keto diet", "", frequencies, 1.5) is None


def test_pseudo_on_real_sample(prepared_df, tmp_path):
    pairs, stats, timings = generate_pairs(prepared_df, make_params({"pseudo": 3}, shard_size=8), tmp_path / "shards")
    n = len(prepared_df)
    assert list(pairs.columns) == ["query", "episode_id", "generator", "passage"]
    pseudo = stats["generators"]["pseudo"]
    assert stats["episodes"] == n and pseudo["shards"] == -(-n // 8)
    assert sum(pseudo["episodes_by_query_count"].values()) == n
    assert pairs.groupby("episode_id").size().max() <= 3
    assert stats["pairs"] == pseudo["pairs"] == len(pairs) == sum(pseudo["queries_by_generator"].values())
    assert set(pairs["generator"]) <= {TITLE, ICT, SHOW_TITLE}
    assert timings["pseudo"]["episodes_generated"] == n
    text = prepared_df.set_index("episode_id")["text"]
    for row in pairs.itertuples():
        # The query is cut out of the episode text and left out of its passage.
        assert row.passage and row.passage != text[row.episode_id]
        assert reject_reason(row.query, "", None, 0.0) is None  # nothing kept breaks a rule
    ict = pairs[pairs["generator"] == ICT]
    assert len(ict) > 0
    desc = prepared_df.set_index("episode_id")["description"]
    assert all(q in desc[e] for q, e in zip(ict["query"], ict["episode_id"]))
    assert all(q not in p for q, p in zip(ict["query"], ict["passage"]))
    # The real sample's feed furniture is there and is filtered, by name
    assert sum(pseudo["rejected"][r] for r in ("boilerplate", "date", "episode_number")) > 0


def test_keyword_generator_on_real_sample(prepared_df, tmp_path):
    from sentence_transformers import SentenceTransformer

    from podsearch.querygen.keyword import candidate_phrases, maximal_marginal_relevance
    from podsearch.tiny_models import make_tiny_distiluse

    model_dir = make_tiny_distiluse(tmp_path / "tiny", words=" ".join(prepared_df["text"]).split()[:3000])
    vectors = SentenceTransformer(model_dir, device="cpu").encode(prepared_df["text"].tolist(),
                                                                  normalize_embeddings=True)
    context = GenerationContext(model_dir, dict(zip(prepared_df["episode_id"], vectors)))
    params = make_params({"keyword": 2, "pseudo": 1}, shard_size=16)
    pairs, stats, _ = generate_pairs(prepared_df, params, tmp_path / "shards", context=context)
    keywords = pairs[pairs["generator"] == "keyword"]
    assert len(keywords) > len(prepared_df)  # most episodes get two
    assert keywords.groupby("episode_id").size().max() == 2
    assert keywords["query"].str.split().str.len().between(1, 3).all()
    assert keywords["passage"].isna().all()  # a keyword is trained against the whole episode text
    text = prepared_df.set_index("episode_id")
    for row in keywords.itertuples():  # a key phrase is words of the episode's own title or description
        assert row.query in candidate_phrases(without_furniture(text.title[row.episode_id],
                                                                text.description[row.episode_id]), 3)
    assert stats["query_words"]["median"] <= 3
    assert set(stats["generators"]) == {"pseudo", "keyword"}
    assert (tmp_path / "shards" / "keyword").is_dir() and (tmp_path / "shards" / "pseudo").is_dir()
    # Changing only the keyword params keeps pseudo's shards
    _, again, timings = generate_pairs(prepared_df, make_params({"keyword": 2, "pseudo": 1}, shard_size=16,
                                                                keyword={**params["keyword"], "diversity": 0.9}),
                                       tmp_path / "shards", context=context)
    assert timings["pseudo"]["shards_reused"] == again["generators"]["pseudo"]["shards"]
    assert timings["keyword"]["shards_reused"] == 0
    assert "shards_reused" not in again["generators"]["pseudo"]  # run history, not a stat of the output
    # A generator dropped from the mix takes its shards with it: the folder holds what this mix produced
    generate_pairs(prepared_df, make_params({"pseudo": 1}, shard_size=16), tmp_path / "shards", context=context)
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["pseudo"]
    # MMR: the second pick trades similarity for novelty
    doc = np.array([1.0, 0.0, 0.0])
    phrases = np.array([[0.99, 0.14, 0.0], [0.98, 0.2, 0.0], [0.8, 0.0, 0.6]])
    phrases /= np.linalg.norm(phrases, axis=1, keepdims=True)
    assert maximal_marginal_relevance(doc, phrases, 2, diversity=0.0) == [0, 1]
    assert maximal_marginal_relevance(doc, phrases, 2, diversity=0.7) == [0, 2]
    assert candidate_phrases(without_furniture("The keto diet", "Keto diet tips for 2017 at www.x.com"), 2) == {
        "keto": 2, "diet": 2, "keto diet": 2, "tips": 1, "diet tips": 1}


def test_split_sentences_keeps_only_query_sized_ones():
    assert split_sentences("Hi. We talk about bread today! Is rye good? Ok") == ["We talk about bread today!", "Is rye good?"]


def test_doc2query_every_episode_gets_its_samples(t5_dir, tmp_path):
    episodes = tiny.episodes(13)  # 13 = 3 shards of 5 (last short), batches of 4 (last short)
    params = make_params({"doc2query": 3}, t5_dir)
    pairs, stats, _ = generate_pairs(episodes, params, tmp_path / "a")
    cands = candidates_of(tmp_path / "a" / "doc2query")
    assert cands.groupby("episode_id").size().reindex(episodes["episode_id"]).tolist() == [3] * 13
    generator = stats["generators"]["doc2query"]
    assert generator["candidates"] == 39 and stats["episodes"] == 13
    assert sum(generator["rejected"].values()) + generator["surplus_candidates"] + generator["pairs"] == 39
    assert list(pairs.columns) == ["query", "episode_id", "generator", "passage"]
    assert set(pairs["generator"]) <= {"doc2query"}
    # Same params, fresh folder: identical candidates (seeded per shard), and no timing in the shard files.
    generate_pairs(episodes, params, tmp_path / "b")
    pd.testing.assert_frame_equal(cands, candidates_of(tmp_path / "b" / "doc2query"))
    for a, b in zip(sorted((tmp_path / "a").rglob("shard-*")), sorted((tmp_path / "b").rglob("shard-*"))):
        assert a.read_bytes() == b.read_bytes()


def test_instruct_runs_batched_chat_prompts(llama_dir, tmp_path):
    episodes = tiny.episodes(13)
    params = make_params({"instruct": 3}, llama_dir)
    generator = make_generator("instruct", 3, params, GenerationContext(), DocumentFrequencies([]))
    generator.load()
    assert generator.tokenizer.padding_side == "left"
    prompt = generator.prompt(episodes["title"][0], episodes["description"][0])
    assert episodes["title"][0] in prompt and prompt.endswith("<|im_start|>assistant\n")
    done = []
    out = generator.generate(episodes, seed=1, progress=done.append)
    assert len(out) == 13 and sum(done) == 13
    assert all(c.generator == "instruct" for cands in out for c in cands)
    assert out == generator.generate(episodes, seed=1, progress=done.append)
    _, stats, _ = generate_pairs(episodes, params, tmp_path / "shards")
    assert stats["episodes"] == 13 and stats["mix"] == {"instruct": 3}
    assert sum(stats["generators"]["instruct"]["episodes_by_query_count"].values()) == 13


def test_interrupted_run_resumes_to_the_same_output(t5_dir, tmp_path, monkeypatch):
    episodes = tiny.episodes(13)
    params = make_params({"doc2query": 3}, t5_dir, shard_size=4)
    full_pairs, _, _ = generate_pairs(episodes, params, tmp_path / "full")

    real_write = runner._write_shard
    written = []

    def crash_after_two(path, rows, meta):
        if len(written) == 2:
            raise KeyboardInterrupt("simulated interruption")
        real_write(path, rows, meta)
        written.append(path.name)

    monkeypatch.setattr(runner, "_write_shard", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        generate_pairs(episodes, params, tmp_path / "resumed")
    monkeypatch.setattr(runner, "_write_shard", real_write)
    assert sorted(p.name for p in (tmp_path / "resumed" / "doc2query").glob("shard-*")) == written

    generated = []
    real_generate = runner._generate_shard
    monkeypatch.setattr(runner, "_generate_shard", lambda g, shard, *a: generated.append(len(shard)) or real_generate(g, shard, *a))
    pairs, stats, timings = generate_pairs(episodes, params, tmp_path / "resumed")
    assert generated == [4, 1]  # only shards 2 and 3 (13 = 4+4+4+1) were redone
    assert timings["doc2query"]["shards_reused"] == 2 and stats["generators"]["doc2query"]["shards"] == 4
    pd.testing.assert_frame_equal(pairs, full_pairs)


def test_shards_from_other_params_are_not_reused(tmp_path):
    episodes = tiny.episodes(13)

    def reused(params, frame=episodes):
        return generate_pairs(frame, params, tmp_path)[2]["pseudo"]["shards_reused"]

    generate_pairs(episodes, make_params({"pseudo": 3}), tmp_path)
    assert reused(make_params({"pseudo": 3})) == 3
    assert reused(make_params({"pseudo": 3}, seed=8)) == 0
    assert reused(make_params({"pseudo": 2}, seed=8)) == 0
    assert reused(make_params({"pseudo": 2}, seed=8), episodes.iloc[:6]) == 0
    assert len(list((tmp_path / "pseudo").glob("shard-*"))) == 2


def test_bad_input_and_mix_are_clear_errors(tmp_path):
    with pytest.raises(QueryGenError, match="missing column"):
        generate_pairs(tiny.episodes(3).drop(columns="title"), make_params({"pseudo": 3}), tmp_path)
    with pytest.raises(QueryGenError, match="querygen.mix.magic: unknown generator"):
        generate_pairs(tiny.episodes(3), make_params({"magic": 3}), tmp_path)
    with pytest.raises(QueryGenError, match="every generator is at 0"):
        generate_pairs(tiny.episodes(3), make_params({"pseudo": 0}), tmp_path)
    with pytest.raises(QueryGenError, match="querygen.mix.pseudo: 'x' is not a whole number"):
        generate_pairs(tiny.episodes(3), make_params({"pseudo": "x"}), tmp_path)
    with pytest.raises(QueryGenError, match="keyword generator needs"):
        generate_pairs(tiny.episodes(3), make_params({"keyword": 1}), tmp_path)


def test_stage_writes_pairs_stats_and_timings(tmp_path, monkeypatch):
    import stages.generate_queries as stage

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["querygen"]["mix"] = {"pseudo": 3, "keyword": 0, "doc2query": 0, "instruct": 0}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    tiny.episodes(9).assign(show_id="s", language="English", pub_date="", audio="").to_parquet(tmp_path / "ep.parquet")
    monkeypatch.chdir(tmp_path)
    stage.main(["--episodes", "ep.parquet", "--out", "pairs.parquet", "--shards", "shards", "--stats", "s.json",
                "--timings", "logs/t.json"])
    pairs = pd.read_parquet("pairs.parquet")
    stats = json.loads(Path("s.json").read_text())
    assert stats["mix"] == {"pseudo": 3} and stats["episodes"] == 9 and stats["pairs"] == len(pairs)
    assert not any("seconds" in key for key in json.dumps(stats).split('"'))  # counts only; times go to the log
    assert json.loads(Path("logs/t.json").read_text())["pseudo"]["generation_seconds"] >= 0
    assert {"query", "episode_id", "generator"} <= set(pairs.columns)
    assert pairs["episode_id"].map(type).eq(str).all()


def test_shards_written_by_other_rules_are_not_resumed(tmp_path):
    """The querygen code is part of every shard's fingerprint: editing a filter rule changes it, so a rerun
    regenerates shards instead of resuming statuses the old rules wrote."""
    def copy_of_package(name: str) -> Path:
        copy = tmp_path / name
        copy.mkdir()
        for path in Path(runner.__file__).parent.glob("*.py"):
            (copy / path.name).write_bytes(path.read_bytes())
        return copy

    assert runner.code_digest(copy_of_package("same")) == runner.code_digest()
    edited = copy_of_package("edited")
    (edited / "filters.py").write_text((edited / "filters.py").read_text() + "\nSHORT_QUERY = 4\n")
    assert runner.code_digest(edited) != runner.code_digest()
