"""ONNX export + onnxruntime encoder: SentenceTransformer's embeddings for tiny random models shaped like distiluse,
all-MiniLM (BERT) and XLM-RoBERTa; the search CLI without torch; the SentenceTransformer fallback and its reason."""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from tokenizers import Tokenizer

from podsearch.onnx_encoder import INT8, MAX_DIFF, META, PROBES, TOKENIZER, OnnxEncoder, OnnxError
from podsearch.search.build import build_index

ROOT = Path(__file__).resolve().parents[1]

QUERIES = [
    "eat better during xmas holidays",
    "Recetas saludables para Navidad: ¿qué comer? Ärger über die Größe, naïve café, 日本語の番組 🎄",
    # far past every max_seq_length here (64): exercises truncation
    " ".join(["a very long query about the history of science podcasts and football interviews"] * 40),
    "hi",
    "THE Bitcoin Bubble!! explained, in 10 minutes?",
]
KINDS = ("distiluse", "bert", "xlm_roberta")


def _st(folder: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(folder, device="cpu")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, tuple[str, Path]]:
    """{kind: (sentence-transformers folder, ONNX folder)} for the three tiny models."""
    from podsearch.onnx_encoder import export_onnx
    from podsearch import tiny_models

    words = " ".join(QUERIES).split()
    out = {}
    for kind in KINDS:
        base = tmp_path_factory.mktemp(kind)
        model_dir = getattr(tiny_models, f"make_tiny_{kind}")(base / "st", words=words)
        export_onnx(_st(model_dir), base / "onnx", source=model_dir)
        out[kind] = (model_dir, base / "onnx")
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_gives_sentence_transformer_embeddings(exported, kind):
    model_dir, folder = exported[kind]
    reference = _st(model_dir)
    encoder = OnnxEncoder(folder)
    meta = json.loads((folder / META).read_text())
    assert meta["max_seq_length"] == reference.max_seq_length == 64
    assert meta["normalized"] == (kind != "distiluse") and meta["dimension"] == (16 if kind == "distiluse" else 32)
    assert meta["inputs"] == ["input_ids", "attention_mask"] + (["token_type_ids"] if kind == "bert" else [])
    assert meta["probes"] == {"sentences": len(PROBES), "fp32_max_abs_diff_allowed": MAX_DIFF}  # no measurement
    assert np.abs(encoder.encode(PROBES) - reference.encode(PROBES)).max() < 1e-5

    # Same token ids and mask as SentenceTransformer (truncation, special tokens, lowercasing, padding).
    features = reference.preprocess(QUERIES)
    tokens = encoder.tokenize(QUERIES)
    for name in meta["inputs"]:
        np.testing.assert_array_equal(tokens[name], features[name].numpy())
    assert tokens["attention_mask"].sum(axis=1).max() == 64  # the long query is cut

    expected = reference.encode(QUERIES)
    got = encoder.encode(QUERIES)  # one mixed-length batch: padding must not change any row
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5
    one_by_one = np.concatenate([encoder.encode([q]) for q in QUERIES])
    assert np.abs(one_by_one - expected).max() < 1e-5

    int8 = OnnxEncoder(folder, int8=True).encode(QUERIES)
    cosine = (int8 * expected).sum(1) / np.linalg.norm(int8, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.95
    assert (folder / "model.onnx.data").is_file() and (folder / f"{INT8}.data").is_file()  # memory-mapped weights


def test_bert_graph_is_fused(exported):
    meta = json.loads((exported["bert"][1] / META).read_text())
    assert meta["optimization"].startswith("transformer fusion")


def test_runtime_sets_padding_and_truncation_whatever_tokenizer_json_says(exported, tmp_path):
    folder = shutil.copytree(exported["bert"][1], tmp_path / "onnx")
    tokenizer = Tokenizer.from_file(str(folder / TOKENIZER))
    tokenizer.enable_padding(length=128)  # as all-MiniLM-L6-v2's packaged tokenizer.json does
    tokenizer.enable_truncation(max_length=128)
    tokenizer.save(str(folder / TOKENIZER))
    encoder = OnnxEncoder(folder)
    assert encoder.tokenize(["hi", "eat better"])["input_ids"].shape == (2, 4)  # [CLS] eat better [SEP]
    assert encoder.tokenize([QUERIES[2]])["input_ids"].shape == (1, 64)
    assert OnnxEncoder(folder, max_seq_length=16).tokenize([QUERIES[2]])["input_ids"].shape == (1, 16)


def test_export_errors_raise_the_module_error(exported):
    import torch
    from sentence_transformers.sentence_transformer.modules import Dense

    from podsearch.onnx_encoder import OnnxError, export_onnx

    model_dir, _ = exported["bert"]
    prompted = _st(model_dir)
    prompted.prompts, prompted.default_prompt_name = {"query": "query: "}, "query"
    with pytest.raises(OnnxError, match="prompt"):
        export_onnx(prompted, Path(model_dir).parent / "prompted")

    class DataDependent(torch.nn.Module):
        """float() of a tensor: tracing records the probe batch's value as a constant."""

        def forward(self, x):
            return x * float(x.abs().max())

    untraceable = _st(model_dir)
    untraceable.append(Dense(32, 8, activation_function=DataDependent()))
    with pytest.raises(OnnxError, match="does not reproduce the model"):
        export_onnx(untraceable, Path(model_dir).parent / "untraceable")


def test_missing_or_broken_folder_raises_encoder_error(exported, tmp_path):
    with pytest.raises(OnnxError, match="onnx.json.*run the export stage"):
        OnnxEncoder(tmp_path / "nope")
    broken = shutil.copytree(exported["bert"][1], tmp_path / "broken")
    (broken / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(OnnxError, match="broken/model.onnx: damaged or incomplete .*`dvc checkout --force "):
        OnnxEncoder(broken)


# --- search ----------------------------------------------------------------------------------------------------------

def build_onnx_index(folder: Path, onnx_dir: Path, int8: bool = False):
    from tests.test_search import make_episodes

    episodes = make_episodes()
    ids, texts = episodes["episode_id"].tolist(), episodes["text"].tolist()
    vectors = OnnxEncoder(onnx_dir).encode(texts)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    manifest = build_index(folder, episodes, {"finetuned": (ids, vectors)}, {"finetuned": "models/gone"},
                           onnx={"finetuned": {"path": str(onnx_dir), "int8": int8}})
    return manifest, ids, texts


def test_index_records_the_export_and_the_engine_checks_its_width(exported, tmp_path, caplog):
    from podsearch.search.engine import SearchEngine

    model_dir, onnx_dir = exported["distiluse"]
    manifest, ids, texts = build_onnx_index(tmp_path / "index", onnx_dir, int8=True)
    # Local folders are recorded relative to the index, so the index works from any directory and after a move.
    entry = manifest["encoders"]["finetuned"]
    assert entry["onnx"]["int8"] is True and not Path(entry["onnx"]["path"]).is_absolute()
    assert (tmp_path / "index" / entry["onnx"]["path"]).resolve() == Path(onnx_dir).resolve()
    assert entry["path"] is None  # models/gone does not exist: resolved by spec, as a hub id would be
    manifest["encoders"]["finetuned"].update(spec=model_dir, onnx={"path": str(exported["bert"][1]), "int8": False})
    (tmp_path / "index" / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="podsearch.search.engine"):
        assert SearchEngine(tmp_path / "index").search(texts[3], k=1)[0].episode_id == ids[3]
    assert "gives 32-d vectors, the index 16" in caplog.text  # BERT's export for distiluse's vectors: fallback


NO_TORCH = """
import json, sys
for name in ("torch", "transformers", "sentence_transformers"):
    sys.modules[name] = None  # any import of them now fails
from podsearch.search import cli
cli.main(sys.argv[1:])
"""


@pytest.mark.parametrize("int8", [False, True])
def test_cli_searches_with_torch_unimportable(exported, tmp_path, int8):
    _, ids, texts = build_onnx_index(tmp_path / "index", exported["distiluse"][1], int8=int8)
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH, texts[3], "-k", "1", "--json", "--index", str(tmp_path / "index")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    hit = json.loads(result.stdout)["results"][0]
    assert hit["episode_id"] == ids[3]
    assert hit["score"] == pytest.approx(1.0, abs=1e-3 if not int8 else 0.05)
    assert "SentenceTransformer" not in result.stderr  # no fallback


def test_fallback_to_sentence_transformer_logs_why(exported, tmp_path, caplog):
    from sentence_transformers import SentenceTransformer

    from podsearch.search.engine import SearchEngine

    model_dir, onnx_dir = exported["distiluse"]
    gone = shutil.copytree(onnx_dir, tmp_path / "gone")
    _, ids, texts = build_onnx_index(tmp_path / "index", gone)
    shutil.rmtree(gone)
    manifest_path = tmp_path / "index" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["encoders"]["finetuned"]["spec"] = model_dir
    manifest_path.write_text(json.dumps(manifest))

    engine = SearchEngine(tmp_path / "index")
    with caplog.at_level(logging.WARNING, logger="podsearch.search.engine"):
        assert engine.search(texts[3], k=1)[0].episode_id == ids[3]
        engine.search(texts[2], k=1)
    assert isinstance(engine.encoder("finetuned"), SentenceTransformer)
    reasons = [r.getMessage() for r in caplog.records if "SentenceTransformer" in r.getMessage()]
    assert len(reasons) == 1 and "gone/onnx.json" in reasons[0] and "run the export stage" in reasons[0]

    del manifest["encoders"]["finetuned"]["onnx"]
    manifest_path.write_text(json.dumps(manifest))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="podsearch.search.engine"):
        SearchEngine(tmp_path / "index").warm_up()
    assert "names no ONNX export" in caplog.text


# --- the check_int8 stage ---------------------------------------------------------------------------------------------

def test_check_int8_stage_compares_int8_with_fp32(exported, tmp_path, monkeypatch):
    from podsearch.embeddings import encode_texts, save_embeddings
    from tests.test_evaluate import EPISODES, load_stage, write_inputs

    ids = write_inputs(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**params, "onnx": {"opset": 17, "int8_tolerance": 0.005}}))
    for name, kind in (("base", "bert"), ("finetuned", "xlm_roberta")):
        folder = shutil.copytree(exported[kind][1], tmp_path / "models/onnx" / name)
        save_embeddings(tmp_path / f"data/embeddings/{name}.npy", ids, encode_texts(OnnxEncoder(folder), EPISODES))
    monkeypatch.chdir(tmp_path)
    load_stage("check_int8").main([])

    report = json.loads((tmp_path / "stats/onnx.json").read_text())
    assert report["tolerance"] == 0.005 and report["compared"] == ["recall@10", "recall@30", "mrr@30"]
    for name in ("base", "finetuned"):
        entry = report["models"][name]
        assert set(entry["fp32"]) == set(entry["int8"]) == set(entry["delta"]) == {
            "synthetic", "curated_dev", "curated_test"}
        worst = max(abs(v) for part in entry["delta"].values() for v in part.values())
        assert entry["max_abs_delta"] == worst and entry["use_int8"] == (worst <= 0.005)
        assert entry["delta"]["synthetic"]["mrr@30"] == pytest.approx(
            entry["int8"]["synthetic"]["mrr@30"] - entry["fp32"]["synthetic"]["mrr@30"], abs=1e-6)
