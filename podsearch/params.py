"""Reading params.yaml (and recording which keys a stage read, for the params audit); setting up a stage's log."""
from __future__ import annotations

import atexit
import logging
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from podsearch.errors import PodsearchError

PARAMS_FILE = Path("params.yaml")
# When set (by the end-to-end test), every params key a stage reads is appended to $PODSEARCH_PARAMS_AUDIT/<stage>.txt,
# so a test can check that dvc.yaml declares exactly the params each stage's code reads.
AUDIT_ENV = "PODSEARCH_PARAMS_AUDIT"
_read_keys: set[str] = set()


class _TrackedDict(dict):
    """A params section that remembers which dotted keys were read."""

    def __init__(self, data: dict, prefix: str):
        super().__init__({k: _track(v, f"{prefix}{k}.") for k, v in data.items()})
        self._prefix = prefix

    def __getitem__(self, key):
        _read_keys.add(f"{self._prefix}{key}")
        return super().__getitem__(key)

    def get(self, key, default=None):
        _read_keys.add(f"{self._prefix}{key}")
        return super().get(key, default)

    def items(self):
        _read_keys.update(f"{self._prefix}{k}" for k in self.keys())
        return super().items()

    def values(self):
        return [v for _, v in self.items()]


def _track(value, prefix: str):
    return _TrackedDict(value, prefix) if isinstance(value, dict) else value


class ParamsError(PodsearchError):
    """params.yaml missing, or without a section or key a stage needs."""


def _write_audit() -> None:
    folder, stage = os.environ.get(AUDIT_ENV), os.environ.get("DVC_STAGE")
    if folder and stage and _read_keys:
        with open(Path(folder) / f"{stage}.txt", "a") as fh:
            fh.write("".join(f"{k}\n" for k in sorted(_read_keys)))


def load_params(section: str | None = None, path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """One section of params.yaml (or all of it). A missing file or section is a clear error."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: not found; run the stage from the repository root")
    params = yaml.safe_load(path.read_text()) or {}
    if section is not None and section not in params:
        raise ParamsError(f"{path}: no section '{section}'")
    if os.environ.get(AUDIT_ENV):
        if not _read_keys:
            atexit.register(_write_audit)
        params = _TrackedDict(params, "")
    return params if section is None else params[section]


def setup_logging(name: str) -> logging.Logger:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    return logging.getLogger(name)
