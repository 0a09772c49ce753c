"""Retrieval backends behind one small interface: dense vector indexes (index.py, pinecone_index.py), BM25 (bm25.py),
fusion of several systems' rankings (fusion.py), and the deterministic top-k they all share (ranking.py).

The evaluate stage and the search service (podsearch/search/) both use exactly these. Import from the modules: the
package itself imports nothing, so `search` does not pay for bm25s and scipy when its system does not use BM25.
"""
