"""Encoders on ONNX Runtime: `export_onnx` writes a SentenceTransformer to a folder that `OnnxEncoder` runs with
onnxruntime, `tokenizers` and numpy only: torch and sentence-transformers take far longer to import than onnxruntime,
and a search should not wait for them (docs/onnx.md#start-up).

The folder: model.onnx (the model's own modules, fused by onnxruntime's transformer optimizer, which runs fewer, larger
kernels than the unfused graph: docs/onnx.md#corpus-encoding-onnx-against-torch), model.int8.onnx (faster for one
query, docs/onnx.md#latency; stages/check_int8.py decides whether search may use it), their weights in
memory-mapped *.data files, tokenizer.json, and onnx.json.

The same model gives the same bytes on any CPU: the graph and weights do not depend on the float kernels. What does
(how far onnxruntime's vectors are from torch's on the probe sentences, 1.7e-7 on one CPU and 2.2e-7 on another) is
checked against MAX_DIFF and logged, never written into the folder (docs/reproducibility.md).
"""
from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from podsearch.artifacts import reading, writing
from podsearch.errors import PodsearchError

log = logging.getLogger(__name__)
META, TOKENIZER, FP32, INT8 = "onnx.json", "tokenizer.json", "model.onnx", "model.int8.onnx"
FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
MAX_DIFF = 1e-4  # fp32 differs from torch by rounding only (docs/onnx.md); more means the graph is not the model
# Lengths that pad the traced batch, languages, case, and one far past any max_seq_length.
PROBES = ["eat better during xmas", "Recetas: ¿qué comer? Ärger über die Größe, café", "THE Bitcoin Bubble!!", "hi",
          "a long text about science podcasts " * 80]


class OnnxError(PodsearchError):
    """A model that cannot be exported faithfully, or a folder that cannot be loaded (search then falls back)."""


def _exported(folder: str | Path) -> Path:
    """The folder, or an OnnxError when the export stage has not written it."""
    folder = Path(folder)
    if not (folder / META).exists():
        raise OnnxError(f"{folder / META}: not found; run the export stage")
    return folder


class OnnxEncoder:
    """`.encode(list[str]) -> float32 [n, dim]`; threads: 1 for queries, 0 for onnxruntime's default (one per core)."""

    def __init__(self, folder: str | Path, threads: int = 1, int8: bool = False, max_seq_length: int | None = None):
        self.folder = _exported(folder)
        # OnnxError, not the generic damaged error: search falls back to SentenceTransformer on it, and says why.
        with reading(self.folder / META, OnnxError) as path:
            self.meta = json.loads(path.read_text())
            limit, pad = int(max_seq_length or self.meta["max_seq_length"]), int(self.meta["pad_id"])
        with reading(self.folder / TOKENIZER, OnnxError) as path:
            self.tokenizer = Tokenizer.from_file(str(path))
            # Whatever tokenizer.json says (MiniLM's pads to 128): cut at max_seq_length, pad to the batch's longest.
            self.tokenizer.enable_truncation(limit)
            self.tokenizer.enable_padding(pad_id=pad, pad_token=self.meta["pad_token"])
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        with reading(self.folder / (INT8 if int8 else FP32), OnnxError) as path:  # and its .data file
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        encodings = self.tokenizer.encode_batch(list(texts))
        return {n: np.array([getattr(e, FIELDS[n]) for e in encodings], dtype=np.int64) for n in self.meta["inputs"]}

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = [self.session.run(None, self.tokenize(texts[i:i + batch_size]))[0]
               for i in range(0, len(texts), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.meta["dimension"]), np.float32)


class OnnxBundle:
    """An export folder's fp32 files in memory, and a call that builds the same OnnxEncoder from them: a Ray actor
    on another machine gets the model with its task (through the object store) instead of needing a copy of the
    checkout at the same path."""

    def __init__(self, folder: str | Path, threads: int = 1, max_seq_length: int | None = None):
        folder = _exported(folder)
        # Built once here: a damaged export fails in the driver, naming the checkout's file, not an actor's copy.
        OnnxEncoder(folder, threads=1, max_seq_length=max_seq_length)
        names = [META, TOKENIZER, FP32] + ([FP32 + ".data"] if (folder / (FP32 + ".data")).exists() else [])
        with reading(folder, OnnxError):
            self.files = {name: (folder / name).read_bytes() for name in names}
        self.source, self.threads, self.max_seq_length = str(folder), threads, max_seq_length

    def __call__(self) -> OnnxEncoder:
        copy = tempfile.TemporaryDirectory(prefix="onnx-")  # removed when the encoder (the actor) goes
        for name, data in self.files.items():
            (Path(copy.name) / name).write_bytes(data)
        encoder = OnnxEncoder(copy.name, threads=self.threads, max_seq_length=self.max_seq_length)
        encoder.copy = copy
        return encoder


def export_onnx(model, out_dir: str | Path, opset: int = 17, source: str = "") -> dict:
    """Write model.onnx, model.int8.onnx (weights in .data files), tokenizer.json and onnx.json; return onnx.json,
    with `measured`: the probes' max abs differences from SentenceTransformer, fp32 and int8."""
    hf_model, tokenizer = getattr(model[0], "auto_model", None), getattr(model[0], "tokenizer", None)
    if hf_model is None or not hasattr(tokenizer, "backend_tokenizer") or tokenizer.padding_side != "right":
        raise OnnxError(f"{type(model[0]).__name__}: not a transformers encoder with a right-padding tokenizer")
    if model.default_prompt_name:
        raise OnnxError(f"default prompt {model.default_prompt_name!r}: prompts are not part of the graph")
    out_dir = Path(out_dir)
    with writing(out_dir, folder=True) as folder:  # an export that fails leaves the previous one (or none)
        meta = _export(model, folder, opset, source)
    log.info("%s -> %s (%s): max abs diff fp32 %.1e, int8 %.1e", source, out_dir, meta["optimization"],
             meta["measured"]["fp32_max_abs_diff"], meta["measured"]["int8_max_abs_diff"])
    return meta


