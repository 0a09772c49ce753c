"""Helpers, no tests: tiny random models with locally built tokenizers, saved to a folder like a hub snapshot, so
the generators run their real loading and decoding code without any download. Shared by the querygen tests and its benchmark."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

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
