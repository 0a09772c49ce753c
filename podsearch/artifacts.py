"""Writing and reading pipeline outputs so that a failure is one line and never a half-written file.

`writing(path)` yields a temporary path beside `path` (a file, or with folder=True an empty folder) and moves it into
place only when the block completes: a write that fails or is interrupted leaves the previous output, or nothing
(under `dvc repro`, DVC has removed the previous one before the stage runs; `dvc checkout` brings it back), and no
temporary. An I/O error (no space left, a read-only folder) becomes a WriteError naming the path and the cause.

`reading(path)` wraps a loader's read of an output: whatever the reader raises on a truncated or corrupted file
(faiss, safetensors, onnxruntime and pyarrow raise their own untyped errors) becomes a DamagedArtifactError naming the
file and the fix: DVC keeps every output content-addressed in its cache, so `dvc checkout` restores it.
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from podsearch.errors import PodsearchError

TEMP_PREFIX = ".tmp-"  # temporaries are hidden sibling folders: .tmp-<random>-<name>
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


class WriteError(PodsearchError):
    """An output could not be written (disk full, read-only, I/O error); nothing half-written was left."""


class DamagedArtifactError(PodsearchError):
    """An output exists but cannot be read: truncated or corrupted. The message says how to restore it."""


def _errno(exc: BaseException, folder: Path) -> int | None:
    """The OS error behind a failed write: its errno, one named in a library's message, or ENOSPC when the disk is
    full at the moment (numpy reports a short write as "N requested and M written" and nothing more)."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    code = next((code for code in (*_FULL, *_READ_ONLY, errno.EIO) if os.strerror(code) in str(exc)), None)
    if code is None:
        try:
            code = errno.ENOSPC if shutil.disk_usage(folder).free < 1 << 20 else None
        except OSError:
            pass
    return code


def _cause(exc: BaseException) -> str:
    """An exception's message on one line, cut to a readable length."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:159] + "…"


def _existing(folder: Path) -> Path:
    """`folder`, or its nearest ancestor that exists: the one a failed mkdir could not write into."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _into_place(tmp: Path, path: Path) -> None:
    """os.replace for a file; a folder cannot replace a folder, so the old one is renamed aside first (and back if
    the new one cannot go in), then removed."""
    if not tmp.is_dir() or not (path.exists() or path.is_symlink()):
        os.replace(tmp, path)
        return
    old = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}-old-{path.name}")
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except OSError:
        os.replace(old, path)
        raise
    _remove(old)


@contextmanager
def writing(path: str | Path, folder: bool = False, io_errors: tuple[type[BaseException], ...] = (OSError,)
            ) -> Iterator[Path]:
    """A temporary path beside `path` to write to; it becomes `path` when the block ends without an error.

    folder: the temporary is an empty folder (a model, an index); else a path with `path`'s own name inside a
    temporary folder, which the block creates (so suffixes, and a name a writer records, as gzip does, are the same).
    io_errors: what the writer raises for a failed write (OSError; faiss adds RuntimeError), turned into WriteError.
    Any error, and an interrupt, removes the temporary and leaves `path` as it was.
    """
    path = Path(path)
    tmp = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}-{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        yield tmp if folder else tmp / path.name
        _into_place(tmp if folder else tmp / path.name, path)
    except io_errors as exc:
        code = _errno(exc, path.parent)
        fix = ("free space on its disk" if code in _FULL else
               f"make {_existing(path.parent)} writable" if code in _READ_ONLY else "check the disk")
        raise WriteError(f"{path}: cannot write ({os.strerror(code) if code else _cause(exc)}); nothing was written "
                         f"there; {fix} and rerun `dvc repro`") from None
    finally:
        _remove(tmp)


def write_text(path: str | Path, text: str) -> Path:
    """`text` to `path` (UTF-8) through `writing`."""
    with writing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_parquet(frame, path: str | Path, **kwargs) -> Path:
    """DataFrame.to_parquet (index=False unless told) through `writing`."""
    with writing(path) as tmp:
        frame.to_parquet(tmp, **{"index": False, **kwargs})
    return Path(path)


def damaged(path: str | Path, cause: BaseException | str) -> DamagedArtifactError:
    """The error for an output that exists and cannot be read, with the two ways to get a good copy back."""
    cause = cause if isinstance(cause, str) else _cause(cause)
    path = Path(path)
    if path.is_absolute() and path.is_relative_to(Path.cwd()):  # as `dvc` is typed: from the repository root
        path = path.relative_to(Path.cwd())
    return DamagedArtifactError(f"{path}: damaged or incomplete ({cause}); restore it with "
                                f"`dvc checkout --force {path}` or rebuild it with `dvc repro`")


@contextmanager
def reading(path: str | Path, error: type[PodsearchError] | None = None) -> Iterator[Path]:
    """Wrap the read of an output: any failure (the library's own errors pass unchanged) becomes one line naming
    `path` as damaged or incomplete; `error`: a subclass of PodsearchError to raise instead of DamagedArtifactError
    (so that a caller's fallback still catches it)."""
    path = Path(path)
    try:
        yield path
    except (PodsearchError, ImportError, MemoryError):  # a missing package or no memory is not a damaged file
        raise
    except Exception as exc:  # noqa: BLE001 - readers of damaged files raise anything: RuntimeError, EOFError, ...
        found = damaged(path, exc)
        raise (error(str(found)) if error else found) from None


def read_json(path: str | Path, error: type[PodsearchError] | None = None):
    """json.loads of a file through `reading` (`error` as there)."""
    import json

    with reading(path, error) as found:
        return json.loads(found.read_text())


def write_json(data, path: str | Path) -> Path:
    """Stable, diff-friendly JSON (sorted keys, trailing newline) through `writing`, so `dvc metrics diff` and git
    diffs stay readable."""
    import json

    return write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_parquet(path: str | Path, **kwargs):
    """pandas.read_parquet through `reading`."""
    import pandas as pd

    with reading(path):
        return pd.read_parquet(path, **kwargs)
