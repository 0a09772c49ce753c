"""The names inside an index folder, shared by the builder (build.py) and the engine (engine.py).

A module of its own so that `search` reads an index without importing what building one needs (pandas, bm25s).
"""
MANIFEST = "manifest.json"
META = "meta.parquet"
VECTORS = "vectors"
BM25 = "bm25"
BM25_SYSTEM = "bm25"
# 3: encoders name their ONNX export; 4: local model paths relative to the index folder; 5: encoders name their kind
FORMAT_VERSION = 5
