"""Tiny random sentence-transformers models for tests: no downloads, seconds to train.

`make_tiny_distiluse` mirrors the recipe's distiluse-base-multilingual-cased-v2 layout (DistilBERT transformer ->
mean pooling -> Dense with tanh to a smaller dimension, 768 -> 512 there) at toy sizes.
"""
from __future__ import annotations

import re
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DEFAULT_WORDS = (
    "the a an and of to in for on with podcast episode show news music story talk interview history science "
    "comedy sports football politics crime true culture health money business tech tech technology week today "
    "how why what who learn life love game games film movie book books kids family food travel "
).split()


def _vocab(words) -> list[str]:
    tokens: list[str] = []
    for word in words:
        tokens.extend(re.findall(r"\w+|[^\w\s]", str(word).lower()))
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    # single characters and their ## continuations let WordPiece spell any unseen lowercase word
    pieces = letters + [f"##{c}" for c in letters] + list(".,!?'-:;()&/\"")
    return list(dict.fromkeys(SPECIAL_TOKENS + pieces + tokens))


def make_tiny_distiluse(folder, words=None, dim: int = 32, out_dim: int = 16, layers: int = 2, seed: int = 0) -> str:
    """Build and save a tiny DistilBERT + mean pooling + Dense(tanh) sentence-transformers model into `folder`.

    `words`: extra vocabulary (e.g. the fixture texts) so the tokenizer does not map most input to [UNK].
    Returns the folder as a str, loadable with SentenceTransformer(folder) or as a `train.base_model` spec.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizerFast

    folder = Path(folder)
    hf_dir = folder / "_hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    vocab_file = hf_dir / "vocab.txt"
    vocab_file.write_text("\n".join(_vocab(list(DEFAULT_WORDS) + list(words or []))) + "\n")
    tokenizer = DistilBertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True, model_max_length=128)
    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size, dim=dim, hidden_dim=2 * dim, n_layers=layers, n_heads=2,
        max_position_embeddings=128, dropout=0.0, attention_dropout=0.0,
    )
    DistilBertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)

    transformer = Transformer(str(hf_dir), max_seq_length=64)
    pooling = Pooling(dim, "mean")
    dense = Dense(dim, out_dim, activation_function=torch.nn.Tanh())
    model = SentenceTransformer(modules=[transformer, pooling, dense], device="cpu")
    out = folder / "model"
    model.save(str(out))
    return str(out)
