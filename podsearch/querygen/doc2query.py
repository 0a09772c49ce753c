"""doc2query (Nogueira et al.): a seq2seq model trained to write the queries a passage answers, sampled with top-p.

Recipe defaults: doc2query/all-t5-base-v1, input truncated to 256 tokens, max_length 64, top_p 0.95, 3 per episode.
"""
from __future__ import annotations

import pandas as pd

from podsearch.embeddings import length_sorted_batches
from podsearch.querygen.base import Candidate, Progress, QueryGenerator
from podsearch.querygen.hf import device_and_dtype, load_pretrained

GENERATOR = "doc2query"


class Doc2QueryGenerator(QueryGenerator):
    name = "doc2query"

    def __init__(
        self,
        model: str,
        *,
        num_queries: int,
        max_input_tokens: int,
        max_length: int,
        top_p: float,
        batch_size: int,
        device: str = "auto",
    ):
        self.spec = model
        self.num_queries = num_queries
        self.max_input_tokens = max_input_tokens
        self.max_length = max_length
        self.top_p = top_p
        self.batch_size = batch_size
        self.device, self.dtype = device_and_dtype(device)
        self.tokenizer = self.model = None

    def load(self) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.tokenizer = load_pretrained(AutoTokenizer, self.spec, "doc2query tokenizer")
        model = load_pretrained(AutoModelForSeq2SeqLM, self.spec, "doc2query model", dtype=self.dtype)
        self.model = model.to(self.device).eval()

    def generate(self, episodes: pd.DataFrame, seed: int, progress: Progress) -> list[list[Candidate]]:
        import torch

        torch.manual_seed(seed)
        encoded = self.tokenizer(
            episodes["text"].tolist(), truncation=True, max_length=self.max_input_tokens
        )["input_ids"]
        out: list[list[Candidate]] = [[] for _ in range(len(episodes))]
        for rows in length_sorted_batches([len(ids) for ids in encoded], self.batch_size):
            batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt")
            with torch.inference_mode():
                generated = self.model.generate(
                    **batch.to(self.device),
                    max_length=self.max_length,
                    do_sample=True,
                    top_p=self.top_p,
                    num_return_sequences=self.num_queries,
                )
            texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
            # generate returns the num_return_sequences samples of each input next to each other.
            for pos, row in enumerate(rows):
                chunk = texts[pos * self.num_queries:(pos + 1) * self.num_queries]
                out[row] = [Candidate(t.strip(), GENERATOR) for t in chunk]
            progress(len(rows))
        return out
