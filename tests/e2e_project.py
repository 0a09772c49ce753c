"""Helpers for tests/test_pipeline_e2e.py: a throw-away copy of the project (git + DVC) on a tiny configuration.

`build_project` copies the pipeline (dvc.yaml, params.yaml, stages/, podsearch/, .dvcignore) into a fresh folder,
puts a 110-episode fixture slice (e2e_*.csv: the 41-episode mini slice plus 3 episodes of 30 more shows)
where the download stage reads the embedded sample, writes a tiny curated collection
(data/curated/), shrinks params.yaml (tiny random distiluse base model, batch 8, fractions that leave episodes in every split)
and runs `git init` + `dvc init`. `Project` runs git/dvc there with the venv's python first on PATH, offline.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE_DIR = "data/sample/listennotes-dec2017"
RUNNING = re.compile(r"Running stage '([^']+)'")
TAIL = 6000  # characters of dvc output quoted in assertion messages

# Natural queries over fixture episodes that survive prepare (97 of the 110), with their relevant episodes; two dev,
# two test, as data/curated/ holds them (ids quoted as the schema demands).
CURATED_QUERIES = [
    {"id": "q001", "query": "star wars role playing game podcast", "style": "descriptive", "language": "en",
     "split": "dev", "note": "8bit Saga, Shadow of the Old Republic"},
    {"id": "q002", "query": "water district board meetings", "style": "keyword", "language": "en", "split": "test"},
    {"id": "q003", "query": "how do actors prepare for casting auditions", "style": "question", "language": "en",
     "split": "dev"},
    {"id": "q004", "query": "welche neuen filme laufen diese woche im kino", "style": "question", "language": "de",
     "split": "test"},
]
RELEVANT = {
    "q001": ["90a5cde54e8452f69db1e02f001bc544", "b4736b013d0a53c490a2e2456c9fe622", "4d1925911d54515c8961b06f1c233c7d"],
    "q002": ["1d8982c3389859a48eace3874563e6dc", "e75a250a3b505edfa63209fed429eaea", "f1ab53035f96547fbc042608f911ed2a",
             "7837c2b2d7ac50508d1eaec340e3a3c3", "abbf4fe5567e548398b7d3dfbb4b8e66"],
    "q003": ["e2eccd89bfa95d409823d3e63e3ab267", "c8218a848d3a5dfe91b8ee70af0e8dfc", "736beabf4a77557f93adfe169e84c1f3"],
    "q004": ["1c4a72f4ad285d088045d1e81e78472b"],
}


# The tiny configuration, applied to a copy of the real params.yaml (every other key keeps its real value).
TINY_PARAMS = {
    ("split", "test_fraction"): 0.4,  # > 30 test episodes, so Recall@30 can move
    ("split", "eval_fraction"): 0.15,
    ("split", "min_eval_episodes"): 3,
    ("train", "batch_size"): 8,
    ("train", "max_train_pairs"): None,
    ("train", "learning_rate"): 3.0e-3,  # a random tiny model barely moves at the real 2e-5
    ("train", "logging_steps"): 1,
    ("train", "device"): "cpu",
    ("evaluate", "index"): "exact",
    ("evaluate", "resamples"): 1000,
    ("index", "kind"): "exact",
    ("e5", "max_words"): 24,  # the real E5 engine, on short texts: seconds
}


def tail(text: str | None, n: int = TAIL) -> str:
    text = text or ""
    return text if len(text) <= n else "...\n" + text[-n:]


def ran_stages(output: str) -> list[str]:
    """Stage names from dvc's "Running stage 'X'" lines, in order."""
    return RUNNING.findall(output)


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        return (f"$ {' '.join(self.args)}  (exit {self.returncode})\n--- stdout ---\n{tail(self.stdout)}\n"
                f"--- stderr ---\n{tail(self.stderr)}")


class Project:
    """A git + DVC working copy; every command runs in it with the venv's python and offline model hubs."""

    def __init__(self, root: Path):
        self.root = Path(root)
        bin_dir = str(Path(sys.executable).parent)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "GIT_", "PODSEARCH_"))}
        env.update(
            PATH=bin_dir + os.pathsep + env.get("PATH", ""),  # stage cmds say `python -m stages.<name>`
            HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
            DVC_NO_ANALYTICS="1", PYTHONDONTWRITEBYTECODE="1",
            GIT_AUTHOR_NAME="e2e", GIT_AUTHOR_EMAIL="e2e@example.invalid",
            GIT_COMMITTER_NAME="e2e", GIT_COMMITTER_EMAIL="e2e@example.invalid",
        )
        env.pop("VIRTUAL_ENV", None)
        self.env = env

    def run(self, *args: str, check: bool = True, env: dict | None = None, timeout: float = 600) -> Result:
        proc = subprocess.run(list(args), cwd=self.root, env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=timeout)
        result = Result(list(args), proc.returncode, proc.stdout, proc.stderr)
        if check:
            assert proc.returncode == 0, f"command failed in {self.root}\n{result.describe()}"
        return result

    def git(self, *args: str, **kw) -> Result:
        return self.run("git", *args, **kw)

    def dvc(self, *args: str, **kw) -> Result:
        return self.run(sys.executable, "-m", "dvc", *args, **kw)

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    # ------------------------------------------------------------------ params
    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def set_params(self, changes: dict[tuple[str, ...], Any]) -> None:
        params = self.params()
        for keys, value in changes.items():
            section = params
            for key in keys[:-1]:
                section = section[key]
            assert keys[-1] in section, f"params.yaml has no key {'.'.join(keys)}"
            section[keys[-1]] = value
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def leaf_keys(value: Any, prefix: str) -> set[str]:
    """Dotted leaf keys under `prefix` (a dict's own key is not a leaf; lists and scalars are)."""
    if isinstance(value, dict):
        return set().union(*(leaf_keys(v, f"{prefix}.{k}") for k, v in value.items())) if value else set()
    return {prefix}


def lookup(params: dict, dotted: str) -> tuple[bool, Any]:
    node: Any = params
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def build_project(root: Path, base_model: str) -> Project:
    """Copy the pipeline into `root` (created), tiny params with `base_model`, then git init + dvc init."""
    root.mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", "README.md"):  # report fills README.md's block
        shutil.copyfile(ROOT / name, root / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("stages", "podsearch"):
        shutil.copytree(ROOT / name, root / name, ignore=ignore)
    sample = root / SAMPLE_DIR
    sample.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "e2e_podcasts.csv", sample / "podcasts.csv")
    shutil.copyfile(FIXTURES / "e2e_episodes.csv", sample / "episodes.csv")
    curated = root / "data" / "curated"
    curated.mkdir(parents=True)
    (curated / "queries.yaml").write_text(yaml.safe_dump(CURATED_QUERIES, sort_keys=False))
    (curated / "judgments.tsv").write_text("query_id\tepisode_id\trelevant\tjudge\n" + "".join(
        f"{query}\t{episode}\t1\te2e\n" for query, episodes in RELEVANT.items() for episode in episodes))
    (root / ".gitignore").write_text("__pycache__/\n*.pyc\n")

    project = Project(root)
    project.set_params({**TINY_PARAMS, ("train", "base_model"): base_model})
    project.git("init", "-q", "-b", "main")
    project.dvc("init", "-q")
    project.commit("tiny podcast-search project")
    return project
