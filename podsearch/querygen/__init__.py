"""Synthetic (query, episode) pairs for fine-tuning: a mix of generators behind one interface.

`querygen.mix` says how many queries per episode each generator writes: pseudo (title + inverse-cloze sentences, no
model), keyword (key phrases ranked against the episode vector), doc2query (seq2seq) and instruct (a chat LM). All go
through the same filter and resumable shard runner (`runner.py`, where `generate_pairs` starts).
"""
from podsearch.querygen.base import Candidate, QueryGenerator
from podsearch.querygen.runner import GENERATORS, GenerationContext, QueryGenError, generate_pairs, make_generator

__all__ = ["Candidate", "GENERATORS", "GenerationContext", "QueryGenError", "QueryGenerator", "generate_pairs",
           "make_generator"]