def _export(model, out_dir: Path, opset: int, source: str) -> dict:
    """export_onnx's files, written into `out_dir` (the temporary folder that becomes the export)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    hf_model, tokenizer = model[0].auto_model, model[0].tokenizer
    features = model.eval().preprocess(PROBES)
    names = [name for name in FIELDS if name in features]
    meta = {"source": source, "max_seq_length": int(model.max_seq_length), "inputs": names, "opset": opset,
            "dimension": int(model.get_embedding_dimension()), "normalized": type(model[-1]).__name__ == "Normalize",
            "pad_token": tokenizer.pad_token, "pad_id": int(tokenizer.pad_token_id)}
    (out_dir / META).write_text(json.dumps(meta, indent=2, sort_keys=True))
    # With ST's lowercasing where it lowercases; OnnxEncoder sets padding and truncation from onnx.json.
    (out_dir / TOKENIZER).write_text(tokenizer.backend_tokenizer.to_str())

    with tempfile.TemporaryDirectory() as tmp:
        graph, fused = _trace(model, features, names, Path(tmp) / "raw.onnx", opset), Path(tmp) / "fused.onnx"
        meta["optimization"] = "onnxruntime extended"
        try:  # heads and width given: the optimizer's guess from these graphs fails
            optimize_model(str(graph), model_type="bert", num_heads=hf_model.config.num_attention_heads,
                           hidden_size=hf_model.config.hidden_size).save_model_to_file(str(fused))
            graph, meta["optimization"] = fused, "transformer fusion + onnxruntime extended"
        except Exception as exc:  # noqa: BLE001 - fusions assert on patterns they half-match
            log.warning("transformer fusion failed (%s); exporting unfused", exc)
        # EXTENDED, not ALL: onnxruntime marks files saved at ALL as specific to this CPU, and a DVC output can be
        # pulled elsewhere; sessions apply ALL when they load the file.
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(out_dir / FP32)
        fp32 = _check(lambda: ort.InferenceSession(str(graph), options), out_dir, False, model)
    if fp32 > MAX_DIFF:
        raise OnnxError(f"the exported graph does not reproduce the model (max abs diff {fp32:.1e})")
    logging.disable(logging.WARNING)  # the quantizer logs a line per tensor, and advice, to the root logger
    try:  # DefaultTensorType: the fused contrib ops have no shape inference; their outputs are float
        int8 = _check(lambda: quantize_dynamic(out_dir / FP32, out_dir / INT8, per_channel=True, weight_type=(
            QuantType.QInt8), extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT}), out_dir, True, model)
    finally:
        logging.disable(logging.NOTSET)
    meta["probes"] = {"sentences": len(PROBES), "fp32_max_abs_diff_allowed": MAX_DIFF}
    (out_dir / META).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return {**meta, "measured": {"fp32_max_abs_diff": fp32, "int8_max_abs_diff": int8}}


def _trace(model, features: dict, names: list[str], path: Path, opset: int) -> Path:
    import torch

    class Embedding(torch.nn.Module):  # tensors in, the sentence embedding out: what torch.onnx.export traces
        def forward(self, *tensors):
            return self.model(dict(zip(names, tensors)))["sentence_embedding"]

    wrapper = Embedding()
    wrapper.model = model  # a registered submodule: its weights become the graph's initializers

    hf_model, attention = model[0].auto_model, model[0].auto_model.config._attn_implementation
    try:
        # Eager attention traces into the pattern onnxruntime fuses into one Attention op; SDPA's does not fuse.
        hf_model.set_attn_implementation("eager")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # shape branches the trace froze: _check runs other shapes
            # The TorchScript exporter: the dynamo one needs onnxscript, which this project does not install.
            torch.onnx.export(wrapper, tuple(features[n] for n in names), str(path), dynamo=False,
                              opset_version=opset, input_names=names, output_names=["sentence_embedding"],
                              dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names},
                                            "sentence_embedding": {0: "batch"}})
    except Exception as exc:  # noqa: BLE001 - unsupported operators, untraceable modules
        raise OnnxError(f"torch.onnx.export failed for {type(hf_model).__name__}: {exc}") from None
    finally:
        hf_model.set_attn_implementation(attention)
    return path


def _check(write, folder: Path, int8: bool, model) -> float:
    """Run `write` (it saves model[.int8].onnx), move the weights to a .data file beside it (onnxruntime memory-maps
    them, so a session opens faster than from weights inside the graph: docs/onnx.md#export), and return the max
    abs difference from SentenceTransformer over the probes, batched and one by one (unpadded, and values no trace
    could freeze)."""
    import onnx

    path = folder / (INT8 if int8 else FP32)
    try:
        write()
        data = path.with_name(path.name + ".data")
        data.unlink(missing_ok=True)  # onnx appends to an existing data file
        onnx.save_model(onnx.load(str(path)), str(path), save_as_external_data=True, location=data.name)
        data.chmod(path.stat().st_mode & 0o777)  # onnx makes it owner-only; a server's user may read it
        encoder = OnnxEncoder(folder, int8=int8)
        batches = [PROBES] + [[p] for p in PROBES]
        return float(max(np.abs(encoder.encode(b) - model.encode(b, show_progress_bar=False)).max() for b in batches))
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors are untyped
        raise OnnxError(f"{path.name}: {type(exc).__name__}: {exc}") from None
