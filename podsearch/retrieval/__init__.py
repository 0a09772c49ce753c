"""Retrieval backends behind one small interface: dense vector indexes, BM25 and rank fusion.

The evaluate stage and the search service (podsearch/search/) both use exactly these names.
"""
from podsearch.retrieval.bm25 import BM25Index
from podsearch.retrieval.fusion import FUSION_METHODS, Fusion, FusionError
from podsearch.retrieval.index import INDEX_KINDS, VectorIndex, make_index

__all__ = ["BM25Index", "FUSION_METHODS", "Fusion", "FusionError", "INDEX_KINDS", "VectorIndex", "make_index"]
