"""compute.engine: ray against the local engine, on a slice of the real sample and a 2-CPU local Ray cluster: the
same shard files and pairs (pseudo, and doc2query sampling with a tiny T5 on the actors), a cluster run interrupted
or missing a shard resumes to the uninterrupted output, the same embedding matrices through the embed stage (ONNX and
USE), and clear errors for an unknown engine, a missing ray, an unreachable head and a pool that cannot fit."""
from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from podsearch import tiny_models as tiny
from podsearch.artifacts import TEMP_PREFIX
from podsearch.compute import Compute, ComputeError, connect, pool_size
from podsearch.querygen import GenerationContext, generate_pairs, runner
from podsearch.querygen.filters import DocumentFrequencies
from podsearch.querygen.pseudo import PseudoGenerator

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
QUERYGEN = Compute(engine="ray", section="querygen", actors=2, cpus_per_actor=1)
SHARD_SIZE = 6  # 28 prepared episodes: 5 shards, the last one short


class FailingPseudo(PseudoGenerator):
    """Pseudo queries, but the shard seeded `fail_seed` dies on the actor (a killed run, as far as the driver can
    tell). Travels to the actors by value (this module is not importable there)."""

    def __init__(self, fail_seed: int, **kwargs):
        super().__init__(**kwargs)
        self.fail_seed = fail_seed

    def generate(self, episodes, seed, progress):
        if seed == self.fail_seed:
            raise RuntimeError("simulated kill")
        return super().generate(episodes, seed, progress)


@pytest.fixture(scope="module")
def cluster():
    """A local cluster started the way the stages start one (compute.connect, ray_address null): 2 CPUs, no
    dashboard, this checkout's podsearch shipped to the workers."""
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    started = time.perf_counter()
    info = connect(QUERYGEN)
    info["start_seconds"] = round(time.perf_counter() - started, 1)
    print(f"\nlocal Ray cluster: {info}")
    yield info
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def episodes() -> pd.DataFrame:
    """The conftest slice of the real sample, prepared (28 episodes)."""
    from podsearch.data import load_raw, prepare_episodes

    podcasts, raw = load_raw(FIXTURES / "mini_podcasts.csv", FIXTURES / "mini_episodes.csv")
    return prepare_episodes(podcasts, raw, seed=0)[0]


@pytest.fixture(scope="module")
def params(tmp_path_factory) -> dict:
    t5 = tiny.make_t5(tmp_path_factory.mktemp("t5"))
    return {"mix": {"pseudo": 3, "doc2query": 2}, "seed": 7, "shard_size": SHARD_SIZE, "max_query_words": 16,
            "copy_min_words": 4, "min_content": 0.0,
            "doc2query": {"model": str(t5), "max_input_tokens": 32, "max_length": 10, "top_p": 0.95, "batch_size": 4}}


@pytest.fixture(scope="module")
def local_run(episodes, params, tmp_path_factory):
    """The reference: the local engine's pairs, stats and shard folder."""
    folder = tmp_path_factory.mktemp("local")
    pairs, stats, _ = generate_pairs(episodes, params, folder / "shards")
    return pairs, stats, folder / "shards"


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("shard-*.parquet"))}


def parquet_bytes(frame: pd.DataFrame, path: Path) -> bytes:
    frame.to_parquet(path, index=False)  # as the stage writes pairs.parquet
    return path.read_bytes()


def test_ray_writes_the_local_engines_shards_and_pairs(cluster, episodes, params, local_run, tmp_path):
    local_pairs, local_stats, local_shards = local_run
    pairs, stats, timings = generate_pairs(episodes, params, tmp_path / "shards", compute=QUERYGEN)
    assert {t["engine"] for t in timings.values()} == {"ray"}
    assert stats == local_stats
    assert stats["generators"]["pseudo"]["shards"] == 5 and len(local_pairs) > 28
    pd.testing.assert_frame_equal(pairs, local_pairs)
    assert shard_bytes(tmp_path / "shards") == shard_bytes(local_shards)  # same names, same bytes, both generators
    assert parquet_bytes(pairs, tmp_path / "ray.parquet") == parquet_bytes(local_pairs, tmp_path / "local.parquet")


