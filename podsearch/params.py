"""Reading params.yaml and writing the small JSON files DVC tracks as metrics."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = Path("params.yaml")


def load_params(section: str | None = None, path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """One section of params.yaml (or all of it). A missing file or section is a clear error."""
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"{path}: not found; run the stage from the repository root")
    params = yaml.safe_load(path.read_text()) or {}
    if section is None:
        return params
    if section not in params:
        raise SystemExit(f"{path}: no section '{section}'")
    return params[section]


def write_json(data: dict[str, Any], path: str | Path) -> Path:
    """Stable, diff-friendly JSON (sorted keys, trailing newline) so `dvc metrics diff` and git diffs stay readable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def setup_logging(name: str) -> logging.Logger:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    return logging.getLogger(name)
