"""A torch-free query encoder: a sentence-transformers model folder run with numpy.

Why: `import sentence_transformers` alone takes ~5 s on the project's CPU (torch ~1.2 s of it), while the search CLI
should answer in about a second. A query is a few tokens, so a numpy forward pass is as fast as torch's; only the
import cost differs.

What it runs, read from the folder exactly as sentence-transformers (6.x) would:
- modules.json: Transformer -> Pooling -> any Dense -> optional Normalize, nothing else.
- Transformer: config.json with model_type `bert` or `distilbert`, weights from model.safetensors
  (memory-mapped: read on demand, never copied), tokenizer from tokenizer.json (`tokenizers`), truncation to the
  max length ST uses (sentence_bert_config.json max_seq_length, else tokenizer_config.json model_max_length capped
  at max_position_embeddings) and batch-longest padding with an attention mask.
- Pooling: cls / mean / max / mean_sqrt_len_tokens / lasttoken (several are concatenated, as ST does).
- Dense: linear + Tanh / Identity / ReLU / Sigmoid, optional residual; weights from model.safetensors.
- Normalize: L2.

Anything else (other architectures, pytorch_model.bin only, prompts, processing overrides, unknown modules or
options) raises `UnsupportedModel`, and the caller falls back to SentenceTransformer. Everything runs in float32.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# transformers' "no limit" sentinel for tokenizer.model_max_length
_VERY_LARGE_INTEGER = int(1e20)
_MODULE_KINDS = ("Transformer", "Pooling", "Dense", "Normalize")
_POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "lasttoken")
_LEGACY_POOLING_KEYS = {  # ST's legacy bool keys, in its concatenation order
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


class UnsupportedModel(Exception):
    """The folder needs something this encoder does not implement: use SentenceTransformer instead."""


# --- math ------------------------------------------------------------------------------------------------------------

def _erf_rational(x: np.ndarray) -> np.ndarray:
    """erf via Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7, about float32 resolution)."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(x.dtype, copy=False)


def _gelu_erf(x: np.ndarray) -> np.ndarray:
    """transformers' "gelu" (exact erf form). The rational erf instead of scipy.special.erf: same embeddings to
    float32 precision (measured max abs diff vs torch 2.4e-7 either way) without scipy.special's 0.1 s import."""
    return x * np.float32(0.5) * (np.float32(1.0) + _erf_rational(x * np.float32(1.0 / math.sqrt(2.0))))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    c = np.float32(math.sqrt(2.0 / math.pi))
    return np.float32(0.5) * x * (np.float32(1.0) + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))


def _activation(name: str):
    name = str(name).lower()
    if name == "gelu":
        return _gelu_erf
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return _gelu_tanh
    if name == "relu":
        return lambda x: np.maximum(x, np.float32(0.0))
    raise UnsupportedModel(f"activation {name!r} is not implemented")


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(var + np.float32(eps)) * weight + bias


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


class _Linear:
    """y = x W^T + b on 2-D x, computed as (W x^T)^T: the same BLAS sgemm with the small token count as the
    short side, which OpenBLAS runs ~1.5-2x faster for query-sized inputs (measured 0.37 vs 0.71 ms for 8 tokens
    through a 384->1536 layer). W stays the (memory-mapped) array as stored: no copy at load."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None):
        self.weight, self.bias = weight, bias
        self.out_features = weight.shape[0]

    @classmethod
    def stacked(cls, parts: list["_Linear"]) -> "_Linear":
        """One matmul for several projections of the same input (attention's query, key and value)."""
        return cls(np.concatenate([p.weight for p in parts]), np.concatenate([p.bias for p in parts]))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = (self.weight @ x.T).T
        if self.bias is not None:
            y = y + self.bias
        return y


# --- files -----------------------------------------------------------------------------------------------------------

def _read_json(path: Path, required: bool = True) -> dict[str, Any]:
    if not path.exists():
        if required:
            raise UnsupportedModel(f"{path} is missing")
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"{path} is not readable JSON: {exc}") from None


