"""Tiny random models and data for tests and benches: no downloads, seconds to train or run.

Encoders: `make_tiny_distiluse` mirrors the recipe's distiluse-base-multilingual-cased-v2 layout (DistilBERT transformer ->
mean pooling -> Dense with tanh to a smaller dimension, 768 -> 512 there) at toy sizes; `make_tiny_bert` the
all-MiniLM-L6-v2 layout (BERT -> mean pooling -> Normalize); `make_tiny_xlm_roberta` a multilingual one
(XLM-RoBERTa with a SentencePiece-style Unigram tokenizer and no token_type_ids -> CLS pooling -> Normalize).
Query generators: `make_t5` (seq2seq, as doc2query) and `make_llama` (a chat model, as SmolLM2), with locally
trained tokenizers, saved like a hub snapshot so the generators run their real loading and decoding code; and
`episodes`, fake prepared episodes of varied length.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

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
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizerFast

    folder = Path(folder)
    hf_dir = folder / "_hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    vocab_file = hf_dir / "vocab.txt"
    vocab_file.write_text("\n".join(_vocab(list(DEFAULT_WORDS) + list(words or []))) + "\n")
    tokenizer = DistilBertTokenizerFast(vocab=str(vocab_file), do_lower_case=True, model_max_length=128)
    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size, dim=dim, hidden_dim=2 * dim, n_layers=layers, n_heads=2,
        max_position_embeddings=128, dropout=0.0, attention_dropout=0.0,
    )
    DistilBertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)

    return _save(folder, hf_dir, [Pooling(dim, "mean"), Dense(dim, out_dim, activation_function=torch.nn.Tanh())])


def make_tiny_bert(folder, words=None, dim: int = 32, layers: int = 2, seed: int = 0) -> str:
    """BertModel (WordPiece, lowercasing, token_type_ids) -> mean pooling -> Normalize, like all-MiniLM-L6-v2."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
    from transformers import BertConfig, BertModel, BertTokenizerFast

    hf_dir = Path(folder) / "_hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    vocab_file = hf_dir / "vocab.txt"
    vocab_file.write_text("\n".join(_vocab(list(DEFAULT_WORDS) + list(words or []))) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(vocab_file), do_lower_case=True, model_max_length=128)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=dim, num_hidden_layers=layers,
                        num_attention_heads=4, intermediate_size=2 * dim, max_position_embeddings=128)
    BertModel(config, add_pooling_layer=False).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    return _save(folder, hf_dir, [Pooling(dim, "mean"), Normalize()])


def make_tiny_xlm_roberta(folder, words=None, dim: int = 32, layers: int = 2, seed: int = 0) -> str:
    """XLMRobertaModel (Unigram pieces, case kept, no token_type_ids, positions offset by the pad id) -> CLS
    pooling -> Normalize."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizer

    hf_dir = Path(folder) / "_hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    pieces = [t for t in _vocab(list(DEFAULT_WORDS) + list(words or [])) if t not in SPECIAL_TOKENS]
    # Whole words start with the metaspace; single characters (scored lowest) spell anything else.
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("\u2581" + t, -1.0) for t in pieces if not t.startswith("##")] + [("\u2581", -2.0)]
    vocab += [(t[2:], -3.0) for t in pieces if t.startswith("##")] + [("<mask>", 0.0)]
    tokenizer = XLMRobertaTokenizer(vocab=vocab, model_max_length=128)
    torch.manual_seed(seed)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=dim, num_hidden_layers=layers,
                              num_attention_heads=4, intermediate_size=2 * dim, max_position_embeddings=130,
                              pad_token_id=tokenizer.pad_token_id, type_vocab_size=1)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    return _save(folder, hf_dir, [Pooling(dim, "cls"), Normalize()])


def _save(folder, hf_dir: Path, head: list) -> str:
    """Transformer (max 64 tokens) from `hf_dir`, then `head`, saved as a sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Transformer

    model = SentenceTransformer(modules=[Transformer(str(hf_dir), max_seq_length=64), *head], device="cpu")
    out = Path(folder) / "model"
    model.save(str(out))
    return str(out)


# --- the query generators' models (seq2seq as doc2query, chat as SmolLM2) and fake episodes ------------------------
SPECIALS = ["<pad>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WORDS = (
    "bitcoin crash sourdough bread recipe football match review interview history war politics election music "
    "album guitar comedy movie science space rocket health sleep coffee travel japan podcast episode news week"
).split()


def episodes(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` fake episodes of varied length (so length sorting matters), with unique ids."""
    import random

    rng = random.Random(seed)

    def words(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    rows = []
    for i in range(n):
        title = words(rng.randint(2, 6)).title()
        description = ". ".join(words(rng.randint(4, 12)).capitalize() for _ in range(rng.randint(1, 4))) + "."
        show_title, show_description = f"Show {i % 3}", f"A show about {words(3)}."
        rows.append({
            "episode_id": f"{i:032x}",
            "text": f"{title}. {description} {show_title}. {show_description}",
            "title": title,
            "description": description,
            "show_id": f"show-{i % 3}",
            "show_title": show_title,
            "show_description": show_description,
        })
    return pd.DataFrame(rows)


def _tokenizer(eos: str, **extra):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [" ".join(WORDS), "Title: Description: query\n1. 2. 3.", CHAT_TEMPLATE]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token=eos, **extra)


def make_t5(folder: Path, d_model: int = 16, layers: int = 1) -> Path:
    """A small random T5 (seq2seq, as doc2query/all-t5-base-v1) with its tokenizer, in `folder`."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = _tokenizer("</s>")
    config = T5Config(
        vocab_size=len(tokenizer), d_model=d_model, d_ff=2 * d_model, d_kv=d_model // 2, num_layers=layers,
        num_decoder_layers=layers, num_heads=2,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_llama(folder: Path) -> Path:
    """A 1-layer Llama chat model (as SmolLM2) with a ChatML template, in `folder`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _tokenizer("<|im_end|>", chat_template=CHAT_TEMPLATE)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