def _pseudo_run_args(episodes, params, folder: Path) -> dict:
    """run_shards' arguments for the pseudo part of generate_pairs(episodes, params, folder.parent)."""
    frame = runner.check_episodes(episodes, "episodes")
    config = {**runner.generator_config("pseudo", 3, params, GenerationContext()), "device": "cpu"}
    rules = runner.FilterRules(queries_per_episode=3, max_query_words=16, copy_min_words=4, min_content=0.0)
    return dict(episodes=frame, folder=folder, shard_size=SHARD_SIZE, seed=params["seed"], rules=rules,
                frequencies=DocumentFrequencies(frame["text"], frame["show_id"]), config=config, compute=QUERYGEN)


def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(folder.glob("shard-*.parquet"))}


def test_interrupted_ray_run_resumes_only_the_missing_shards(cluster, episodes, params, local_run, tmp_path):
    local_pairs, _, local_shards = local_run
    pseudo = {**params, "mix": {"pseudo": 3}}
    folder = tmp_path / "shards" / "pseudo"
    with pytest.raises(ComputeError, match=r"querygen pseudo: shard 2 \(.*shard-00002.parquet\) failed on the Ray "
                                           r"cluster: RuntimeError: simulated kill") as failure:
        runner.run_shards(FailingPseudo(params["seed"] + 2, max_query_words=16),
                          **_pseudo_run_args(episodes, pseudo, folder))
    assert isinstance(failure.value.__cause__, RuntimeError)  # the actor's exception, for whoever catches it
    before = _stamps(folder)
    assert "shard-00002.parquet" not in before and not list(folder.glob(f"{TEMP_PREFIX}*"))
    print(f"\nshards written before the kill: {sorted(before)}")

    pairs, _, timings = generate_pairs(episodes, pseudo, tmp_path / "shards", compute=QUERYGEN)
    assert timings["pseudo"]["shards_reused"] == len(before)  # only the missing ones were generated
    assert {name: _stamps(folder)[name] for name in before} == before  # and the finished ones left alone
    assert shard_bytes(folder) == shard_bytes(local_shards / "pseudo")
    pd.testing.assert_frame_equal(pairs, local_pairs[local_pairs["generator"] != "doc2query"].reset_index(drop=True))

    # A shard lost afterwards (deleted) is the only one made again, byte for byte.
    (folder / "shard-00001.parquet").unlink()
    kept = _stamps(folder)
    _, _, timings = generate_pairs(episodes, pseudo, tmp_path / "shards", compute=QUERYGEN)
    assert timings["pseudo"]["shards_reused"] == 4
    assert {name: _stamps(folder)[name] for name in kept} == kept
    assert shard_bytes(folder) == shard_bytes(local_shards / "pseudo")


@pytest.fixture(scope="module")
def onnx_folder(episodes, tmp_path_factory) -> Path:
    from sentence_transformers import SentenceTransformer

    from podsearch.onnx_encoder import export_onnx
    from podsearch.tiny_models import make_tiny_bert

    base = tmp_path_factory.mktemp("tiny-bert")
    model = make_tiny_bert(base / "st", words=" ".join(episodes["text"]).split()[:2000])
    export_onnx(SentenceTransformer(model, device="cpu"), base / "onnx", source=model)
    return base / "onnx"


def _embed(stage, folder: Path, model: str, engine: str, onnx: Path | None) -> tuple[list[str], bytes]:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["compute"]["engine"] = engine
    params["embed"]["batch_size"] = 4  # 28 episodes: 7 batches, 7 tasks over the two actors
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    out = folder / f"{engine}-{model}.npy"
    stage.main(["--model", model, "--prepared", "episodes.parquet", "--out", out.name]
               + (["--onnx", str(onnx)] if onnx else []))
    return (folder / f"{engine}-{model}.ids.txt").read_text().split(), out.read_bytes()