_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
                       "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def _load_safetensors(folder: Path) -> dict[str, np.ndarray]:
    """Read-only numpy views into a memory-mapped model.safetensors.

    safetensors.numpy.load_file copies every tensor (0.5 s for MiniLM's 90 MB on the loaded box); a query touches
    a few dozen rows of the 47 MB word-embedding table, so mapping the file and reading pages on demand is what
    makes start-up cheap. The format is an 8-byte little-endian header length, a JSON header
    {name: {dtype, shape, data_offsets}}, then the raw little-endian data.

    Caveat of mapping: a file truncated and rewritten in place while mapped would fault the reader (SIGBUS).
    `dvc repro` deletes stage outputs before re-running train (a new inode; the old mapping stays valid), so this
    only matters to a long-running web server whose model file is overwritten in place by hand.
    """
    path = folder / "model.safetensors"
    if not path.exists():
        found = "pytorch_model.bin" if (folder / "pytorch_model.bin").exists() else "no weights"
        raise UnsupportedModel(f"{folder}: no model.safetensors ({found}); needs torch to read")
    try:
        buffer = np.memmap(path, dtype=np.uint8, mode="r")
        header_len = int(np.frombuffer(buffer[:8], dtype="<u8")[0])
        header = json.loads(bytes(buffer[8:8 + header_len]).decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"{path}: cannot read the safetensors header ({exc})") from None
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise UnsupportedModel(f"{path}: tensor {name!r} has dtype {info.get('dtype')!r}")
        start, end = (int(v) for v in info["data_offsets"])
        shape = tuple(int(v) for v in info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if end - start != count * np.dtype(dtype).itemsize or base + end > buffer.size:
            raise UnsupportedModel(f"{path}: tensor {name!r} has inconsistent offsets")
        tensors[name] = np.frombuffer(buffer, dtype=np.dtype(dtype).newbyteorder("<"), count=count,
                                      offset=base + start).reshape(shape)
    return tensors


def _strip_prefix(weights: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """Checkpoints saved from a task model (BertForMaskedLM...) prefix the base model's keys."""
    if any(k.startswith("embeddings.") for k in weights):
        return weights
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


class _Weights:
    def __init__(self, weights: dict[str, np.ndarray], where: str):
        self.weights, self.where = weights, where

    def __call__(self, name: str) -> np.ndarray:
        try:
            array = self.weights[name]
        except KeyError:
            raise UnsupportedModel(f"{self.where}: weight {name!r} not found") from None
        if array.dtype != np.float32:
            if not np.issubdtype(array.dtype, np.floating):
                raise UnsupportedModel(f"{self.where}: weight {name!r} has dtype {array.dtype}")
            array = array.astype(np.float32)
        return array

    def linear(self, prefix: str) -> _Linear:
        return _Linear(self(prefix + ".weight"), self(prefix + ".bias"))

    def norm(self, prefix: str) -> tuple[np.ndarray, np.ndarray]:
        return self(prefix + ".weight"), self(prefix + ".bias")


# --- transformer -----------------------------------------------------------------------------------------------------

class _Layer:
    __slots__ = ("qkv", "out", "norm1", "up", "down", "norm2")


class _Encoder:
    """BERT / DistilBERT encoder returning last_hidden_state (the pooler is never used by ST)."""

    def __init__(self, config: dict[str, Any], weights: dict[str, np.ndarray], where: str):
        model_type = config.get("model_type")
        if config.get("is_decoder") or config.get("add_cross_attention"):
            raise UnsupportedModel(f"{where}: decoder configurations are not implemented")
        if model_type == "bert":
            self._init_bert(config, _Weights(_strip_prefix(weights, "bert."), where))
        elif model_type == "distilbert":
            self._init_distilbert(config, _Weights(_strip_prefix(weights, "distilbert."), where))
        else:
            raise UnsupportedModel(f"{where}: model_type {model_type!r} is not implemented (bert, distilbert are)")
        self.model_type = model_type
        if self.hidden % self.heads:
            raise UnsupportedModel(f"{where}: hidden size {self.hidden} not divisible by {self.heads} heads")
        self.head_dim = self.hidden // self.heads
        self.scale = np.float32(1.0 / math.sqrt(self.head_dim))

    def _init_bert(self, config, w: _Weights):
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise UnsupportedModel(f"position_embedding_type {config['position_embedding_type']!r} not implemented")
        self.hidden, self.heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.act = _activation(config.get("hidden_act", "gelu"))
        self.word = w("embeddings.word_embeddings.weight")
        self.position = w("embeddings.position_embeddings.weight")
        token_types = w("embeddings.token_type_embeddings.weight")
        self.token_type0 = token_types[0]  # a single sentence: every token_type_id is 0
        self.emb_norm = w.norm("embeddings.LayerNorm")
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p, layer = f"encoder.layer.{i}.", _Layer()
            layer.qkv = _Linear.stacked([w.linear(p + f"attention.self.{n}") for n in ("query", "key", "value")])
            layer.out = w.linear(p + "attention.output.dense")
            layer.norm1 = w.norm(p + "attention.output.LayerNorm")
            layer.up, layer.down = w.linear(p + "intermediate.dense"), w.linear(p + "output.dense")
            layer.norm2 = w.norm(p + "output.LayerNorm")
            self.layers.append(layer)

    def _init_distilbert(self, config, w: _Weights):
        # Sinusoidal tables are written into position_embeddings.weight and saved with the model, so both
        # variants read the same weight (tested only for learned positions, but the forward is identical).
        self.hidden, self.heads = int(config["dim"]), int(config["n_heads"])
        self.eps = 1e-12  # hard-coded in transformers' DistilBERT
        self.act = _activation(config.get("activation", "gelu"))
        self.word = w("embeddings.word_embeddings.weight")
        self.position = w("embeddings.position_embeddings.weight")
        self.token_type0 = None
        self.emb_norm = w.norm("embeddings.LayerNorm")
        self.layers = []
        for i in range(int(config["n_layers"])):
            p, layer = f"transformer.layer.{i}.", _Layer()
            layer.qkv = _Linear.stacked([w.linear(p + f"attention.{n}_lin") for n in ("q", "k", "v")])
            layer.out = w.linear(p + "attention.out_lin")
            layer.norm1 = w.norm(p + "sa_layer_norm")
            layer.up, layer.down = w.linear(p + "ffn.lin1"), w.linear(p + "ffn.lin2")
            layer.norm2 = w.norm(p + "output_layer_norm")
            self.layers.append(layer)

    @property
    def max_positions(self) -> int:
        return int(self.position.shape[0])

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """(B, T) ids and mask -> (B, T, hidden) last hidden state. Token rows are kept flat, (B*T, hidden)."""
        batch, length = input_ids.shape
        hidden, heads, head_dim = self.hidden, self.heads, self.head_dim
        x = self.word[input_ids] + self.position[:length]
        if self.token_type0 is not None:
            x += self.token_type0
        x = _layer_norm(x.reshape(batch * length, hidden), *self.emb_norm, self.eps)
        # Additive mask over keys: padded positions get the most negative float (as transformers' sdpa path).
        bias = np.where(attention_mask[:, None, None, :] > 0, np.float32(0.0), np.finfo(np.float32).min)
        bias = bias.astype(np.float32)

        for layer in self.layers:
            qkv = layer.qkv(x)  # (B*T, 3*hidden)
            # -> (3, B, heads, T, head_dim)
            qkv = qkv.reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * self.scale + bias
            context = (_softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(batch * length, hidden)
            x = _layer_norm(layer.out(context) + x, *layer.norm1, self.eps)
            x = _layer_norm(layer.down(self.act(layer.up(x))) + x, *layer.norm2, self.eps)
        return x.reshape(batch, length, hidden)


# --- tokenizer -------------------------------------------------------------------------------------------------------

def _token_text(value) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def _load_tokenizer(folder: Path, max_length: int, do_lower_case: bool):
    path = folder / "tokenizer.json"
    if not path.exists():
        raise UnsupportedModel(f"{folder}: no tokenizer.json (a slow tokenizer needs transformers)")
    from tokenizers import Tokenizer, normalizers

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise UnsupportedModel(f"{path}: cannot load tokenizer ({exc})") from None
    if do_lower_case:  # what ST does: prepend Lowercase unless the normalizer already has a Lowercase step
        current = tokenizer.normalizer
        steps = list(current) if isinstance(current, normalizers.Sequence) else ([current] if current else [])
        if not any(isinstance(step, normalizers.Lowercase) for step in steps):
            tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase()] + steps)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    if max_length < _VERY_LARGE_INTEGER:
        tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")

    config = _read_json(folder / "tokenizer_config.json", required=False)
    special = _read_json(folder / "special_tokens_map.json", required=False)
    pad_token = _token_text(config.get("pad_token")) or _token_text(special.get("pad_token"))
    pad_id = tokenizer.token_to_id(pad_token) if pad_token else None
    # The pad id never reaches the output (padded keys are masked, pooling skips them); 0 is a safe filler.
    tokenizer.enable_padding(pad_id=pad_id or 0, pad_token=pad_token or "[PAD]")
    return tokenizer


# --- the encoder -----------------------------------------------------------------------------------------------------

def _module_kind(entry: dict[str, Any]) -> str:
    type_name = str(entry.get("type", ""))
    kind = type_name.rsplit(".", 1)[-1]
    if not type_name.startswith("sentence_transformers.") or kind not in _MODULE_KINDS:
        raise UnsupportedModel(f"module {type_name!r} is not implemented")
    return kind


def _pooling_modes(config: dict[str, Any]) -> tuple[str, ...]:
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    else:
        modes = tuple(m for key, m in _LEGACY_POOLING_KEYS.items() if config.get(key)) or ("mean",)
    for mode in modes:
        if mode not in _POOLING_MODES:
            raise UnsupportedModel(f"pooling mode {mode!r} is not implemented")
    return modes


_DENSE_ACTIVATIONS = {
    "torch.nn.modules.activation.Tanh": np.tanh,
    "torch.nn.modules.linear.Identity": lambda x: x,
    "torch.nn.modules.activation.ReLU": lambda x: np.maximum(x, np.float32(0.0)),
    "torch.nn.modules.activation.Sigmoid": lambda x: np.float32(1.0) / (np.float32(1.0) + np.exp(-x)),
}


class FastSentenceEncoder:
    """`.encode(list[str]) -> np.ndarray` like SentenceTransformer, for the architectures listed in the module doc."""

    backend = "numpy"

    def __init__(self, folder: str | Path, threads: int = 0):
        self.folder = Path(folder)
        if not (self.folder / "modules.json").is_file():
            raise UnsupportedModel(f"{folder}: not a local sentence-transformers folder (no modules.json)")
        modules = _read_json(self.folder / "modules.json")
        if not isinstance(modules, list) or not modules:
            raise UnsupportedModel(f"{folder}/modules.json lists no modules")
        modules = sorted(modules, key=lambda m: int(m.get("idx", 0)))
        kinds = [_module_kind(m) for m in modules]
        if kinds[0] != "Transformer" or kinds[1:2] != ["Pooling"] or any(k in ("Transformer", "Pooling")
                                                                         for k in kinds[2:]):
            raise UnsupportedModel(f"{folder}: module order {kinds} is not Transformer, Pooling, [Dense...], "
                                   "[Normalize]")
        if any(m.get("kwargs") for m in modules):
            raise UnsupportedModel(f"{folder}: modules with call kwargs are not implemented")
        self._check_prompts()
        self._load_transformer(self.folder / modules[0].get("path", ""))
        self._load_pooling(self.folder / modules[1].get("path", ""))
        self.post_modules: list = []  # Dense / Normalize, applied to the pooled vector in order
        dim = self.pooled_dim
        for entry, kind in zip(modules[2:], kinds[2:]):
            sub = self.folder / entry.get("path", "")
            if kind == "Dense":
                head, dim = self._load_dense(sub, dim)
            else:
                config = _read_json(sub / "config.json", required=False)
                if any(config.get(key, "sentence_embedding") not in (None, "sentence_embedding")
                       for key in ("module_input_name", "module_output_name")):
                    raise UnsupportedModel(f"{sub}: Normalize on other features is not implemented")
                head = _l2_normalize
            self.post_modules.append(head)
        self.dimension = dim
        self._limits = self._limit_blas_threads(threads) if threads > 0 else None
        log.info("fast encoder: %s (%s, %d layers, max %d tokens, %d dims)", self.folder, self.encoder.model_type,
                 len(self.encoder.layers), self.max_seq_length, self.dimension)

    # -- loading --

    @staticmethod
    def _limit_blas_threads(threads: int):
        # Process-wide, like torch.set_num_threads in the SentenceTransformer path: a ~10-token query gains nothing
        # from BLAS threads and, on a busy CPU, waits for the slowest one.
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl ships with the scipy stack
            return None
        return threadpool_limits(limits=threads, user_api="blas")

    def _check_prompts(self) -> None:
        config = _read_json(self.folder / "config_sentence_transformers.json", required=False)
        if config.get("default_prompt_name"):
            raise UnsupportedModel(f"{self.folder}: default prompts are not implemented")

    def _load_transformer(self, sub: Path) -> None:
        st_config = {}
        for name in ("sentence_bert_config.json", "sentence_distilbert_config.json"):
            if (sub / name).exists():
                st_config = _read_json(sub / name)
                break
        task = st_config.get("transformer_task", "feature-extraction")
        if task != "feature-extraction":
            raise UnsupportedModel(f"{sub}: transformer_task {task!r} is not implemented")
        modality = st_config.get("modality_config")
        if modality is not None and modality != {"text": {"method": "forward",
                                                          "method_output_name": "last_hidden_state"}}:
            raise UnsupportedModel(f"{sub}: modality_config {modality!r} is not implemented")
        if st_config.get("module_output_name", "token_embeddings") != "token_embeddings":
            raise UnsupportedModel(f"{sub}: module_output_name {st_config['module_output_name']!r}")
        for key in ("processing_kwargs", "query_expansion", "model_args", "model_kwargs", "config_args",
                    "config_kwargs"):
            if st_config.get(key):
                raise UnsupportedModel(f"{sub}: sentence_bert_config {key} is not implemented")
        processor_kwargs = dict(st_config.get("tokenizer_args") or st_config.get("processor_kwargs") or {})
        if set(processor_kwargs) - {"model_max_length"}:
            raise UnsupportedModel(f"{sub}: tokenizer options {sorted(processor_kwargs)} are not implemented")

        config = _read_json(sub / "config.json")
        where = str(sub)
        self.encoder = _Encoder(config, _load_safetensors(sub), where)

        # The truncation length, resolved as ST's Transformer does.
        if st_config.get("max_seq_length") is not None and "model_max_length" not in processor_kwargs:
            processor_kwargs["model_max_length"] = st_config["max_seq_length"]
        if "model_max_length" in processor_kwargs:
            max_length = int(processor_kwargs["model_max_length"])
        else:
            tok_config = _read_json(sub / "tokenizer_config.json", required=False)
            max_length = int(tok_config.get("model_max_length") or _VERY_LARGE_INTEGER)
            positions = config.get("max_position_embeddings")
            if positions is not None and positions != -1:
                max_length = min(max_length, int(positions))
        if max_length > self.encoder.max_positions:
            raise UnsupportedModel(f"{sub}: max length {max_length} exceeds {self.encoder.max_positions} positions")
        self.max_seq_length = max_length
        self.tokenizer = _load_tokenizer(sub, max_length, bool(st_config.get("do_lower_case", False)))

    def _load_pooling(self, sub: Path) -> None:
        config = _read_json(sub / "config.json")
        self.pooling = _pooling_modes(config)
        dim = config.get("embedding_dimension", config.get("word_embedding_dimension"))
        if dim is not None and int(dim) != self.encoder.hidden:
            raise UnsupportedModel(f"{sub}: pooling dimension {dim} != hidden size {self.encoder.hidden}")
        self.pooled_dim = self.encoder.hidden * len(self.pooling)

    def _load_dense(self, sub: Path, in_dim: int):
        config = _read_json(sub / "config.json")
        known = {"in_features", "out_features", "bias", "activation_function", "module_input_name",
                 "module_output_name", "use_residual"}
        if set(config) - known:
            raise UnsupportedModel(f"{sub}: Dense options {sorted(set(config) - known)} are not implemented")
        if any(config.get(key, "sentence_embedding") not in (None, "sentence_embedding")
               for key in ("module_input_name", "module_output_name")):
            raise UnsupportedModel(f"{sub}: Dense on other features is not implemented")
        name = config.get("activation_function", "torch.nn.modules.activation.Tanh")
        if name not in _DENSE_ACTIVATIONS:
            raise UnsupportedModel(f"{sub}: Dense activation {name!r} is not implemented")
        activation = _DENSE_ACTIVATIONS[name]
        w = _Weights(_load_safetensors(sub), str(sub))
        has_bias = bool(config.get("bias", True))
        linear = _Linear(w("linear.weight"), w("linear.bias") if has_bias else None)
        in_features, out_features = int(config["in_features"]), int(config["out_features"])
        if in_features != in_dim or linear.weight.shape != (out_features, in_features):
            raise UnsupportedModel(f"{sub}: Dense shape {linear.weight.shape} does not fit input dim {in_dim}")
        residual = None
        if config.get("use_residual"):
            residual = (lambda x: x) if in_features == out_features else _Linear(w("residual.weight"), None)

        def dense(x):
            out = activation(linear(x))
            return out if residual is None else out + residual(x)

        return dense, out_features

    # -- encoding --

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def _pool(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        outputs = []
        maskf = mask[:, :, None].astype(np.float32)
        for mode in self.pooling:
            if mode == "cls":
                outputs.append(tokens[np.arange(len(tokens)), mask.argmax(axis=1)])
            elif mode == "max":
                outputs.append(np.where(maskf > 0, tokens, -np.inf).max(axis=1).astype(np.float32))
            elif mode == "lasttoken":
                last = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
                outputs.append(tokens[np.arange(len(tokens)), last])
            else:
                total = (tokens * maskf).sum(axis=1)
                count = np.maximum(maskf.sum(axis=1), np.float32(1e-9))
                outputs.append(total / (count if mode == "mean" else np.sqrt(count)))
        return np.concatenate(outputs, axis=-1) if len(outputs) > 1 else outputs[0]

    def encode(self, sentences, batch_size: int = 32, normalize_embeddings: bool = False, **_ignored) -> np.ndarray:
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Length-sorted batches, like ST: less padding; results do not depend on the batch (masks).
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            ids, mask = self.tokenize([texts[i] for i in rows])
            x = self._pool(self.encoder(ids, mask), mask)
            for module in self.post_modules:
                x = module(x)
            out[rows] = x
        if normalize_embeddings:
            out = _l2_normalize(out)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"FastSentenceEncoder({str(self.folder)!r}, {self.encoder.model_type}, dim={self.dimension})"


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), np.float32(1e-12))


def load_fast_encoder(folder: str | Path, threads: int = 0) -> FastSentenceEncoder:
    """FastSentenceEncoder, with any unexpected load failure turned into UnsupportedModel (the caller falls back)."""
    try:
        return FastSentenceEncoder(folder, threads=threads)
    except UnsupportedModel:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a config value of the wrong type: SentenceTransformer decides
        raise UnsupportedModel(f"{folder}: {type(exc).__name__}: {exc}") from None
