"""An instruction-tuned causal LM asked, few-shot, for the short queries a listener would type to find an episode.

Small chat models tend to echo the description back; the prompt fights that (it asks for keyword-like queries and
shows two examples that do not copy), and the shared filter rejects what still does.
"""
from __future__ import annotations

import re

import pandas as pd

from podsearch.embeddings import length_sorted_batches
from podsearch.querygen.base import Candidate, Progress, QueryGenerator
from podsearch.querygen.hf import device_and_dtype, load_pretrained

GENERATOR = "instruct"

SYSTEM = (
    "You write podcast search queries. Given a podcast episode, write {n} different short queries (2 to 6 words) "
    "that a listener would type into a podcast app to find it. Use the topics, people and places it is about. "
    "Never copy sentences from the description. Write one query per line and nothing else."
)
# Few-shot examples: keyword-ish and natural queries, none a phrase of the description.
EXAMPLES = (
    (
        "Title: Ep. 12 - Why Bitcoin Crashed\n"
        "Description: This week Sam and Priya talk about the cryptocurrency sell-off, exchange hacks and whether "
        "regulation is coming.",
        ("bitcoin crash explained", "cryptocurrency regulation news", "crypto exchange hacks"),
    ),
    (
        "Title: Sourdough for beginners\n"
        "Description: Baker Anna Weiss shares her starter recipe and answers your questions about hydration and "
        "oven temperature.",
        ("how to make sourdough bread", "sourdough starter recipe", "baking tips anna weiss"),
    ),
)
# Numbering, bullets and quotes the model wraps its lines in.
_LINE_DECORATION = re.compile(r"^\s*(?:\d+[.):]|[-*•])?\s*[\"'“”]?|[\"'“”]?\s*$")


def parse_queries(completion: str, finished: bool = True) -> list[str]:
    """One query per non-empty line, numbering/bullets/quotes stripped; lead-in lines ("Here are...:") dropped.

    An unfinished completion (cut by max_new_tokens) loses its last line unless a newline closed it: a query cut
    mid-word ("sourdough sta") is worse than none.
    """
    lines = completion.splitlines()
    if not finished and lines and not completion.endswith("\n"):
        lines = lines[:-1]
    cleaned = (_LINE_DECORATION.sub("", line).strip() for line in lines)
    return [line for line in cleaned if line and not line.endswith(":")]


def _lines_done(prompt_len: int, newline_ids: list[int], n: int):
    """Stop a row once it has written `n` newlines: lines past the n-th are never used, so decoding them is waste."""
    import torch
    from transformers import StoppingCriteria

    class LinesDone(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            new = input_ids[:, prompt_len:]
            return torch.isin(new, torch.tensor(newline_ids, device=new.device)).sum(dim=1) >= n

    return LinesDone()


class InstructGenerator(QueryGenerator):
    name = "instruct"

    def __init__(
        self,
        model: str,
        *,
        num_queries: int,
        max_input_tokens: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        batch_size: int,
        gguf_file: str | None = None,
        device: str = "auto",
    ):
        self.spec = model
        self.gguf_file = gguf_file
        self.num_queries = num_queries
        self.max_input_tokens = max_input_tokens
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.batch_size = batch_size
        self.device, self.dtype = device_and_dtype(device)
        self.tokenizer = self.model = None

    def load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        extra = {"gguf_file": self.gguf_file} if self.gguf_file else {}
        tokenizer = load_pretrained(AutoTokenizer, self.spec, "instruct tokenizer", **extra)
        # Batched decoding appends new tokens at the right, so every prompt must end at the same position.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = load_pretrained(AutoModelForCausalLM, self.spec, "instruct model", dtype=self.dtype, **extra)
        self.tokenizer, self.model = tokenizer, model.to(self.device).eval()
        # Tokens that end a line; BPE vocabularies also merge newlines ("\n\n"), so look them all up.
        vocab = tokenizer.get_vocab()
        self.newline_ids = sorted(
            i for tok, i in vocab.items() if tok and "\n" in tokenizer.convert_tokens_to_string([tok])
        )

    def prompt(self, title: str, description: str) -> str:
        """The chat prompt for one episode, the description cut to `max_input_tokens` tokens."""
        desc_ids = self.tokenizer(description, add_special_tokens=False)["input_ids"][: self.max_input_tokens]
        episode = f"Title: {title}\nDescription: {self.tokenizer.decode(desc_ids)}"
        messages = [{"role": "system", "content": SYSTEM.format(n=self.num_queries)}]
        for example, queries in EXAMPLES:
            messages += [
                {"role": "user", "content": example},
                {"role": "assistant", "content": "\n".join(queries[: self.num_queries])},
            ]
        messages.append({"role": "user", "content": episode})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, episodes: pd.DataFrame, seed: int, progress: Progress) -> list[list[Candidate]]:
        import torch

        torch.manual_seed(seed)
        prompts = [self.prompt(t, d) for t, d in zip(episodes["title"], episodes["description"])]
        # The chat template already holds the special tokens; adding them again would double the BOS.
        encoded = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        out: list[list[Candidate]] = [[] for _ in range(len(episodes))]
        eos = self.model.generation_config.eos_token_id
        eos_ids = torch.tensor([eos] if isinstance(eos, int) else list(eos or [self.tokenizer.eos_token_id]))
        for rows in length_sorted_batches([len(ids) for ids in encoded], self.batch_size):
            batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt")
            prompt_len = batch["input_ids"].shape[1]
            with torch.inference_mode():
                generated = self.model.generate(
                    **batch.to(self.device),
                    max_new_tokens=self.max_new_tokens,
                    do_sample=True,
                    temperature=self.temperature,
                    top_p=self.top_p,
                    pad_token_id=self.tokenizer.pad_token_id,
                    stopping_criteria=[_lines_done(prompt_len, self.newline_ids, self.num_queries)],
                )
            new_tokens = generated[:, prompt_len:].cpu()
            finished = torch.isin(new_tokens, eos_ids).any(dim=1)
            completions = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for row, completion, done in zip(rows, completions, finished.tolist()):
                out[row] = [Candidate(q, GENERATOR) for q in parse_queries(completion, done)]
            progress(len(rows))
        return out