@pytest.mark.parametrize("model", ["base", "use", "e5"])
def test_ray_embeddings_equal_the_local_engines(cluster, episodes, onnx_folder, model, tmp_path, monkeypatch, caplog):
    """Same batches, one encoder per actor (with 1 thread where the local engine uses every core; E5's OpenMP
    threads included): the same matrix, to the bit, and the same ids."""
    caplog.set_level(logging.INFO, logger="podsearch.compute")
    episodes.to_parquet(tmp_path / "episodes.parquet", index=False)
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location("stage_embed", ROOT / "stages" / "embed.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    onnx = onnx_folder if model == "base" else None
    local_ids, local = _embed(stage, tmp_path, model, "local", onnx)
    ray_ids, on_ray = _embed(stage, tmp_path, model, "ray", onnx)
    assert f"embed {model}: 7 task(s) on 2 Ray actor(s) x 1 CPU(s) at {cluster['address']}" in caplog.text
    assert ray_ids == local_ids == episodes["episode_id"].tolist()
    matrix = np.load(tmp_path / f"ray-{model}.npy")
    assert matrix.shape[0] == len(episodes) and np.isfinite(matrix).all()
    np.testing.assert_array_equal(matrix, np.load(tmp_path / f"local-{model}.npy"))
    assert on_ray == local  # the .npy files, byte for byte


def test_unknown_engine_and_bad_settings_are_clear_errors(tmp_path, monkeypatch):
    settings = {"engine": "spark", "ray_address": None, "querygen": {"actors": 2, "cpus_per_actor": 1,
                                                                      "gpus_per_actor": 0}}
    with pytest.raises(ComputeError, match=r"params.yaml compute.engine: unknown engine 'spark'; expected one of "
                                           r"local, ray"):
        Compute.from_params(settings, "querygen")
    with pytest.raises(ComputeError, match=r"compute.querygen.actors: 0; expected a number > 0"):
        Compute.from_params({**settings, "engine": "ray", "querygen": {**settings["querygen"], "actors": 0}},
                            "querygen")
    with pytest.raises(ComputeError, match=r"compute.embed: missing"):
        Compute.from_params({**settings, "engine": "ray"}, "embed")

    # The stage turns it into one line.
    import stages.generate_queries as stage

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["compute"]["engine"] = "spark"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    tiny.episodes(3).assign(show_id="s", language="English", pub_date="", audio="").to_parquet(tmp_path / "e.parquet")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"^generate_queries: params.yaml compute.engine: unknown engine 'spark'"):
        stage.main(["--episodes", "e.parquet", "--out", "p.parquet", "--shards", "s", "--stats", "s.json"])


def test_missing_ray_unreachable_head_and_a_pool_that_cannot_fit(monkeypatch):
    remote = Compute(engine="ray", ray_address="127.0.0.1:9", section="embed", actors=2, cpus_per_actor=1)
    started = time.perf_counter()
    with pytest.raises(ComputeError, match=r"compute.ray_address 127.0.0.1:9: unreachable .*`ray start --head`"):
        connect(remote)
    assert time.perf_counter() - started < 10  # not ray.init's minutes of retries
    with pytest.raises(ComputeError, match=r"compute.ray_address: 'nohost'; expected auto, host:port"):
        connect(Compute(engine="ray", ray_address="nohost", section="embed"))

    gpu = Compute(engine="ray", section="querygen", actors=2, cpus_per_actor=1, gpus_per_actor=1)
    with pytest.raises(ComputeError, match=r"cannot hold one actor of compute.querygen \(1 CPUs, 1 GPUs\)"):
        pool_size(gpu, cpus=16, gpus=0)
    assert pool_size(gpu, cpus=16, gpus=1) == 1 and pool_size(QUERYGEN, cpus=1.5, gpus=0) == 1

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ComputeError, match=r"install it with pip install 'ray\[data\]==2.60.0'"):
        connect(QUERYGEN)


def test_the_local_engine_and_search_never_import_ray(tmp_path):
    code = (
        "import sys, podsearch.tiny_models as tiny\n"
        "from podsearch.compute import Compute\n"
        "from podsearch.embeddings import encode_texts\n"
        "from podsearch.querygen import generate_pairs\n"
        "import podsearch.search.cli, podsearch.search.engine, podsearch.onnx_encoder\n"
        "local = Compute.from_params({'engine': 'local', 'ray_address': None,\n"
        "                             'embed': {'actors': 2, 'cpus_per_actor': 1}}, 'embed')\n"
        "params = {'mix': {'pseudo': 3}, 'seed': 1, 'shard_size': 4, 'max_query_words': 16, 'copy_min_words': 4,\n"
        "          'min_content': 0.0}\n"
        f"generate_pairs(tiny.episodes(9), params, {str(tmp_path)!r}, compute=local)\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
